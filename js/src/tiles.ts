/**
 * What a grid shows, independent of where it came from: a numbered set of
 * equally sized images, each painted into an RGBA buffer on demand, with an
 * optional real value per pixel (for the hover read-out) and a label.
 *
 * Pure module: no DOM access.
 */

import { type Colorizer, rgbItemToRgba } from "./colormap";
import { type MapStack, type RgbStack, mapLevels, valueAt } from "./decode";
import { type Translate, t as defaultT } from "./i18n";

export interface TileSource {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** Fill `out` (width*height*4 RGBA) with item `i`. */
  paint(i: number, out: Uint8ClampedArray<ArrayBuffer>): void;
  /** Real value of item `i` at (row, col), or null for images without one (RGB). */
  value(i: number, row: number, col: number): number | null;
  /** Text naming item `i` (e.g. "channel 12"). */
  label(i: number): string;
  /** Fast path for maps: item `i`'s levels and their packed-colour LUT. */
  levels?(i: number): { levels: Uint8Array; lut: Uint32Array };
}

/** Maps of a stack coloured by `colorizer`; labels "channel i", with the stack's label when it has one. */
export function mapSource(stack: MapStack, colorizer: Colorizer, t: Translate = defaultT): TileSource {
  return {
    count: stack.channels,
    height: stack.height,
    width: stack.width,
    paint: (i, out) => {
      colorizer.colorize(i, out);
    },
    value: (i, row, col) => valueAt(stack, i, row, col),
    label: (i) => {
      const l = stack.labels?.[i];
      return l ? t("tiles.channel_label", { index: i, label: l }) : t("tiles.channel", { index: i });
    },
    levels: (i) => ({ levels: mapLevels(stack, i), lut: colorizer.lut(i) }),
  };
}

/** Items of an RGB stack (e.g. first-layer filters, optimised images). */
export function rgbSource(rgb: RgbStack, labelOf: (i: number) => string = (i) => defaultT("tiles.image", { index: i })): TileSource {
  return {
    count: rgb.count,
    height: rgb.height,
    width: rgb.width,
    paint: (i, out) => {
      rgbItemToRgba(rgb, i, out);
    },
    value: () => null,
    label: labelOf,
  };
}

/**
 * A sub-range [start, end) of a map stack as its own stack (views, no copy):
 * e.g. the kernels of one filter out of a whole layer's kernels.
 */
export function subStack(stack: MapStack, start: number, end: number, labels: readonly string[] | null = null): MapStack {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= stack.channels)) {
    throw new RangeError(`maps [${start}, ${end}) out of range [0, ${stack.channels}]`);
  }
  return {
    channels: end - start,
    height: stack.height,
    width: stack.width,
    mapSize: stack.mapSize,
    data: stack.data.subarray(start * stack.mapSize, end * stack.mapSize),
    lo: stack.lo.subarray(start, end),
    hi: stack.hi.subarray(start, end),
    labels,
  };
}
