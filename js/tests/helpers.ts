/** Builders for payloads shaped as the Python side sends them. */

import type { MapStackPayload, RgbStackPayload } from "../src/decode";

/** float32 little-endian bytes of `values`, placed `offset` bytes into a fresh buffer. */
export function float32Bytes(values: readonly number[], offset = 0): DataView {
  const buf = new ArrayBuffer(offset + values.length * 4 + 3);
  const dv = new DataView(buf, offset, values.length * 4);
  values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  return dv;
}

/** `bytes` copied `offset` bytes into a fresh buffer, as a DataView. */
export function bytesAt(bytes: readonly number[] | Uint8Array, offset = 0): DataView {
  const buf = new ArrayBuffer(offset + bytes.length + 5);
  new Uint8Array(buf, offset, bytes.length).set(bytes);
  return new DataView(buf, offset, bytes.length);
}

export interface StackSpec {
  shape: [number, number, number];
  /** Levels, C*H*W. */
  levels: readonly number[] | Uint8Array;
  lo: readonly number[];
  hi: readonly number[];
  labels?: string[] | null;
  /** Byte offsets of data / lo / hi in their buffers. */
  dataOffset?: number;
  loOffset?: number;
  hiOffset?: number;
}

export function mapPayload(spec: StackSpec): MapStackPayload {
  const p: MapStackPayload = {
    data: bytesAt(spec.levels, spec.dataOffset ?? 0),
    shape: spec.shape,
    lo: float32Bytes(spec.lo, spec.loOffset ?? 0),
    hi: float32Bytes(spec.hi, spec.hiOffset ?? 0),
  };
  if (spec.labels !== undefined) p.labels = spec.labels;
  return p;
}

/**
 * Quantise float maps the way the Python side does: per map lo = min,
 * hi = max, q = round((v - lo) / (hi - lo) * 255), 0 for constant maps.
 */
export function quantize(maps: readonly (readonly number[])[], h: number, w: number): MapStackPayload {
  const levels: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  for (const m of maps) {
    const l = Math.fround(Math.min(...m));
    const u = Math.fround(Math.max(...m));
    lo.push(l);
    hi.push(u);
    for (const v of m) levels.push(u === l ? 0 : Math.round(((v - l) / (u - l)) * 255));
  }
  return mapPayload({ shape: [maps.length, h, w], levels, lo, hi });
}

export function rgbPayload(shape: [number, number, number, number], bytes: readonly number[], offset = 0): RgbStackPayload {
  return { data: bytesAt(bytes, offset), shape };
}

/**
 * A colour table whose entry i is (i, 255 - i, i >> 1, 200 + (i % 50)), so
 * the index can be read back from the red channel.
 */
export function indexTable(): Uint8Array {
  const t = new Uint8Array(1024);
  for (let i = 0; i < 256; i++) {
    t[i * 4] = i;
    t[i * 4 + 1] = 255 - i;
    t[i * 4 + 2] = i >> 1;
    t[i * 4 + 3] = 200 + (i % 50);
  }
  return t;
}

/** Red channel of each RGBA pixel (= colour index with `indexTable`). */
export function reds(rgba: Uint8ClampedArray): number[] {
  const out: number[] = [];
  for (let i = 0; i < rgba.length; i += 4) out.push(rgba[i] as number);
  return out;
}
