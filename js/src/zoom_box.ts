/**
 * The small box that follows the pointer over the grid: an enlarged,
 * nearest-neighbour view of the hovered map around the hovered pixel, the
 * channel index (and label) and the real value under the cursor.
 */

import { ImageTile, sizeCanvas } from "./canvas_util";
import { formatValue } from "./format";
import type { GridHover } from "./grid_view";
import { type Translate, t as defaultT } from "./i18n";
import type { TileSource } from "./tiles";
import { zoomGeometry } from "./zoom";

/** Size of the zoomed picture, CSS pixels. */
export const ZOOM_VIEW_SIZE = 128;
/** Distance between the pointer and the box, CSS pixels. */
const POINTER_OFFSET = 16;
/** Space kept between the box and the viewport's edges, CSS pixels. */
const VIEWPORT_MARGIN = 4;

export class ZoomBox {
  readonly el: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly channelLine: HTMLDivElement;
  private readonly pixelLine: HTMLDivElement;
  private readonly valueLine: HTMLSpanElement;
  private readonly tile: ImageTile;
  /** Which map the offscreen tile holds. */
  private cached: { source: TileSource; channel: number } | null = null;

  /** `t`: the language of the box's texts. */
  constructor(
    parent: HTMLElement,
    private readonly t: Translate = defaultT,
  ) {
    const doc = parent.ownerDocument;
    this.el = doc.createElement("div");
    this.el.className = "cnnviz-zoom";
    this.el.hidden = true;
    this.canvas = doc.createElement("canvas");
    this.canvas.className = "cnnviz-zoom-canvas";
    const caption = doc.createElement("div");
    caption.className = "cnnviz-zoom-caption";
    this.channelLine = doc.createElement("div");
    this.pixelLine = doc.createElement("div");
    const valueRow = doc.createElement("div");
    valueRow.append(`${t("zoom.value")} `);
    this.valueLine = doc.createElement("span");
    this.valueLine.className = "cnnviz-zoom-value";
    valueRow.appendChild(this.valueLine);
    caption.append(this.channelLine, this.pixelLine, valueRow);
    this.el.append(this.canvas, caption);
    this.tile = new ImageTile(doc);
    parent.appendChild(this.el);
  }

  /**
   * Show the box for `hover` (its item painted by its source), next to the
   * pointer. The box is `position: fixed`, so the
   * scrolling and clipping containers around the widget (output areas)
   * cannot cut it off; it flips to stay inside the viewport.
   */
  show(hover: GridHover): void {
    const { channel, row, col, source } = hover;
    const stack = source;
    if (!this.cached || this.cached.source !== source || this.cached.channel !== channel) {
      const rgba = this.tile.buffer(source.width, source.height);
      source.paint(channel, rgba);
      this.tile.commit();
      this.cached = { source, channel };
    }
    const g = zoomGeometry({
      mapHeight: stack.height,
      mapWidth: stack.width,
      row,
      col,
      boxWidth: ZOOM_VIEW_SIZE,
      boxHeight: ZOOM_VIEW_SIZE,
      minScale: 4,
    });
    const ctx = sizeCanvas(this.canvas, ZOOM_VIEW_SIZE, ZOOM_VIEW_SIZE);
    ctx.clearRect(0, 0, ZOOM_VIEW_SIZE, ZOOM_VIEW_SIZE);
    ctx.drawImage(this.tile.canvas, g.sx, g.sy, g.sw, g.sh, g.dx, g.dy, g.dw, g.dh);
    // Mark the hovered pixel with a dark and a light outline so it shows on any colour.
    const m = Math.max(g.scale, 3);
    const mx = g.markX + (g.scale - m) / 2;
    const my = g.markY + (g.scale - m) / 2;
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
    ctx.strokeRect(mx - 0.5, my - 0.5, m + 1, m + 1);
    ctx.strokeStyle = "rgba(255, 255, 255, 0.95)";
    ctx.strokeRect(mx - 1.5, my - 1.5, m + 3, m + 3);

    this.channelLine.textContent = source.label(channel);
    this.pixelLine.textContent = this.t("zoom.position", { row, col });
    this.valueLine.textContent = hover.value === null ? this.t("zoom.rgb") : formatValue(hover.value);
    this.el.hidden = false;

    this.place(hover.clientX, hover.clientY);
  }

  private place(clientX: number, clientY: number): void {
    const view = this.el.ownerDocument.defaultView;
    const vw = view?.innerWidth ?? Infinity;
    const vh = view?.innerHeight ?? Infinity;
    const w = this.el.offsetWidth;
    const h = this.el.offsetHeight;
    let left = clientX + POINTER_OFFSET;
    if (left + w > vw - VIEWPORT_MARGIN) left = clientX - POINTER_OFFSET - w;
    left = Math.max(VIEWPORT_MARGIN, left);
    let top = clientY + POINTER_OFFSET;
    if (top + h > vh - VIEWPORT_MARGIN) top = clientY - POINTER_OFFSET - h;
    top = Math.max(VIEWPORT_MARGIN, top);
    this.el.style.left = `${left}px`;
    this.el.style.top = `${top}px`;
    // An ancestor with a transform makes itself the box's containing block
    // instead of the viewport; measure and shift by the difference.
    const r = this.el.getBoundingClientRect();
    const dx = r.left - left;
    const dy = r.top - top;
    if (Math.abs(dx) > 0.5 || Math.abs(dy) > 0.5) {
      this.el.style.left = `${left - dx}px`;
      this.el.style.top = `${top - dy}px`;
    }
  }

  hide(): void {
    this.el.hidden = true;
  }

  /** Forget the cached map (after the data or colours changed). */
  invalidate(): void {
    this.cached = null;
  }

  destroy(): void {
    this.el.remove();
    this.cached = null;
  }
}
