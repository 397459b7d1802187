/**
 * The content validators of Python's replies, one per request kind: each
 * checks the JSON meta of a reply (and that its buffers are there) and
 * returns the typed content (see `ReplyContent` in messages.ts).
 *
 * Pure module: no DOM access.
 */

import { PayloadError } from "./decode";
import type { Better, Explained, Prediction, ReplyContent, RequestKind, RgbMeta, SimilarityScores, StackMeta } from "./messages";
import { type Rec, finite, finiteNumbers, integers, numbers, optionalText, record, text } from "./validate";

function targetOf(r: Rec, what: string): number | null {
  return r.target === null || r.target === undefined ? null : finite(r, "target", what);
}

/** What a CAM or saliency map explains (class name and probability: null when not sent). */
function explained(r: Rec, what: string): Explained {
  const prob = r.prob === null || r.prob === undefined ? null : finite(r, "prob", what);
  return { target: targetOf(r, what), class_name: optionalText(r, "class_name", what) ?? null, prob };
}

/** A finite number, or null for null (NaN travels as null). */
function nullableNumber(value: unknown, what: string): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "number" || !Number.isFinite(value)) throw new PayloadError(`${what}: expected a number or null`);
  return value;
}

function similarityScores(value: unknown, what: string): SimilarityScores {
  const r = record(value, `${what} scores`);
  return {
    spearman: nullableNumber(r.spearman, `${what} spearman`),
    ssim: nullableNumber(r.ssim, `${what} ssim`),
    hog: nullableNumber(r.hog, `${what} hog`),
  };
}

function stackMeta(value: unknown, buffers: readonly DataView[], what: string): StackMeta {
  const m = record(value, `${what} stack`);
  const meta: StackMeta = { shape: numbers(m.shape, `${what} stack shape`) };
  if (meta.shape.length !== 3) throw new PayloadError(`${what} stack: shape must be [C, H, W]`);
  if (m.range_dtype === "float16" || m.range_dtype === "float32") meta.range_dtype = m.range_dtype;
  else if (m.range_dtype !== undefined && m.range_dtype !== null) {
    throw new PayloadError(`${what} stack: range_dtype must be "float32" or "float16"`);
  }
  if (Array.isArray(m.labels)) meta.labels = m.labels.map(String);
  if (buffers.length < 3) throw new PayloadError(`${what}: expected 3 buffers (levels, lo, hi), got ${buffers.length}`);
  return meta;
}

export function rgbMeta(value: unknown, buffers: readonly DataView[], offset: number, what: string): RgbMeta {
  const shape = numbers(record(value, `${what} rgb`).shape, `${what} rgb shape`);
  if (buffers.length < offset + 1) throw new PayloadError(`${what} rgb: missing its buffer`);
  return { shape };
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

/** Content validators: one entry per request kind. */
export const CONTENT: { [K in RequestKind]: (r: Rec, buffers: readonly DataView[]) => ReplyContent[K] } = {
  features: (r, b) => ({ layer: optionalText(r, "layer", "features"), stack: stackMeta(r.stack, b, "features") }),
  kernels: (r, b) => {
    const kernelShape = numbers(r.kernel_shape, "kernels kernel_shape");
    if (kernelShape.length !== 4) throw new PayloadError("kernels: kernel_shape must be [O, I, kh, kw]");
    const rgb = r.rgb === undefined || r.rgb === null ? null : rgbMeta(r.rgb, b, 3, "kernels");
    const absmax = typeof r.absmax === "number" && Number.isFinite(r.absmax) ? r.absmax : 1;
    return { layer: optionalText(r, "layer", "kernels"), stack: stackMeta(r.stack, b, "kernels"), kernel_shape: kernelShape, absmax, rgb };
  },
  predictions: (r) => ({ top: parsePredictions(r.top) }),
  objects: (r, b) => {
    const w = "objects";
    const task = r.task === "segmentation" ? "segmentation" : r.task === "detection" ? "detection" : null;
    if (task === null) throw new PayloadError(`${w}: task must be "detection" or "segmentation"`);
    const size = numbers(r.size, `${w} size`);
    if (size.length !== 2) throw new PayloadError(`${w}: size must be [H, W]`);
    const labels = integers(r.labels, `${w} labels`);
    if (!Array.isArray(r.label_names) || r.label_names.length !== labels.length) {
      throw new PayloadError(`${w}: label_names must name each of the ${labels.length} labels`);
    }
    const names = r.label_names.map(String);
    if (task === "detection") {
      const shape = numbers(record(r.boxes, `${w} boxes`).shape, `${w} boxes shape`);
      if (shape.length !== 2 || shape[0] !== labels.length || shape[1] !== 4) throw new PayloadError(`${w}: boxes must be [${labels.length}, 4]`);
      if (b.length < 2) throw new PayloadError(`${w}: expected 2 buffers (boxes, scores), got ${b.length}`);
      return { task, size, labels, label_names: names, floor: finite(r, "floor", w), pixels: null, mask_shape: null };
    }
    const maskShape = numbers(record(r.mask, `${w} mask`).shape, `${w} mask shape`);
    if (maskShape.length !== 2) throw new PayloadError(`${w}: mask shape must be [H, W]`);
    const pixels = numbers(r.pixels, `${w} pixels`);
    if (pixels.length !== labels.length) throw new PayloadError(`${w}: pixels must count each of the ${labels.length} classes`);
    if (b.length < 1) throw new PayloadError(`${w}: expected 1 buffer (the mask), got ${b.length}`);
    return { task, size, labels, label_names: names, floor: null, pixels, mask_shape: maskShape };
  },
  object_cam: (r, b) => {
    const w = "object_cam";
    const box = r.box === null || r.box === undefined ? null : finiteNumbers(r.box, `${w} box`);
    if (box && box.length !== 4) throw new PayloadError(`${w}: box must be [x1, y1, x2, y2]`);
    return {
      stack: stackMeta(r.stack, b, w),
      method: text(r, "method", w),
      layer: text(r, "layer", w),
      object: finite(r, "object", w),
      label: finite(r, "label", w),
      class_name: text(r, "class_name", w),
      score: finite(r, "score", w),
      box,
      normalize: r.normalize === true,
    };
  },
  cam: (r, b) => ({
    ...explained(r, "cam"),
    layer: optionalText(r, "layer", "cam"),
    method: text(r, "method", "cam"),
    stack: stackMeta(r.stack, b, "cam"),
  }),
  saliency: (r, b) => ({ ...explained(r, "saliency"), method: text(r, "method", "saliency"), stack: stackMeta(r.stack, b, "saliency") }),
  metrics: (r) => {
    const figures = record(r.figures, "metrics figures");
    for (const [k, v] of Object.entries(figures)) {
      if (typeof v !== "number" && typeof v !== "string" && v !== null) {
        throw new PayloadError(`metrics: figure ${k} must be a number or text`);
      }
    }
    const better: Record<string, Better> = {};
    const given = r.better === undefined || r.better === null ? {} : record(r.better, "metrics better");
    for (const [k, v] of Object.entries(given)) if (v === "lower" || v === "higher") better[k] = v;
    return { figures: figures as Record<string, number | string | null>, better };
  },
  actmax: (r) => ({
    layer: optionalText(r, "layer", "actmax"),
    ...(typeof r.regularize === "boolean" ? { regularize: r.regularize } : {}),
  }),
  examples: (r, b) => {
    const w = "examples";
    const rows = (value: unknown, what: string): number[][] => {
      if (!Array.isArray(value)) throw new PayloadError(`${w}: ${what} must be a list`);
      return value.map((v, i) => integers(v, `${w} ${what} ${i}`));
    };
    const names = r.label_names;
    return {
      layer: text(r, "layer", w),
      channel: finite(r, "channel", w),
      indices: integers(r.indices, `${w} indices`),
      scores: finiteNumbers(r.scores, `${w} scores`),
      labels: integers(r.labels, `${w} labels`),
      label_names: Array.isArray(names) ? names.map((n) => (typeof n === "string" ? n : null)) : null,
      positions: rows(r.positions, "positions"),
      boxes: rows(r.boxes, "boxes"),
      channels: r.channels === undefined || r.channels === null ? null : integers(r.channels, `${w} channels`),
      rgb: rgbMeta(r.rgb, b, 0, w),
      maps: r.maps === undefined || r.maps === null ? null : stackMeta(r.maps, b.slice(1), w),
    };
  },
  sanity: (r, b) => {
    const w = "sanity";
    const mode = r.mode === "independent" ? "independent" : "cascade";
    const steps = Array.isArray(r.steps) ? r.steps : [];
    const logit = r.random_logit === undefined || r.random_logit === null ? null : record(r.random_logit, `${w} random_logit`);
    return {
      ...explained(r, w),
      method: text(r, "method", w),
      mode,
      stack: stackMeta(r.stack, b, w),
      steps: steps.map((s, i) => {
        const step = record(s, `${w} step ${i}`);
        return { layer: text(step, "layer", `${w} step ${i}`), scores: similarityScores(step.scores, `${w} step ${i}`) };
      }),
      random_logit: logit
        ? { target: finite(logit, "target", w), class_name: optionalText(logit, "class_name", w) ?? null, scores: similarityScores(logit.scores, `${w} random_logit`) }
        : null,
      similarity: text(r, "similarity", w),
      threshold: finite(r, "threshold", w),
      over: text(r, "over", w),
      value: nullableNumber(r.value, `${w} value`),
      fails: typeof r.fails === "boolean" ? r.fails : null,
    };
  },
  evaluation_worst: (r, b) => {
    const w = "evaluation_worst";
    if (!Array.isArray(r.values)) throw new PayloadError(`${w}: values must be a list`);
    const images = r.images === true;
    const rgb = images ? rgbMeta(r.rgb, b, 0, w) : null;
    const maps = images ? stackMeta(r.maps, b.slice(1), w) : null;
    if (rgb && maps) {
      const [k, h, wd] = rgb.shape;
      if (rgb.shape.length !== 4 || maps.shape[0] !== k || maps.shape[1] !== h || maps.shape[2] !== wd) {
        throw new PayloadError(`${w}: thumbnails ${JSON.stringify(rgb.shape)} and maps ${JSON.stringify(maps.shape)} differ`);
      }
    }
    return {
      method: text(r, "method", w),
      metric: text(r, "metric", w),
      better: r.better === "higher" ? "higher" : "lower",
      indices: integers(r.indices, `${w} indices`),
      values: r.values.map((v, i) => nullableNumber(v, `${w} value ${i}`)),
      targets: integers(r.targets, `${w} targets`),
      labels: r.labels === undefined || r.labels === null ? null : integers(r.labels, `${w} labels`),
      target_names: Array.isArray(r.target_names) ? r.target_names.map(String) : null,
      label_names: Array.isArray(r.label_names) ? r.label_names.map(String) : null,
      n: finite(r, "n", w),
      layer: r.layer === undefined || r.layer === null ? null : text(r, "layer", w),
      images,
      rgb,
      maps,
    };
  },
  arithmetic: (r, b) => {
    const w = "arithmetic";
    if (b.length < 3) throw new PayloadError(`${w}: expected 3 buffers (patch, kernel, products), got ${b.length}`);
    return {
      layer: text(r, "layer", w),
      channel: finite(r, "channel", w),
      row: finite(r, "row", w),
      col: finite(r, "col", w),
      kernel_shape: numbers(r.kernel_shape, `${w} kernel_shape`),
      bias: finite(r, "bias", w),
      value: finite(r, "value", w),
      output: finite(r, "output", w),
      input_channels: numbers(r.input_channels, `${w} input_channels`),
      box: integers(r.box, `${w} box`),
    };
  },
};
