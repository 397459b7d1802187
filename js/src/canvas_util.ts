/** Small canvas helpers shared by the DOM views. */

import type { TileSource } from "./tiles";

/** A 2D context with image smoothing off (nearest-neighbour scaling). */
export function context2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("cnnviz: this browser gives no 2D canvas context");
  ctx.imageSmoothingEnabled = false;
  return ctx;
}

/**
 * Size a canvas to cssWidth x cssHeight CSS pixels, with a backing store at
 * the device pixel ratio; returns the context, scaled so that drawing uses
 * CSS pixels, with smoothing off.
 */
export function sizeCanvas(
  canvas: HTMLCanvasElement,
  cssWidth: number,
  cssHeight: number,
): CanvasRenderingContext2D {
  const view = canvas.ownerDocument.defaultView;
  const dpr = Math.max(1, view?.devicePixelRatio ?? 1);
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = context2d(canvas);
  ctx.setTransform(w / Math.max(1, cssWidth), 0, 0, h / Math.max(1, cssHeight), 0, 0);
  // Setting the size resets context state; switch smoothing off again.
  ctx.imageSmoothingEnabled = false;
  return ctx;
}

/**
 * Offscreen canvas holding one width x height image, reused across calls
 * (one ImageData buffer of the right size is kept too).
 */
export class ImageTile {
  readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private image: ImageData | null = null;

  constructor(doc: Document) {
    this.canvas = doc.createElement("canvas");
    this.ctx = context2d(this.canvas);
  }

  /** RGBA buffer of width x height to fill, then pass to `commit`. */
  buffer(width: number, height: number): Uint8ClampedArray<ArrayBuffer> {
    if (!this.image || this.image.width !== width || this.image.height !== height) {
      this.image = this.ctx.createImageData(width, height);
      this.canvas.width = width;
      this.canvas.height = height;
    }
    return this.image.data;
  }

  /** Copy the filled buffer onto the offscreen canvas. */
  commit(): void {
    if (this.image) this.ctx.putImageData(this.image, 0, 0);
  }
}

/** Draw item `item` of `source` into `canvas`, scaled (nearest neighbour) to cssWidth x cssHeight. */
export function paintScaled(
  canvas: HTMLCanvasElement,
  source: TileSource,
  item: number,
  cssWidth: number,
  cssHeight: number,
): void {
  const tile = new ImageTile(canvas.ownerDocument);
  source.paint(item, tile.buffer(source.width, source.height));
  tile.commit();
  sizeCanvas(canvas, cssWidth, cssHeight).drawImage(tile.canvas, 0, 0, cssWidth, cssHeight);
}
