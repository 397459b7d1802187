/**
 * Every message between Python and the front end, as discriminated unions,
 * and the validation of what comes in (anywidget custom messages with binary
 * buffers, and the `shown_<kind>` traits that carry what is on screen).
 *
 * Front end -> Python:
 *   {type: "request", id, key, kind, ...params}        ask for data (params per kind)
 *   {type: "cancel"}                                   stop the running long job
 *   {type: "set_image", height, width} + [RGBA bytes]  use a drawing as the input
 *   {type: "set_image", evaluation_index}              use an evaluated dataset image
 * Python -> front end:
 *   {type: "reply", id, key, kind, ...content} + buffers
 *   {type: "error", id, key, kind, message}
 *   {type: "progress", id, key, kind, done, total, text, heartbeat, left_s?}
 *     (a heartbeat: the job is still computing and reported nothing new; the
 *     text then ends "(still computing, N s)"; left_s: seconds left, estimated)
 *   {type: "item", id, key, kind: "actmax", index, rgb: {shape}} + [one buffer]
 * Trait `shown_<kind>` (kinds of SHOWN_KINDS): null or
 *   {id: number | null, key, content, buffers}: the reply of request `id` (or,
 *   with id null, a snapshot; `content.partial = {channels, of}` when its
 *   stack holds only the first maps).
 *
 * Map stacks travel as content `stack: {shape, range_dtype, labels?}` with
 * buffers [levels, lo, hi]; RGB stacks as `rgb: {shape}` with one buffer.
 *
 * Pure module: no DOM access.
 */

import { type MapStackPayload, PayloadError, type RgbStackPayload, bytesView } from "./decode";
import { CONTENT, rgbMeta } from "./reply_content";
import { type Rec, finite, record, text } from "./validate";

export { parsePredictions } from "./reply_content";

export const REQUEST_KINDS = ["features", "kernels", "predictions", "cam", "metrics", "saliency", "actmax", "arithmetic", "examples", "sanity", "evaluation_worst", "objects", "object_cam"] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** The kinds whose answer Python puts into the trait `shown_<kind>`. */
export const SHOWN_KINDS = ["features", "kernels", "predictions", "cam", "objects", "object_cam", "saliency", "metrics", "examples", "sanity", "evaluation_worst"] as const;
export type ShownKind = (typeof SHOWN_KINDS)[number];

/** What a request of each kind asks for. `target: null`: a class-agnostic CAM method. */
export interface RequestParams {
  features: { version: number; layer: string };
  kernels: { layer: string };
  predictions: { version: number };
  cam: { version: number; method: string; target: number | null; layer: string };
  metrics: { version: number; method: string; target: number | null; layer: string };
  saliency: { version: number; method: string; target: number };
  /** regularize: Lucid-style (true, the default) or FlashTorch's plain gradient ascent. */
  actmax: { layer: string; channels: number[]; regularize: boolean };
  /** How one conv unit's value is made (channel, row, col of the layer's output). */
  arithmetic: { version: number; layer: string; channel: number; row: number; col: number };
  /** A channel's top dataset examples; channel -1: the layer overview (every channel's best). */
  examples: { layer: string; channel: number };
  /** A sanity check (model-parameter randomisation) of a CAM or saliency method for one class. */
  sanity: { version: number; method: string; mode: SanityMode; target: number };
  /** The images of the explorer's evaluation where `method` does worst on `metric`. */
  evaluation_worst: { method: string; metric: string };
  /** What a detector or segmenter predicts for the image: its boxes, or its class mask. */
  objects: { version: number };
  /**
   * The map of one object: a detector's box `object` (its index, highest score first) or a
   * segmenter's class `object`; `normalize`: rescaled inside the box (detectors only).
   */
  object_cam: { version: number; method: string; layer: string; object: number; normalize: boolean };
}

/** How a sanity check randomises: from the output down, cumulatively, or one layer at a time. */
export type SanityMode = "cascade" | "independent";
export const SANITY_MODES: readonly SanityMode[] = ["cascade", "independent"];

/** Similarity of a randomised map to the original: Spearman (of |values|), SSIM, HOG; null: undefined. */
export interface SimilarityScores {
  spearman: number | null;
  ssim: number | null;
  hog: number | null;
}

interface Head<T extends string, K extends RequestKind> {
  type: T;
  id: number;
  key: string;
  kind: K;
}

// ---------- front end -> Python ----------

export type RequestMessage = { [K in RequestKind]: Head<"request", K> & RequestParams[K] }[RequestKind];
export interface CancelMessage {
  type: "cancel";
}
/** Sent with one buffer: height * width * 4 RGBA bytes. */
export interface SetImageMessage {
  type: "set_image";
  height: number;
  width: number;
}
/** Make dataset image `evaluation_index` of the explorer's evaluation data the input (no buffer). */
export interface EvaluationImageMessage {
  type: "set_image";
  evaluation_index: number;
}
export type Outgoing = RequestMessage | CancelMessage | SetImageMessage | EvaluationImageMessage;

export function requestMessage<K extends RequestKind>(kind: K, id: number, key: string, params: RequestParams[K]): RequestMessage {
  return { ...params, type: "request", id, key, kind } as RequestMessage;
}

// ---------- Python -> front end ----------

export interface StackMeta {
  shape: number[];
  range_dtype?: "float32" | "float16";
  labels?: string[] | null;
}
export interface RgbMeta {
  shape: number[];
}
export interface Prediction {
  index: number;
  name: string;
  prob: number;
}
/** A snapshot whose stack holds only the first `channels` of `of` maps. */
export interface PartialInfo {
  channels: number;
  of: number;
}

/**
 * What a map explains: the class (null for a class-agnostic CAM method), its
 * name and softmax probability (null when class-agnostic or not sent).
 */
export interface Explained {
  target: number | null;
  class_name: string | null;
  prob: number | null;
}

/** Which direction of a faithfulness figure is better. */
export type Better = "lower" | "higher";

/** The content (meta) of a reply of each kind; its buffers travel beside it. */
export interface ReplyContent {
  /**
   * A detector's boxes (highest score first; buffers: boxes K x 4 float32 x1, y1, x2, y2 in
   * input pixels, scores K float32; `floor`: the lowest score sent) or a segmenter's classes
   * (the ones it predicts, most pixels first, background last; `pixels` per class; buffer:
   * the mask, `mask_shape` uint8, each pixel the position of its class in `labels`).
   */
  objects: {
    task: "detection" | "segmentation";
    /** [H, W] of the input image. */
    size: number[];
    labels: number[];
    label_names: string[];
    floor: number | null;
    pixels: number[] | null;
    mask_shape: number[] | null;
  };
  /** One object's map (a one-map stack) and what it explains; `score`: a box's score, or a class's share of the pixels. */
  object_cam: {
    stack: StackMeta;
    method: string;
    layer: string;
    object: number;
    label: number;
    class_name: string;
    score: number;
    box: number[] | null;
    normalize: boolean;
  };
  features: { layer?: string; stack: StackMeta };
  kernels: { layer?: string; stack: StackMeta; kernel_shape: number[]; absmax: number; rgb: RgbMeta | null };
  predictions: { top: Prediction[] };
  cam: Explained & { layer?: string; method: string; stack: StackMeta };
  saliency: Explained & { method: string; stack: StackMeta };
  metrics: { figures: Record<string, number | string | null>; better: Record<string, Better> };
  actmax: { layer?: string; channels?: number[]; count?: number; regularize?: boolean };
  /** Buffers: patch, kernel and products, float32 little-endian, `kernel_shape` each. */
  arithmetic: {
    layer: string;
    channel: number;
    row: number;
    col: number;
    kernel_shape: number[];
    bias: number;
    value: number;
    output: number;
    input_channels: number[];
    /** [y0, x0, y1, x1] of the patch in the layer's input, padding included. */
    box: number[];
  };
  /**
   * Per example (one channel) or per channel (overview, `channels` set): dataset index, score,
   * label (-1: none) and its name, [row, col] of the maximum in the layer's grid, crop box
   * [x0, y0, x1, y1] in input pixels. Buffers: the RGB crops, then (one channel) the map stack
   * of the channel's activation over each crop.
   */
  examples: {
    layer: string;
    channel: number;
    indices: number[];
    scores: number[];
    labels: number[];
    label_names: (string | null)[] | null;
    positions: number[][];
    boxes: number[][];
    channels: number[] | null;
    rgb: RgbMeta;
    maps: StackMeta | null;
  };
  /**
   * Stack: the original map, one map per step (labels: the randomised layer), then the
   * random-logit map when `random_logit` is set. Verdict: `fails` when the mean (`over`:
   * "average") or last ("final") `similarity` is above `threshold` (null: no step).
   */
  sanity: Explained & {
    method: string;
    mode: SanityMode;
    stack: StackMeta;
    steps: { layer: string; scores: SimilarityScores }[];
    random_logit: { target: number; class_name: string | null; scores: SimilarityScores } | null;
    similarity: string;
    threshold: number;
    over: string;
    value: number | null;
    fails: boolean | null;
  };
  /**
   * Worst first: dataset indices, values, explained classes, labels (null:
   * none); `images`: whether images came (then `rgb`, the thumbnails, and
   * `maps`, the method's map over each, are set).
   */
  evaluation_worst: {
    method: string;
    metric: string;
    better: Better;
    indices: number[];
    values: (number | null)[];
    targets: number[];
    labels: number[] | null;
    /** The classes' names (null: not sent). */
    target_names: string[] | null;
    label_names: string[] | null;
    n: number;
    /** The method's CAM layer (null: not a CAM method, or not known). */
    layer: string | null;
    images: boolean;
    rgb: RgbMeta | null;
    maps: StackMeta | null;
  };
}

/** The reply of a request as Python sends it: head and content in one dict. */
export type ReplyMessage = { [K in RequestKind]: Head<"reply", K> & ReplyContent[K] }[RequestKind];
export interface ErrorMessage extends Head<"error", RequestKind> {
  message: string;
}
export interface ProgressMessage extends Head<"progress", RequestKind> {
  done: number;
  total: number;
  text: string;
  /** Sent while the job reports nothing (every 2 s): it is still computing. */
  heartbeat: boolean;
  /** Estimated seconds left, when Python has an estimate. */
  left_s: number | null;
}
export interface ItemMessage extends Head<"item", "actmax"> {
  index: number;
  rgb: RgbMeta;
}
export type FromPython = ReplyMessage | ErrorMessage | ProgressMessage | ItemMessage;

/** A reply, from a message or a `shown_<kind>` trait; `id` null for a snapshot. */
export type Reply<K extends RequestKind = RequestKind> = {
  [P in K]: {
    kind: P;
    id: number | null;
    key: string;
    content: ReplyContent[P];
    buffers: DataView[];
    partial: PartialInfo | null;
  };
}[K];

/** One optimised image of an actmax request, decoded to its payload. */
export interface ActmaxItem {
  id: number;
  key: string;
  index: number;
  rgb: RgbStackPayload;
}

/** A validated message from Python. */
export type Incoming =
  | { type: "reply"; reply: Reply }
  | ErrorMessage
  | ProgressMessage
  | ({ type: "item" } & ActmaxItem);

// ---------- validation ----------

function partialOf(value: unknown): PartialInfo | null {
  if (value === undefined || value === null) return null;
  const r = record(value, "partial");
  return { channels: finite(r, "channels", "partial"), of: finite(r, "of", "partial") };
}

function requestKind(value: unknown): RequestKind {
  if (!(REQUEST_KINDS as readonly unknown[]).includes(value)) {
    throw new PayloadError(`unknown request kind ${JSON.stringify(value)}`);
  }
  return value as RequestKind;
}

/** A list of binary values as DataViews on the same memory. */
export function dataViews(buffers: unknown): DataView[] {
  return (Array.isArray(buffers) ? buffers : []).map((b, i) => toDataView(b, `buffer ${i}`));
}

function parseReply<K extends RequestKind>(kind: K, id: number | null, key: string, content: Rec, buffers: DataView[]): Reply<K> {
  const reply = { kind, id, key, content: CONTENT[kind](content, buffers), buffers, partial: partialOf(content.partial) };
  return reply as Reply<K>;
}

/**
 * Validate a custom message from Python. Null for messages of other types;
 * throws PayloadError for a malformed one.
 */
export function parseMessage(msg: unknown, buffers: unknown): Incoming | null {
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) return null;
  const m = msg as Rec;
  if (m.type !== "reply" && m.type !== "error" && m.type !== "progress" && m.type !== "item") return null;
  if (typeof m.id !== "number" || typeof m.key !== "string" || typeof m.kind !== "string") {
    throw new PayloadError(`message from Python without id/key/kind: ${JSON.stringify(Object.keys(m))}`);
  }
  const { id, key } = m as { id: number; key: string };
  const kind = requestKind(m.kind);
  const bufs = dataViews(buffers);
  switch (m.type) {
    case "reply":
      return { type: "reply", reply: parseReply(kind, id, key, m, bufs) };
    case "error":
      return { type: "error", id, key, kind, message: typeof m.message === "string" ? m.message : "error" };
    case "progress":
      return {
        type: "progress",
        id,
        key,
        kind,
        done: finite(m, "done", "progress"),
        total: finite(m, "total", "progress"),
        text: typeof m.text === "string" ? m.text : "working…",
        heartbeat: m.heartbeat === true,
        left_s: typeof m.left_s === "number" && Number.isFinite(m.left_s) && m.left_s >= 0 ? m.left_s : null,
      };
    case "item": {
      if (kind !== "actmax") throw new PayloadError(`item of kind ${kind}: only actmax sends items`);
      const index = finite(m, "index", "item");
      return { type: "item", id, key, index, rgb: rgbPayload(rgbMeta(m.rgb, bufs, 0, "item"), bufs, 0) };
    }
  }
}

/**
 * Validate the value of trait `shown_<kind>`: null when it holds nothing;
 * throws PayloadError for a malformed one.
 */
export function parseShown(kind: ShownKind, value: unknown): Reply | null {
  if (value === null || value === undefined) return null;
  const what = `shown_${kind}`;
  const r = record(value, what);
  const id = r.id === null || r.id === undefined ? null : finite(r, "id", what);
  const key = text(r, "key", what);
  if (!key.startsWith(`${kind}|`)) throw new PayloadError(`${what}: key ${JSON.stringify(key)} is not a ${kind} key`);
  return parseReply(kind, id, key, record(r.content, `${what} content`), dataViews(r.buffers));
}

// ---------- payloads ----------

/** The map-stack payload of a validated stack meta with buffers [levels, lo, hi]. */
export function stackPayload(meta: unknown, buffers: readonly unknown[], offset = 0): MapStackPayload {
  const m = record(meta, "stack");
  if (buffers.length < offset + 3) {
    throw new PayloadError(`stack: expected 3 buffers (levels, lo, hi) from ${offset}, got ${buffers.length - offset}`);
  }
  const [data, lo, hi] = [0, 1, 2].map((i) => toDataView(buffers[offset + i], `stack buffer ${i}`)) as [DataView, DataView, DataView];
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

/** The RGB-stack payload of `meta` with buffers[offset]. */
export function rgbPayload(meta: RgbMeta, buffers: readonly unknown[], offset = 0): RgbStackPayload {
  if (buffers.length < offset + 1) throw new PayloadError("rgb: missing its buffer");
  return { data: toDataView(buffers[offset], "rgb buffer"), shape: meta.shape };
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
