/**
 * Model traits the views read. The binary fields follow the data contract
 * in decode.ts.
 *
 * Pure module: no DOM access.
 */

import type { MapStackPayload, RgbStackPayload } from "./decode";
import type { LayerField } from "./zoom";

// ---------- the generic map-grid view (widget_view.ts); every trait may be missing ----------

export interface GenericTraits {
  [key: string]: unknown;
  /** Map stack to show as a grid of tiles. */
  maps?: MapStackPayload | null;
  /** Colour table: 256 RGBA entries (DataView of 1024 bytes). */
  colormap?: DataView | null;
  /** Title above the grid (plain text). */
  title?: string | null;
  /** Optional: "map" (default), "layer" or "global". */
  color_scale?: string | null;
  /** Optional: centre the colour range on zero. */
  symmetric?: boolean | null;
  /** Optional: [lo, hi] display range for color_scale "global". */
  value_range?: readonly [number, number] | null;
  /** Optional: the language of the texts ("en" default, "zh"). */
  lang?: string | null;
}

/** Traits whose change redraws the grid. */
export const DRAW_TRAITS = ["maps", "colormap", "color_scale", "symmetric", "value_range"] as const;

// ---------- the explorer ----------

export interface LayerInfo {
  name: string;
  type: string;
  /** Output shape [C, H, W] for the explorer's image, or null. */
  shape: number[] | null;
  /** Conv kernels [O, I, kh, kw], or null for layers without kernels. */
  kernel_shape: number[] | null;
  /** Receptive field of the layer's units, or null when unknown (outline proportionally). */
  rf?: LayerField | null;
}

/** The explorer's dataset examples (`examples_info`); `lazy`: computed when first asked for. */
export interface ExamplesInfo {
  layers: readonly string[];
  k: number;
  description: string;
  lazy: boolean;
}

/** One record of the evaluation's summary (`evaluation_summary`); NaN travels as null. */
export interface EvaluationRecord {
  method: string;
  metric: string;
  group: string;
  n: number;
  mean: number | null;
  ci_low: number | null;
  ci_high: number | null;
  better: "higher" | "lower";
}

/** What is on screen, kept in the widget state (see messages.ts, `parseShown`). */
export interface ShownValue {
  id: number | null;
  key: string;
  content: Record<string, unknown>;
  buffers: DataView[];
}

export type ExplorerTraits = {
  _view: string;
  /** The language of every text ("en", "zh"; see i18n.ts). */
  lang: string;
  /** Tabs to show (empty: all). */
  views: readonly string[];
  tab: string;
  title: string;
  layers: readonly LayerInfo[];
  /** Empty: the first layer. */
  layer_name: string;
  input_image: RgbStackPayload | null;
  image_version: number;
  colormaps: Readonly<Record<string, DataView>>;
  cmap: string;
  kernel_cmap: string;
  cam_cmap: string;
  color_scale: string;
  order: string;
  global_range: readonly [number, number] | null;
  cam_methods: readonly string[];
  cam_method: string;
  /** CAM methods whose map does not depend on the class (target null, key `*`). */
  class_agnostic_methods: readonly string[];
  /** Colour tables centred on zero (white = 0): maps drawn with them are symmetric. */
  diverging_colormaps: readonly string[];
  cam_layers: readonly string[];
  /** Empty: the last CAM layer. */
  cam_layer: string;
  /** Class to explain; -1: the top prediction. */
  target_class: number;
  opacity: number;
  /** The model's input channels: 3 (RGB) or 1 (grey: activation maximisation's plain mode only). */
  input_channels: number;
  saliency_methods: readonly string[];
  saliency_method: string;
  error: string;
  shown_features: ShownValue | null;
  shown_kernels: ShownValue | null;
  shown_predictions: ShownValue | null;
  shown_cam: ShownValue | null;
  shown_saliency: ShownValue | null;
  shown_metrics: ShownValue | null;
  shown_examples: ShownValue | null;
  /** The dataset examples: recorded layers, k, the data's description; null without examples. */
  examples_info: ExamplesInfo | null;
  shown_sanity: ShownValue | null;
  /** A detector's boxes or a segmenter's classes, and the map of one of them (the objects view). */
  shown_objects: ShownValue | null;
  shown_object_cam: ShownValue | null;
  /** The objects view hides boxes with a lower score (display only). */
  score_threshold: number;
  /** The objects view asks for a box's map rescaled inside the box. */
  normalize_in_boxes: boolean;
  /** The summary of `LayerExplorer(evaluation=...)`: one record per method and metric; null without. */
  evaluation_summary: readonly EvaluationRecord[] | null;
  /** The drill-down on screen: the images where a method does worst on a metric. */
  shown_evaluation_worst: ShownValue | null;
};

export type TraitName = keyof ExplorerTraits;

/** Each trait's value when the model lacks it or holds a value of another type. */
export const DEFAULTS: Readonly<ExplorerTraits> = Object.freeze({
  _view: "explorer",
  lang: "en",
  views: [],
  tab: "",
  title: "",
  layers: [],
  layer_name: "",
  input_image: null,
  image_version: 0,
  colormaps: {},
  cmap: "viridis",
  kernel_cmap: "bwr",
  cam_cmap: "jet",
  color_scale: "map",
  order: "index",
  global_range: null,
  cam_methods: [],
  cam_method: "GradCAM",
  class_agnostic_methods: [],
  diverging_colormaps: [],
  cam_layers: [],
  cam_layer: "",
  target_class: -1,
  opacity: 0.5,
  input_channels: 3,
  saliency_methods: [],
  saliency_method: "vanilla",
  error: "",
  shown_features: null,
  shown_kernels: null,
  shown_predictions: null,
  shown_cam: null,
  shown_saliency: null,
  shown_metrics: null,
  shown_examples: null,
  examples_info: null,
  shown_sanity: null,
  shown_objects: null,
  shown_object_cam: null,
  score_threshold: 0.5,
  normalize_in_boxes: false,
  evaluation_summary: null,
  shown_evaluation_worst: null,
});

/** Whether `value` has the type of `fallback` (for null defaults: null or a dict/list). */
function fits(value: unknown, fallback: unknown): boolean {
  if (fallback === null) return value === null || (typeof value === "object" && value !== undefined);
  if (Array.isArray(fallback)) return Array.isArray(value);
  if (typeof fallback === "number") return typeof value === "number" && Number.isFinite(value);
  if (typeof fallback === "object") return typeof value === "object" && value !== null && !Array.isArray(value);
  return typeof value === typeof fallback;
}

/** What `get` needs of a model (anywidget's model and the saved page's stand-in have it). */
export interface TraitSource {
  get<K extends TraitName>(name: K): unknown;
}

/** Trait `name` of `model`, or its default. */
export function get<K extends TraitName>(model: TraitSource, name: K): ExplorerTraits[K] {
  const value = model.get(name);
  return fits(value, DEFAULTS[name]) ? (value as ExplorerTraits[K]) : DEFAULTS[name];
}
