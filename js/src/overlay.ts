/**
 * Overlay of a coloured map (CAM, saliency) on the RGB input image.
 *
 * Pure module: no DOM access.
 */

/**
 * out = (1 - a) * image + a * color per pixel, with a = opacity * the
 * colour's own alpha / 255. `rgb` is H*W*3 (HWC), `colored` and `out`
 * H*W*4 RGBA; the result is opaque.
 */
export function blendOverlay(
  rgb: Uint8Array,
  colored: Uint8ClampedArray,
  opacity: number,
  out: Uint8ClampedArray,
): Uint8ClampedArray {
  const n = rgb.length / 3;
  if (!Number.isInteger(n) || colored.length !== n * 4 || out.length !== n * 4) {
    throw new RangeError(
      `overlay: image has ${rgb.length} bytes (H*W*3) but the map ${colored.length} and the output ${out.length} (H*W*4 each)`,
    );
  }
  const o = Math.min(1, Math.max(0, Number.isFinite(opacity) ? opacity : 0));
  for (let i = 0; i < n; i++) {
    const a = (o * (colored[4 * i + 3] as number)) / 255;
    const b = 1 - a;
    out[4 * i] = b * (rgb[3 * i] as number) + a * (colored[4 * i] as number);
    out[4 * i + 1] = b * (rgb[3 * i + 1] as number) + a * (colored[4 * i + 1] as number);
    out[4 * i + 2] = b * (rgb[3 * i + 2] as number) + a * (colored[4 * i + 2] as number);
    out[4 * i + 3] = 255;
  }
  return out;
}
