/**
 * What a CAM or saliency map explains, in words: class names learnt from
 * the replies (predictions, and `class_name` / `prob` of each map, also for
 * classes outside the top 5), labels ("GradCAM · circle 87.3% · layer
 * features.11"), the "computing …" notes, faithfulness figures with the
 * direction that is better, and the file names of PNG exports.
 *
 * Pure module: no DOM access.
 */

import { formatValue } from "./format";
import { type MessageKey, type Translate, t as defaultT } from "./i18n";
import type { Better, Explained, Prediction, RequestKind } from "./messages";

/** A probability as "87.3%" (at least one decimal; "<0.1%" for tiny ones). */
export function formatProb(p: number): string {
  if (!Number.isFinite(p)) return "";
  if (p > 0 && p < 0.0005) return "<0.1%";
  return `${(p * 100).toFixed(1)}%`;
}

/** Class names and probabilities seen so far (a class is named before its map arrives). */
export class ClassNames {
  private readonly names = new Map<number, string>();

  /** `t`: the language of "class N" for classes not named yet. */
  constructor(private readonly t: Translate = defaultT) {}

  /** `${version}|${index}` -> probability of that class for that image. */
  private readonly probs = new Map<string, number>();

  learnPredictions(version: number, top: readonly Prediction[]): void {
    for (const p of top) {
      this.names.set(p.index, p.name);
      this.probs.set(`${version}|${p.index}`, p.prob);
    }
  }

  learnExplained(version: number | null, e: Readonly<Explained>): void {
    if (e.target === null) return;
    if (e.class_name) this.names.set(e.target, e.class_name);
    if (version !== null && e.prob !== null) this.probs.set(`${version}|${e.target}`, e.prob);
  }

  /** The class's name, or "class N" when no reply has named it yet. */
  name(index: number): string {
    return this.names.get(index) ?? this.t("explain.class_n", { index });
  }

  /** The probability of class `index` for image `version`, when a reply said it. */
  prob(version: number, index: number): number | null {
    return this.probs.get(`${version}|${index}`) ?? null;
  }
}

/** "circle 87.3%", "circle", or "class-agnostic" (target null). */
export function classText(e: Readonly<Explained>, t: Translate = defaultT): string {
  if (e.target === null) return t("explain.class_agnostic");
  const name = e.class_name ?? t("explain.class_n", { index: e.target });
  return e.prob === null ? name : `${name} ${formatProb(e.prob)}`;
}

/** The label of a map: "GradCAM · circle 87.3% · layer features.11" (layer: CAM only). */
export function explainedText(method: string, e: Readonly<Explained>, layer?: string, t: Translate = defaultT): string {
  return [method, classText(e, t), layer ? t("explain.layer", { layer }) : ""].filter(Boolean).join(" · ");
}

/** "computing GradCAM++ for circle at features.11…" (className null: class-agnostic). */
export function computingText(method: string, className: string | null, layer?: string, t: Translate = defaultT): string {
  if (className === null) {
    return layer ? t("explain.computing_agnostic_at", { method, layer }) : t("explain.computing_agnostic", { method });
  }
  return layer
    ? t("explain.computing_for_at", { method, class: className, layer })
    : t("explain.computing_for", { method, class: className });
}

/** The figures' names in the message table. */
const FIGURES: Readonly<Record<string, MessageKey>> = {
  deletion_auc: "figure.deletion_auc",
  insertion_auc: "figure.insertion_auc",
  average_drop: "figure.average_drop",
};

/** A figure's name as people write it: "deletion AUC", "average drop". */
function figureName(key: string, t: Translate): string {
  const known = Object.prototype.hasOwnProperty.call(FIGURES, key) ? FIGURES[key] : undefined;
  return known ? t(known) : key.replace(/_/g, " ").replace(/\bauc\b/i, "AUC");
}

/** The request kinds' names in the message table (a kind without one is shown as it is). */
const KINDS: Readonly<Partial<Record<RequestKind, MessageKey>>> = {
  features: "kind.features",
  kernels: "kind.kernels",
  predictions: "kind.predictions",
  cam: "kind.cam",
  metrics: "kind.metrics",
  saliency: "kind.saliency",
  actmax: "kind.actmax",
  arithmetic: "kind.arithmetic",
  examples: "kind.examples",
  sanity: "kind.sanity",
  evaluation_worst: "kind.evaluation_worst",
  objects: "kind.objects",
  object_cam: "kind.object_cam",
};

/** What a request kind is called, in the language of `t` ("features"). */
export function kindName(kind: string, t: Translate = defaultT): string {
  const key = Object.prototype.hasOwnProperty.call(KINDS, kind) ? KINDS[kind as RequestKind] : undefined;
  return key ? t(key) : kind;
}

/** "deletion AUC 0.1234 (lower is better) · insertion AUC 0.5 (higher is better) · …" */
export function figuresText(
  figures: Readonly<Record<string, number | string | null>>,
  better: Readonly<Record<string, Better>> = {},
  t: Translate = defaultT,
): string {
  return Object.entries(figures)
    .map(([k, v]) => {
      const value = typeof v === "number" ? formatValue(v) : (v ?? t("explain.na"));
      const dir = better[k];
      const figure = `${figureName(k, t)} ${value}`;
      if (dir === "lower") return t("explain.lower_better", { figure });
      return dir === "higher" ? t("explain.higher_better", { figure }) : figure;
    })
    .join(" · ");
}

/**
 * The file name of a PNG export: the non-empty parts joined by "_", each
 * part's runs of other characters than letters, digits, "." and "-" made
 * "-": ["cam", "GradCAM", "circle", "features"] -> "cam_GradCAM_circle_features.png".
 */
export function exportName(parts: readonly (string | null | undefined)[]): string {
  const clean = parts
    .map((p) => (p ?? "").trim().replace(/[^A-Za-z0-9.-]+/g, "-").replace(/^-+|-+$/g, ""))
    .filter(Boolean);
  return `${clean.length ? clean.join("_") : "cnnviz"}.png`;
}

/**
 * The CAM layers' entries for the depth slider: a name that holds other
 * CAM layers (a container such as `features`, the whole Sequential) says
 * that it is the whole block's output.
 */
export function camLayerText(name: string, all: readonly string[], t: Translate = defaultT): string {
  const container = all.some((o) => o !== name && o.startsWith(`${name}.`));
  return container ? t("explain.whole_block", { name }) : name;
}
