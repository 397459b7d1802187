/**
 * A canvas that shows a range of maps of a stack as a grid of tiles, and
 * reports which map pixel is under the pointer.
 */

import { ImageTile, sizeCanvas } from "./canvas_util";
import type { Colorizer } from "./colormap";
import { type MapStack, valueAt } from "./decode";
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
import { mapPixelAt } from "./zoom";

/** What the grid shows: maps [start, end) of a stack. */
export interface GridContent {
  stack: MapStack;
  colorizer: Colorizer;
  start: number;
  end: number;
}

export interface GridHover {
  /** Map (channel) index in the stack. */
  channel: number;
  row: number;
  col: number;
  /** Real value at (channel, row, col). */
  value: number;
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
}

export class GridView {
  readonly canvas: HTMLCanvasElement;
  private readonly tile: ImageTile;
  private readonly options: GridViewOptions;
  private content: GridContent | null = null;
  private layout: GridLayout | null = null;
  private containerWidth = 0;
  private lastKey = "";

  constructor(parent: HTMLElement, options: GridViewOptions) {
    const doc = parent.ownerDocument;
    this.options = options;
    this.canvas = doc.createElement("canvas");
    this.canvas.className = "cnnviz-grid";
    this.canvas.setAttribute("role", "img");
    this.tile = new ImageTile(doc);
    parent.appendChild(this.canvas);
    this.canvas.addEventListener("pointermove", this.onPointerMove);
    this.canvas.addEventListener("pointerdown", this.onPointerMove);
    this.canvas.addEventListener("pointerleave", this.onPointerLeave);
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
    if (!content || content.end <= content.start) {
      this.layout = null;
      this.canvas.hidden = true;
      this.options.onHover(null);
      return;
    }
    const { stack } = content;
    const minTileSize = this.options.minTileSize ?? DEFAULT_MIN_TILE;
    const maxTileSize = this.options.maxTileSize ?? DEFAULT_MAX_TILE;
    const layout = computeGrid({
      count: content.end - content.start,
      tileAspect: { height: stack.height, width: stack.width },
      containerWidth: this.containerWidth,
      minTileSize,
      maxTileSize,
      preferredTileSize: preferredTileSize(stack.height, stack.width, minTileSize, maxTileSize),
      gap: this.options.gap ?? DEFAULT_GAP,
    });
    const dpr = this.canvas.ownerDocument.defaultView?.devicePixelRatio ?? 1;
    const key = `${layout.columns}x${layout.rows}:${layout.tileWidth}x${layout.tileHeight}@${dpr}`;
    this.layout = layout;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.draw(content, layout);
  }

  private draw(content: GridContent, layout: GridLayout): void {
    const { stack, colorizer, start, end } = content;
    this.canvas.hidden = false;
    const ctx = sizeCanvas(this.canvas, layout.width, layout.height);
    ctx.clearRect(0, 0, layout.width, layout.height);
    for (let c = start; c < end; c++) {
      const rgba = this.tile.buffer(stack.width, stack.height);
      colorizer.colorize(c, rgba);
      this.tile.commit();
      const r = tileRect(layout, c - start);
      ctx.drawImage(this.tile.canvas, r.x, r.y, r.width, r.height);
    }
    this.canvas.setAttribute(
      "aria-label",
      `${end - start} maps of ${stack.height} by ${stack.width} (maps ${start} to ${end - 1})`,
    );
  }

  private readonly onPointerMove = (event: PointerEvent): void => {
    const content = this.content;
    const layout = this.layout;
    if (!content || !layout) return;
    const bounds = this.canvas.getBoundingClientRect();
    // Map from the rendered box to layout pixels (the canvas may be scaled by CSS).
    const sx = bounds.width > 0 ? layout.width / bounds.width : 1;
    const sy = bounds.height > 0 ? layout.height / bounds.height : 1;
    const x = (event.clientX - bounds.left) * sx;
    const y = (event.clientY - bounds.top) * sy;
    const hit = locateTile(layout, x, y);
    if (!hit) {
      this.options.onHover(null);
      return;
    }
    const { stack } = content;
    const pixel = mapPixelAt(
      hit.localX,
      hit.localY,
      layout.tileWidth,
      layout.tileHeight,
      stack.height,
      stack.width,
    );
    if (!pixel) {
      this.options.onHover(null);
      return;
    }
    const channel = content.start + hit.index;
    this.options.onHover({
      channel,
      row: pixel.row,
      col: pixel.col,
      value: valueAt(stack, channel, pixel.row, pixel.col),
      tile: tileRect(layout, hit.index),
      x,
      y,
      clientX: event.clientX,
      clientY: event.clientY,
    });
  };

  private readonly onPointerLeave = (): void => {
    this.options.onHover(null);
  };

  destroy(): void {
    this.canvas.removeEventListener("pointermove", this.onPointerMove);
    this.canvas.removeEventListener("pointerdown", this.onPointerMove);
    this.canvas.removeEventListener("pointerleave", this.onPointerLeave);
    this.canvas.removeEventListener("wheel", this.onPointerLeave);
    this.canvas.remove();
    this.content = null;
    this.layout = null;
  }
}
