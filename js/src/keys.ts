/**
 * Request keys: the cache key of each request, built by Python
 * (`widgets/requests`) and here the same way; the golden cases are in
 * `tests/data/request_keys.json`. A class-agnostic CAM method has target
 * null, written `*`. An actmax key ends with its mode: `regularized`
 * (Lucid-style) or `plain` (FlashTorch's gradient ascent).
 *
 * Pure module: no DOM access.
 */

import type { RequestKind, RequestParams } from "./messages";

/** The target field of a key: the class, or `*` for a class-agnostic method. */
export const ANY_CLASS = "*";

const target = (t: number | null): string => (t === null ? ANY_CLASS : String(t));

/** One key builder per request kind. */
export const KEYS: { [K in RequestKind]: (p: RequestParams[K]) => string } = {
  features: (p) => `features|${p.version}|${p.layer}`,
  kernels: (p) => `kernels|${p.layer}`,
  predictions: (p) => `predictions|${p.version}`,
  cam: (p) => `cam|${p.version}|${p.method}|${target(p.target)}|${p.layer}`,
  metrics: (p) => `metrics|${p.version}|${p.method}|${target(p.target)}|${p.layer}`,
  saliency: (p) => `saliency|${p.version}|${p.method}|${p.target}`,
  actmax: (p) => `actmax|${p.layer}|${p.channels.join(",")}|${p.regularize ? "regularized" : "plain"}`,
  arithmetic: (p) => `arithmetic|${p.version}|${p.layer}|${p.channel}|${p.row}|${p.col}`,
  examples: (p) => `examples|${p.layer}|${p.channel}`,
  sanity: (p) => `sanity|${p.version}|${p.method}|${p.mode}|${p.target}`,
  evaluation_worst: (p) => `evaluation_worst|${p.method}|${p.metric}`,
  objects: (p) => `objects|${p.version}`,
  object_cam: (p) => `object_cam|${p.version}|${p.method}|${p.object}|${p.layer}|${p.normalize ? "box" : "image"}`,
};

/** Kinds whose key holds the image version (second field): they change with the image. */
export const VERSIONED: ReadonlySet<string> = new Set<RequestKind>(["features", "predictions", "cam", "metrics", "saliency", "arithmetic", "sanity", "objects", "object_cam"]);

export function requestKey<K extends RequestKind>(kind: K, params: RequestParams[K]): string {
  return KEYS[kind](params);
}

/** The image version a key belongs to; null for keys of kinds that do not depend on the image. */
export function keyVersion(key: string): number | null {
  const [kind, version] = key.split("|");
  return kind !== undefined && VERSIONED.has(kind) ? Number(version) : null;
}
