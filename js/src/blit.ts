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
 * Write a `srcW` x `srcH` image, scaled to `xs.length` x `ys.length`, at
 * (`x0`, `y0`) of `target`. `pixel(i)` gives the packed colour of source
 * pixel `i` (row-major), e.g. `lut[levels[i]]` or `rgba32[i]`.
 */
export function blitNearest(
  srcW: number,
  pixel: (i: number) => number,
  xs: Int32Array,
  ys: Int32Array,
  target: BlitTarget,
  x0: number,
  y0: number,
): void {
  const { pixels, width } = target;
  const height = pixels.length / width;
  for (let r = 0; r < ys.length; r++) {
    const y = y0 + r;
    if (y < 0 || y >= height) continue;
    const rowStart = (ys[r] as number) * srcW;
    let d = y * width + x0;
    for (let c = 0; c < xs.length; c++, d++) {
      const x = x0 + c;
      if (x < 0 || x >= width) continue;
      pixels[d] = pixel(rowStart + (xs[c] as number));
    }
  }
}

/** The same as `blitNearest` for a map: colour = lut[levels[i]] (the fast path of map grids). */
export function blitLevels(
  levels: Uint8Array,
  lut: Uint32Array,
  srcW: number,
  xs: Int32Array,
  ys: Int32Array,
  target: BlitTarget,
  x0: number,
  y0: number,
): void {
  const { pixels, width } = target;
  const height = pixels.length / width;
  const cols = xs.length;
  const inside = x0 >= 0 && x0 + cols <= width;
  for (let r = 0; r < ys.length; r++) {
    const y = y0 + r;
    if (y < 0 || y >= height) continue;
    const rowStart = (ys[r] as number) * srcW;
    const d0 = y * width + x0;
    if (inside) {
      for (let c = 0; c < cols; c++) pixels[d0 + c] = lut[levels[rowStart + (xs[c] as number)] as number] as number;
    } else {
      for (let c = 0; c < cols; c++) {
        const x = x0 + c;
        if (x >= 0 && x < width) pixels[d0 + c] = lut[levels[rowStart + (xs[c] as number)] as number] as number;
      }
    }
  }
}
