/**
 * A canvas that shows items of a tile source (maps, kernels, RGB images) as
 * a grid of tiles, and reports which item pixel is under the pointer.
 */

import { blit, nearestIndex } from "./blit";
import { type Translate, t as defaultT } from "./i18n";
import { alignedColumns } from "./kernel_pages";
import { sizeCanvas } from "./canvas_util";
import {
  DEFAULT_GAP,
  DEFAULT_MAX_TILE,
  DEFAULT_MIN_TILE,
  type GridLayout,
  type Rect,
  computeGrid,
  locateTile,
  preferredTileSize,
  tileRect,
} from "./tiling";
import type { TileSource } from "./tiles";
import { mapPixelAt } from "./zoom";

/** What the grid shows: items `indices` of `source`, in that order. */
export interface GridContent {
  source: TileSource;
  indices: readonly number[];
  /**
   * Everything the pixels depend on besides the layout (data, colours, order,
   * page), when the caller can name it: the composited grid is then kept and
   * shown again at once when the same content comes back (slider back).
   */
  identity?: string;
  /**
   * Tiles that belong together in rows of this many (a filter's kernels):
   * the columns are chosen so that every group starts a row.
   */
  rowLength?: number;
}

/** Bytes of composited grids kept for instant redraws (RGBA, 4 bytes a pixel). */
export const COMPOSITE_BYTES = 96 * 1024 * 1024;

export interface GridHover {
  source: TileSource;
  /** Item (channel) index in the source. */
  channel: number;
  row: number;
  col: number;
  /** Real value at (channel, row, col); null for RGB items. */
  value: number | null;
  /** The tile, in grid canvas coordinates (CSS pixels). */
  tile: Rect;
  /** The pointer, in grid canvas coordinates (CSS pixels). */
  x: number;
  y: number;
  /** The pointer, in viewport coordinates. */
  clientX: number;
  clientY: number;
}

export interface GridViewOptions {
  minTileSize?: number;
  maxTileSize?: number;
  gap?: number;
  onHover: (hover: GridHover | null) => void;
  /** Called on a click on a tile (pin it). */
  onClick?: (hover: GridHover) => void;
  /** Accessible name of the grid (e.g. "feature maps"). */
  label?: string;
  /** The language of the grid's accessible description (default: i18n's `t`). */
  t?: Translate;
}

/** Frame the hovered tile with `highlight` (hidden when nothing is hovered). */
export function placeHighlight(highlight: HTMLElement, canvas: HTMLCanvasElement, hover: GridHover | null): void {
  highlight.hidden = hover === null;
  if (!hover) return;
  highlight.style.left = `${canvas.offsetLeft + hover.tile.x}px`;
  highlight.style.top = `${canvas.offsetTop + hover.tile.y}px`;
  highlight.style.width = `${hover.tile.width}px`;
  highlight.style.height = `${hover.tile.height}px`;
}

export class GridView {
  readonly canvas: HTMLCanvasElement;
  private tileBuffer: Uint8ClampedArray<ArrayBuffer> = new Uint8ClampedArray(0);
  private readonly options: GridViewOptions;
  private content: GridContent | null = null;
  private layout: GridLayout | null = null;
  private containerWidth = 0;
  private lastKey = "";
  /** Composited grids by identity and layout, least recently used first. */
  private readonly composites = new Map<string, ImageData>();
  private compositeBytes = 0;

  constructor(parent: HTMLElement, options: GridViewOptions) {
    const doc = parent.ownerDocument;
    this.options = options;
    this.canvas = doc.createElement("canvas");
    this.canvas.className = "cnnviz-grid";
    this.canvas.setAttribute("role", "img");
    parent.appendChild(this.canvas);
    this.canvas.addEventListener("pointermove", this.onPointerMove);
    this.canvas.addEventListener("pointerdown", this.onPointerMove);
    this.canvas.addEventListener("pointerleave", this.onPointerLeave);
    this.canvas.addEventListener("click", this.onClick);
    // Scrolling moves the tiles under a still pointer: drop the hover.
    this.canvas.addEventListener("wheel", this.onPointerLeave, { passive: true });
  }

  /** Current layout (null when nothing is shown). */
  get gridLayout(): GridLayout | null {
    return this.layout;
  }

  /** Show `content` (or nothing) in a container `containerWidth` wide. */
  setContent(content: GridContent | null, containerWidth: number): void {
    this.content = content;
    this.containerWidth = containerWidth;
    this.lastKey = "";
    this.render();
  }

  /** Re-layout for a new container width; redraws only if the layout changes. */
  resize(containerWidth: number): void {
    this.containerWidth = containerWidth;
    this.render();
  }

  private render(): void {
    const content = this.content;
    if (!content || content.indices.length === 0) {
      const shown = this.layout !== null;
      this.layout = null;
      this.canvas.hidden = true;
      // Only a grid that showed something had a hover to drop (the zoom box is shared by the
      // tabs: an empty grid of a hidden tab, resized, must not hide it).
      if (shown) this.options.onHover(null);
      return;
    }
    const { source } = content;
    const minTileSize = this.options.minTileSize ?? DEFAULT_MIN_TILE;
    const maxTileSize = this.options.maxTileSize ?? DEFAULT_MAX_TILE;
    const spec = {
      count: content.indices.length,
      tileAspect: { height: source.height, width: source.width },
      containerWidth: this.containerWidth,
      minTileSize,
      maxTileSize,
      preferredTileSize: preferredTileSize(source.height, source.width, minTileSize, maxTileSize),
      gap: this.options.gap ?? DEFAULT_GAP,
    };
    let layout = computeGrid(spec);
    if (content.rowLength !== undefined && content.rowLength > 1) {
      const columns = alignedColumns(content.rowLength, layout.columns);
      if (columns !== layout.columns) layout = computeGrid({ ...spec, maxColumns: columns });
    }
    const dpr = this.canvas.ownerDocument.defaultView?.devicePixelRatio ?? 1;
    const key = `${layout.columns}x${layout.rows}:${layout.tileWidth}x${layout.tileHeight}@${dpr}`;
    this.layout = layout;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.draw(content, layout);
  }

  /** Draw again with the same layout (new colours or data of the same shape). */
  redraw(): void {
    this.lastKey = "";
    this.render();
  }

  private draw(content: GridContent, layout: GridLayout): void {
    const { source, indices } = content;
    this.canvas.hidden = false;
    const ctx = sizeCanvas(this.canvas, layout.width, layout.height);
    const id = content.identity === undefined ? null : `${content.identity}|${this.lastKey}`;
    const kept = id === null ? undefined : this.composites.get(id);
    if (kept && kept.width === this.canvas.width && kept.height === this.canvas.height) {
      this.composites.delete(id as string); // most recently used again
      this.composites.set(id as string, kept);
      ctx.putImageData(kept, 0, 0);
      this.describe(content, layout);
      return;
    }
    // Every tile is scaled (nearest neighbour) straight into one device-pixel buffer.
    const width = this.canvas.width;
    const image = ctx.createImageData(width, this.canvas.height);
    const target = { pixels: new Uint32Array(image.data.buffer), width };
    const sx = width / layout.width;
    const sy = this.canvas.height / layout.height;
    const axes = new Map<string, Int32Array>();
    const axis = (src: number, dst: number, which: string): Int32Array => {
      const key = `${which}${dst}`;
      let a = axes.get(key);
      if (!a) {
        a = nearestIndex(src, dst);
        axes.set(key, a);
      }
      return a;
    };
    const pixels = source.width * source.height;
    indices.forEach((c, k) => {
      const r = tileRect(layout, k);
      const x0 = Math.round(r.x * sx);
      const y0 = Math.round(r.y * sy);
      const xs = axis(source.width, Math.round((r.x + r.width) * sx) - x0, "x");
      const ys = axis(source.height, Math.round((r.y + r.height) * sy) - y0, "y");
      const fast = source.levels?.(c);
      if (fast) {
        blit(fast, source.width, xs, ys, target, x0, y0);
        return;
      }
      if (this.tileBuffer.length !== pixels * 4) this.tileBuffer = new Uint8ClampedArray(pixels * 4);
      source.paint(c, this.tileBuffer);
      const words = new Uint32Array(this.tileBuffer.buffer);
      blit((i) => words[i] as number, source.width, xs, ys, target, x0, y0);
    });
    ctx.putImageData(image, 0, 0);
    if (id !== null) this.keep(id, image);
    this.describe(content, layout);
  }

  private keep(id: string, image: ImageData): void {
    const bytes = image.data.byteLength;
    if (bytes > COMPOSITE_BYTES / 2) return;
    this.composites.set(id, image);
    this.compositeBytes += bytes;
    for (const [key, old] of this.composites) {
      if (this.compositeBytes <= COMPOSITE_BYTES) break;
      this.composites.delete(key);
      this.compositeBytes -= old.data.byteLength;
    }
  }

  private describe({ source, indices }: GridContent, layout: GridLayout): void {
    const count = indices.length;
    this.canvas.dataset.tiles = String(count);
    this.canvas.dataset.layout = JSON.stringify({
      columns: layout.columns,
      rows: layout.rows,
      tileWidth: layout.tileWidth,
      tileHeight: layout.tileHeight,
      gap: layout.gap,
      first: indices[0] ?? 0,
    });
    const t = this.options.t ?? defaultT;
    this.canvas.setAttribute(
      "aria-label",
      t("grid.label", { label: this.options.label ?? t("grid.default_label"), count, height: source.height, width: source.width }),
    );
  }

  private hoverAt(event: { clientX: number; clientY: number }): GridHover | null {
    const content = this.content;
    const layout = this.layout;
    if (!content || !layout) return null;
    const bounds = this.canvas.getBoundingClientRect();
    const sx = bounds.width > 0 ? layout.width / bounds.width : 1;
    const sy = bounds.height > 0 ? layout.height / bounds.height : 1;
    const x = (event.clientX - bounds.left) * sx;
    const y = (event.clientY - bounds.top) * sy;
    const hit = locateTile(layout, x, y);
    if (!hit || hit.index >= content.indices.length) return null;
    const { source } = content;
    const pixel = mapPixelAt(hit.localX, hit.localY, layout.tileWidth, layout.tileHeight, source.height, source.width);
    if (!pixel) return null;
    const channel = content.indices[hit.index] as number;
    return {
      source,
      channel,
      row: pixel.row,
      col: pixel.col,
      value: source.value(channel, pixel.row, pixel.col),
      tile: tileRect(layout, hit.index),
      x,
      y,
      clientX: event.clientX,
      clientY: event.clientY,
    };
  }

  private readonly onClick = (event: MouseEvent): void => {
    const hover = this.hoverAt(event);
    if (hover && this.options.onClick) this.options.onClick(hover);
  };

  private readonly onPointerMove = (event: PointerEvent): void => {
    if (!this.content || !this.layout) return;
    this.options.onHover(this.hoverAt(event));
  };

  private readonly onPointerLeave = (): void => {
    this.options.onHover(null);
  };

  destroy(): void {
    this.canvas.removeEventListener("pointermove", this.onPointerMove);
    this.canvas.removeEventListener("pointerdown", this.onPointerMove);
    this.canvas.removeEventListener("pointerleave", this.onPointerLeave);
    this.canvas.removeEventListener("click", this.onClick);
    this.canvas.removeEventListener("wheel", this.onPointerLeave);
    this.canvas.remove();
    this.content = null;
    this.layout = null;
  }
}
