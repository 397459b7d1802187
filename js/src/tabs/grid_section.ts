/** A grid of tiles with its pager and hover highlight: one page of a tile source at a time. */

import { type GridContent, type GridHover, GridView, placeHighlight } from "../grid_view";
import { Pager } from "../pager";
import { type PageInfo, pageRange } from "../tiling";
import type { TileSource } from "../tiles";
import type { TabContext } from "./tab";

/** Most tiles on one page. */
export const PAGE_SIZE = 256;

export interface GridSectionOptions {
  /** Accessible name of the grid. */
  label: string;
  maxTile?: number;
  /** Smallest tile (a small image is shown at a whole multiple of its size up to maxTile). */
  minTile?: number;
  onHover?: (hover: GridHover | null) => void;
  /** The page changed: draw again. */
  onPage: () => void;
  /** A click on a tile (default: pin it into the detail panel). */
  onClick?: (hover: GridHover) => void;
  /** What the tiles are, for the pager, in the widget's language ("maps" when omitted). */
  noun?: string;
}

export interface ShowOptions {
  /** Names the pixels (see GridContent): a grid seen before is shown again at once. */
  identity?: string;
  /** Written to the canvas's `data-key`. */
  key?: string;
  /** Tiles per page (default PAGE_SIZE). */
  pageSize?: number;
  /** Tiles that belong together in rows of this many (see GridContent). */
  rowLength?: number;
  /** The pager's text for a page. */
  pageText?: (page: PageInfo, total: number) => string;
}

export class GridSection {
  readonly box: HTMLDivElement;
  readonly grid: GridView;
  readonly pager: Pager;
  /** The page shown (clamped when drawn). */
  page = 0;

  constructor(
    private readonly ctx: TabContext,
    parent: HTMLElement,
    options: GridSectionOptions,
  ) {
    const doc = ctx.doc;
    this.box = doc.createElement("div");
    this.box.className = "cnnviz-grid-box";
    const stage = doc.createElement("div");
    stage.className = "cnnviz-stage";
    const highlight = doc.createElement("div");
    highlight.className = "cnnviz-highlight";
    highlight.hidden = true;
    this.grid = new GridView(stage, {
      label: options.label,
      t: ctx.t,
      ...(options.maxTile ? { maxTileSize: options.maxTile } : {}),
      ...(options.minTile ? { minTileSize: options.minTile } : {}),
      onHover: (h) => {
        placeHighlight(highlight, this.grid.canvas, h);
        if (h) ctx.zoom.show(h);
        else ctx.zoom.hide();
        options.onHover?.(h);
      },
      onClick: (h) => (options.onClick ?? ((x: GridHover) => ctx.pin(x)))(h),
    });
    this.pager = new Pager(
      this.box,
      (p) => {
        this.page = p;
        options.onPage();
      },
      options.noun,
      ctx.t,
    );
    stage.appendChild(highlight);
    this.box.append(stage);
    parent.appendChild(this.box);
  }

  /**
   * Dim what is shown while the data of another layer is awaited: the grid on
   * screen is not that layer's (as the CAM tab dims a map being recomputed).
   * Showing or clearing ends it.
   */
  setStale(stale: boolean): void {
    this.box.classList.toggle("cnnviz-stale", stale);
    this.box.dataset.stale = String(stale);
  }

  /** Show one page of `order`. */
  show(source: TileSource, order: readonly number[], options: ShowOptions = {}): void {
    this.setStale(false);
    const page = pageRange(order.length, options.pageSize ?? PAGE_SIZE, this.page);
    this.page = page.pageIndex;
    this.pager.update(page, order.length, options.pageText?.(page, order.length));
    const content: GridContent = { source, indices: order.slice(page.start, page.end) };
    if (options.rowLength !== undefined) content.rowLength = options.rowLength;
    if (options.identity !== undefined) content.identity = `${options.identity}|page ${page.pageIndex}`;
    this.grid.setContent(content, this.ctx.width(this.box));
    if (options.key !== undefined) this.grid.canvas.dataset.key = options.key;
  }

  /** Show nothing. */
  clear(): void {
    this.setStale(false);
    this.grid.setContent(null, this.ctx.width(this.box));
    this.pager.el.hidden = true;
  }

  resize(): void {
    this.grid.resize(this.ctx.width(this.box));
  }

  destroy(): void {
    this.grid.destroy();
    this.pager.destroy();
  }
}
