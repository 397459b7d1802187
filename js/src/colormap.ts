/**
 * Colouring of quantised maps with a 256-entry RGBA colour table.
 *
 * Each map's levels (0..255) stand for real values lo + (hi - lo) * q / 255.
 * The display range decides which colour a real value gets:
 *  - "map":    each map its own [lo, hi] (the level is used directly);
 *  - "layer":  one range over all maps of the stack: [min lo, max hi];
 *  - "global": a range given by the caller (e.g. across layers).
 * With `symmetric`, the range is widened to [-m, m], m = max(|lo|, |hi|), so
 * that zero sits at the centre of a diverging colour table (bwr, RdBu, ...).
 *
 * For speed, a map is coloured through a 256-entry level -> RGBA lookup
 * table built for that map's (lo, hi) against the display range, followed by
 * one pass over the pixels writing 32-bit words.
 *
 * Pure module: no DOM access (the output is ready for `new ImageData`).
 */

import {
  COLOR_TABLE_BYTES,
  type MapStack,
  type RgbStack,
  PayloadError,
  mapLevels,
} from "./decode";

export type ColorScale = "map" | "layer" | "global";

export const COLOR_SCALES: readonly ColorScale[] = ["map", "layer", "global"];

/**
 * Whether colour table `name` is one of `diverging` (Python's render/colormaps.py DIVERGING,
 * sent as the `diverging_colormaps` trait): maps drawn with it are centred on zero.
 */
export function isDiverging(name: string, diverging: readonly string[]): boolean {
  return diverging.includes(name);
}

/** Where zero sits in a display range (0..1), or null when the range does not hold it inside. */
export function zeroPosition(range: Range): number | null {
  return range.lo < 0 && range.hi > 0 ? -range.lo / (range.hi - range.lo) : null;
}

export interface ColorOptions {
  /** Default "map". */
  scale?: ColorScale;
  /** Centre the range on zero. Default false. */
  symmetric?: boolean;
  /** Display range [lo, hi]; required for scale "global". */
  range?: readonly [number, number] | null;
}

/** A closed display range. */
export interface Range {
  readonly lo: number;
  readonly hi: number;
}

/** Colour index used for values in a zero-width display range. */
export function degenerateIndex(value: number, range: Range, symmetric: boolean): number {
  if (value < range.lo) return 0;
  if (value > range.hi) return 255;
  return symmetric ? 128 : 0;
}

/** [min lo, max hi] over all maps of the stack. */
export function stackRange(stack: MapStack): Range {
  let lo = Infinity;
  let hi = -Infinity;
  for (let c = 0; c < stack.channels; c++) {
    const l = stack.lo[c] as number;
    const h = stack.hi[c] as number;
    if (l < lo) lo = l;
    if (h > hi) hi = h;
  }
  if (lo > hi) return { lo: 0, hi: 0 };
  return { lo, hi };
}

/** [-m, m] with m = max(|lo|, |hi|). */
export function symmetricRange(range: Range): Range {
  const m = Math.max(Math.abs(range.lo), Math.abs(range.hi));
  return { lo: -m, hi: m };
}

/** Check a caller-given range: two finite numbers with lo <= hi. */
export function checkRange(range: readonly number[] | null | undefined): Range {
  if (!range || range.length !== 2) {
    throw new PayloadError(`colour range must be [lo, hi], got ${JSON.stringify(range)}`);
  }
  const [lo, hi] = range as [number, number];
  if (typeof lo !== "number" || typeof hi !== "number" || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new PayloadError(`colour range must hold finite numbers, got ${JSON.stringify(range)}`);
  }
  if (hi < lo) {
    throw new PayloadError(`colour range has hi < lo: [${lo}, ${hi}]`);
  }
  return { lo, hi };
}

/**
 * For one map with real range [lo, hi], the colour index (0..255) of each
 * level against the display range. The map's own range (identity) is
 * returned exactly as q -> q.
 */
export function levelIndexTable(
  lo: number,
  hi: number,
  range: Range,
  symmetric = false,
  out: Uint8Array = new Uint8Array(256),
): Uint8Array {
  if (range.lo === lo && range.hi === hi && hi > lo) {
    for (let q = 0; q < 256; q++) out[q] = q;
    return out;
  }
  const width = range.hi - range.lo;
  const constant = hi === lo;
  for (let q = 0; q < 256; q++) {
    let t: number;
    if (width > 0) {
      // (v - rlo) / width * 255 with v = lo + (hi - lo) * q / 255, arranged
      // as one division to limit rounding error.
      const num = constant ? (lo - range.lo) * 255 : (lo - range.lo) * 255 + (hi - lo) * q;
      t = Math.round(num / width);
      if (t < 0) t = 0;
      else if (t > 255) t = 255;
    } else {
      t = degenerateIndex(constant ? lo : lo + ((hi - lo) * q) / 255, range, symmetric);
    }
    out[q] = t;
  }
  return out;
}

/**
 * Level -> packed RGBA lookup table (a Uint32Array whose bytes are the RGBA
 * entries, so writing its words into a Uint32Array view of the output gives
 * the right bytes whatever the host's endianness).
 */
export function levelLut(
  colorTable: Uint8Array,
  lo: number,
  hi: number,
  range: Range,
  symmetric = false,
): Uint32Array {
  checkTable(colorTable);
  const index = levelIndexTable(lo, hi, range, symmetric);
  const bytes = new Uint8Array(COLOR_TABLE_BYTES);
  for (let q = 0; q < 256; q++) {
    const s = (index[q] as number) * 4;
    const d = q * 4;
    bytes[d] = colorTable[s] as number;
    bytes[d + 1] = colorTable[s + 1] as number;
    bytes[d + 2] = colorTable[s + 2] as number;
    bytes[d + 3] = colorTable[s + 3] as number;
  }
  return new Uint32Array(bytes.buffer);
}

/**
 * One pass over levels through a level LUT into RGBA bytes. `out` must hold
 * levels.length * 4 bytes; it is allocated when omitted.
 */
export function colorizeLevels(
  levels: Uint8Array,
  lut: Uint32Array,
  out?: Uint8ClampedArray<ArrayBuffer>,
): Uint8ClampedArray<ArrayBuffer> {
  const n = levels.length;
  const target = out ?? new Uint8ClampedArray(n * 4);
  if (target.length !== n * 4) {
    throw new RangeError(`output holds ${target.length} bytes, expected ${n * 4}`);
  }
  if (target.byteOffset % 4 === 0) {
    const words = new Uint32Array(target.buffer, target.byteOffset, n);
    for (let i = 0; i < n; i++) words[i] = lut[levels[i] as number] as number;
  } else {
    const lutBytes = new Uint8Array(lut.buffer, lut.byteOffset, lut.byteLength);
    for (let i = 0, d = 0; i < n; i++, d += 4) {
      const s = (levels[i] as number) * 4;
      target[d] = lutBytes[s] as number;
      target[d + 1] = lutBytes[s + 1] as number;
      target[d + 2] = lutBytes[s + 2] as number;
      target[d + 3] = lutBytes[s + 3] as number;
    }
  }
  return target;
}

/**
 * Colours the maps of one stack with one colour table and options. The
 * layer range is computed once; a LUT is built per map on demand.
 */
export class Colorizer {
  readonly stack: MapStack;
  readonly colorTable: Uint8Array;
  readonly scale: ColorScale;
  readonly symmetric: boolean;
  /** The display range for "layer"/"global", null for "map". */
  readonly sharedRange: Range | null;

  constructor(stack: MapStack, colorTable: Uint8Array, options: ColorOptions = {}) {
    checkTable(colorTable);
    this.stack = stack;
    this.colorTable = colorTable;
    this.scale = options.scale ?? "map";
    this.symmetric = options.symmetric ?? false;
    if (!COLOR_SCALES.includes(this.scale)) {
      throw new PayloadError(`unknown colour scale ${JSON.stringify(this.scale)}`);
    }
    let shared: Range | null = null;
    if (this.scale === "layer") shared = stackRange(stack);
    else if (this.scale === "global") shared = checkRange(options.range);
    if (shared && this.symmetric) shared = symmetricRange(shared);
    this.sharedRange = shared;
  }

  /** Display range used for map `c`. */
  rangeOf(c: number): Range {
    if (this.sharedRange) return this.sharedRange;
    const own = { lo: this.stack.lo[c] as number, hi: this.stack.hi[c] as number };
    return this.symmetric ? symmetricRange(own) : own;
  }

  /** Level -> packed RGBA table for map `c`. */
  lut(c: number): Uint32Array {
    return levelLut(
      this.colorTable,
      this.stack.lo[c] as number,
      this.stack.hi[c] as number,
      this.rangeOf(c),
      this.symmetric,
    );
  }

  /** RGBA bytes (H*W*4) of map `c`, written into `out` when given. */
  colorize(c: number, out?: Uint8ClampedArray<ArrayBuffer>): Uint8ClampedArray<ArrayBuffer> {
    return colorizeLevels(mapLevels(this.stack, c), this.lut(c), out);
  }
}

/** Colour map `c` of a stack (see `Colorizer` to colour many maps). */
export function colorizeMap(
  stack: MapStack,
  c: number,
  colorTable: Uint8Array,
  options: ColorOptions = {},
  out?: Uint8ClampedArray<ArrayBuffer>,
): Uint8ClampedArray<ArrayBuffer> {
  return new Colorizer(stack, colorTable, options).colorize(c, out);
}

/** The RGBA entry `index` of a colour table. */
export function tableColor(colorTable: Uint8Array, index: number): [number, number, number, number] {
  const i = Math.max(0, Math.min(255, Math.round(index))) * 4;
  return [
    colorTable[i] as number,
    colorTable[i + 1] as number,
    colorTable[i + 2] as number,
    colorTable[i + 3] as number,
  ];
}

/** Colour of real value `v` against a display range. */
export function colorOfValue(
  colorTable: Uint8Array,
  v: number,
  range: Range,
  symmetric = false,
): [number, number, number, number] {
  const width = range.hi - range.lo;
  const index = width > 0 ? ((v - range.lo) * 255) / width : degenerateIndex(v, range, symmetric);
  return tableColor(colorTable, index);
}

/** A grey ramp colour table (black to white, opaque). */
export function grayColorTable(): Uint8Array {
  const t = new Uint8Array(COLOR_TABLE_BYTES);
  for (let i = 0; i < 256; i++) {
    t[i * 4] = i;
    t[i * 4 + 1] = i;
    t[i * 4 + 2] = i;
    t[i * 4 + 3] = 255;
  }
  return t;
}

/** Item `n` of an RGB stack as opaque RGBA bytes (H*W*4). */
export function rgbItemToRgba(
  rgb: RgbStack,
  n: number,
  out?: Uint8ClampedArray<ArrayBuffer>,
): Uint8ClampedArray<ArrayBuffer> {
  if (!Number.isInteger(n) || n < 0 || n >= rgb.count) {
    throw new RangeError(`item index ${n} out of range [0, ${rgb.count})`);
  }
  const pixels = rgb.height * rgb.width;
  const target = out ?? new Uint8ClampedArray(pixels * 4);
  if (target.length !== pixels * 4) {
    throw new RangeError(`output holds ${target.length} bytes, expected ${pixels * 4}`);
  }
  const src = rgb.data;
  for (let i = 0, s = n * pixels * 3, d = 0; i < pixels; i++, s += 3, d += 4) {
    target[d] = src[s] as number;
    target[d + 1] = src[s + 1] as number;
    target[d + 2] = src[s + 2] as number;
    target[d + 3] = 255;
  }
  return target;
}

function checkTable(colorTable: Uint8Array): void {
  if (colorTable.length !== COLOR_TABLE_BYTES) {
    throw new PayloadError(
      `colour table: expected ${COLOR_TABLE_BYTES} bytes (256 RGBA entries), got ${colorTable.length}`,
    );
  }
}
