/**
 * Messages between the front end and Python (anywidget custom messages with
 * binary buffers), and the cache keys both sides build the same way (the
 * exported HTML page answers requests from a table of keys written by
 * Python).
 *
 * Front end -> Python:
 *   {type: "request", id, key, kind, ...params}       ask for data
 *   {type: "cancel"}                                  stop the running long job
 *   {type: "set_image", height, width} + [RGBA bytes] use a drawing as the input
 * Python -> front end:
 *   {type: "reply", id, key, kind, ...meta} + buffers
 *   {type: "error", id, key, kind, message}
 *   {type: "progress", id, key, done, total, text}
 *   {type: "item", id, key, kind, index, ...meta} + buffers  (one result of many, as it finishes)
 *
 * Map stacks travel as meta `stack: {shape, range_dtype, labels?}` with
 * buffers [levels, lo, hi]; RGB stacks as `rgb: {shape}` with one buffer.
 *
 * Pure module: no DOM access.
 */

import { type MapStackPayload, PayloadError, type RgbStackPayload, bytesView } from "./decode";

export type RequestKind = "features" | "kernels" | "cam" | "saliency" | "predictions" | "metrics" | "actmax";

/** Cache / request keys (Python's `widgets/explorer.py::request_key` builds the same strings). */
export const keys = {
  features: (version: number, layer: string): string => `features|${version}|${layer}`,
  kernels: (layer: string): string => `kernels|${layer}`,
  predictions: (version: number): string => `predictions|${version}`,
  cam: (version: number, method: string, target: number, layer: string): string =>
    `cam|${version}|${method}|${target}|${layer}`,
  metrics: (version: number, method: string, target: number, layer: string): string =>
    `metrics|${version}|${method}|${target}|${layer}`,
  saliency: (version: number, method: string, target: number): string =>
    `saliency|${version}|${method}|${target}`,
  actmax: (layer: string, channels: readonly number[]): string => `actmax|${layer}|${channels.join(",")}`,
};

export interface Incoming {
  type: "reply" | "error" | "progress" | "item";
  id: number;
  key: string;
  kind: string;
  [field: string]: unknown;
}

/** Validate the common fields of a message from Python; null for messages of other types. */
export function parseIncoming(msg: unknown): Incoming | null {
  if (msg === null || typeof msg !== "object") return null;
  const m = msg as Record<string, unknown>;
  if (m.type !== "reply" && m.type !== "error" && m.type !== "progress" && m.type !== "item") return null;
  if (typeof m.id !== "number" || typeof m.key !== "string" || typeof m.kind !== "string") {
    throw new PayloadError(`message from Python without id/key/kind: ${JSON.stringify(Object.keys(m))}`);
  }
  return m as Incoming;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new PayloadError(`${what}: expected a dict`);
  }
  return value as Record<string, unknown>;
}

/** The map-stack payload of `meta.stack` with buffers[offset .. offset + 2]. */
export function stackPayload(meta: unknown, buffers: readonly unknown[], offset = 0): MapStackPayload {
  const m = record(meta, "stack");
  if (buffers.length < offset + 3) {
    throw new PayloadError(`stack: expected 3 buffers (levels, lo, hi) from ${offset}, got ${buffers.length - offset}`);
  }
  const [data, lo, hi] = [buffers[offset], buffers[offset + 1], buffers[offset + 2]].map((b, i) =>
    toDataView(b, `stack buffer ${i}`),
  ) as [DataView, DataView, DataView];
  const payload: MapStackPayload = {
    data,
    lo,
    hi,
    shape: m.shape as number[],
    range_dtype: (m.range_dtype as "float32" | "float16" | undefined) ?? "float32",
  };
  if (m.labels !== undefined && m.labels !== null) payload.labels = m.labels as string[];
  return payload;
}

/** The RGB-stack payload of `meta.rgb` with buffers[offset]. */
export function rgbPayload(meta: unknown, buffers: readonly unknown[], offset = 0): RgbStackPayload {
  const m = record(meta, "rgb");
  if (buffers.length < offset + 1) throw new PayloadError("rgb: missing its buffer");
  return { data: toDataView(buffers[offset], "rgb buffer"), shape: m.shape as number[] };
}

/** Any binary value as a DataView on the same memory. */
export function toDataView(value: unknown, what: string): DataView {
  if (value instanceof DataView) return value;
  const bytes = bytesView(value, what);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Bytes held by a list of buffers (what a cached reply costs). */
export function bufferBytes(buffers: readonly unknown[]): number {
  let n = 0;
  for (const b of buffers) n += bytesView(b, "buffer").byteLength;
  return n;
}

export interface Prediction {
  index: number;
  name: string;
  prob: number;
}

/** `top` of a predictions reply, validated. */
export function parsePredictions(value: unknown): Prediction[] {
  if (!Array.isArray(value)) throw new PayloadError("predictions: expected a list");
  return value.map((p, i) => {
    const r = record(p, `prediction ${i}`);
    if (typeof r.index !== "number" || typeof r.name !== "string" || typeof r.prob !== "number") {
      throw new PayloadError(`prediction ${i}: needs index (number), name (string), prob (number)`);
    }
    return { index: r.index, name: r.name, prob: r.prob };
  });
}

/**
 * Channel list typed by a person: "0-7", "3, 5, 9", "0-3,10". Returns the
 * sorted unique channels, or throws a message naming the problem.
 */
export function parseChannels(text: string, count: number, maxItems = 64): number[] {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const s = part.trim();
    if (!s) continue;
    const m = /^(\d+)\s*(?:-\s*(\d+))?$/.exec(s);
    if (!m) throw new RangeError(`"${s}" is not a channel or a range like 0-7`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new RangeError(`range ${s} runs backwards`);
    if (b >= count) throw new RangeError(`channel ${b} out of range: the layer has ${count} (0-${count - 1})`);
    for (let c = a; c <= b; c++) {
      out.add(c);
      if (out.size > maxItems) throw new RangeError(`at most ${maxItems} channels at once`);
    }
  }
  if (out.size === 0) throw new RangeError("no channel given");
  return [...out].sort((x, y) => x - y);
}
