/**
 * Nearest-neighbour scaling of tiles straight into the grid's pixel buffer:
 * one `putImageData` for the whole grid instead of a canvas per tile and a
 * scaled `drawImage` each (slow on software-rendered canvases).
 *
 * Pure module: no DOM access. Pixels are packed RGBA in a Uint32Array (the
 * platform's byte order, as the colour LUTs are built).
 */

/** Source index of each of `dst` output pixels along an axis of `src` pixels (pixel centres). */
export function nearestIndex(src: number, dst: number): Int32Array {
  const out = new Int32Array(Math.max(0, dst));
  for (let k = 0; k < dst; k++) out[k] = Math.min(src - 1, Math.floor(((k + 0.5) * src) / dst));
  return out;
}

export interface BlitTarget {
  /** The grid buffer, width * height packed pixels. */
  pixels: Uint32Array;
  /** Width of the grid buffer in pixels. */
  width: number;
}

/**
 * A tile's pixels: a map's levels with its colour LUT (colour = lut[levels[i]],
 * the fast path of map grids), or the packed colour of any source pixel `i`
 * (row-major).
 */
export type PixelSource = { levels: Uint8Array; lut: Uint32Array } | ((i: number) => number);

/**
 * Write a `srcW`-wide image, scaled to `xs.length` x `ys.length`, at
 * (`x0`, `y0`) of `target`, clipped to the target.
 */
export function blit(
  source: PixelSource,
  srcW: number,
  xs: Int32Array,
  ys: Int32Array,
  target: BlitTarget,
  x0: number,
  y0: number,
): void {
  const { pixels, width } = target;
  const height = pixels.length / width;
  // output columns [c0, c1) fall inside the target
  const c0 = Math.max(0, -x0);
  const c1 = Math.min(xs.length, width - x0);
  if (c1 <= c0) return;
  for (let r = 0; r < ys.length; r++) {
    const y = y0 + r;
    if (y < 0 || y >= height) continue;
    const rowStart = (ys[r] as number) * srcW;
    const d0 = y * width + x0;
    if (typeof source === "function") {
      for (let c = c0; c < c1; c++) pixels[d0 + c] = source(rowStart + (xs[c] as number));
    } else {
      const { levels, lut } = source;
      for (let c = c0; c < c1; c++) pixels[d0 + c] = lut[levels[rowStart + (xs[c] as number)] as number] as number;
    }
  }
}
