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
import type { Better, Explained, Prediction } from "./messages";

/** A probability as "87.3%" (at least one decimal; "<0.1%" for tiny ones). */
export function formatProb(p: number): string {
  if (!Number.isFinite(p)) return "";
  if (p > 0 && p < 0.0005) return "<0.1%";
  return `${(p * 100).toFixed(1)}%`;
}

/** Class names and probabilities seen so far (a class is named before its map arrives). */
export class ClassNames {
  private readonly names = new Map<number, string>();
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
    return this.names.get(index) ?? `class ${index}`;
  }

  /** The probability of class `index` for image `version`, when a reply said it. */
  prob(version: number, index: number): number | null {
    return this.probs.get(`${version}|${index}`) ?? null;
  }
}

/** "circle 87.3%", "circle", or "class-agnostic" (target null). */
export function classText(e: Readonly<Explained>): string {
  if (e.target === null) return "class-agnostic";
  const name = e.class_name ?? `class ${e.target}`;
  return e.prob === null ? name : `${name} ${formatProb(e.prob)}`;
}

/** The label of a map: "GradCAM · circle 87.3% · layer features.11" (layer: CAM only). */
export function explainedText(method: string, e: Readonly<Explained>, layer?: string): string {
  return [method, classText(e), layer ? `layer ${layer}` : ""].filter(Boolean).join(" · ");
}

/** "computing GradCAM++ for circle at features.11…" (className null: class-agnostic). */
export function computingText(method: string, className: string | null, layer?: string): string {
  const what = className === null ? " (class-agnostic)" : ` for ${className}`;
  return `computing ${method}${what}${layer ? ` at ${layer}` : ""}…`;
}

/** A figure's name as people write it: "deletion AUC", "average drop". */
function figureName(key: string): string {
  return key.replace(/_/g, " ").replace(/\bauc\b/i, "AUC");
}

/** "deletion AUC 0.1234 (lower is better) · insertion AUC 0.5 (higher is better) · …" */
export function figuresText(
  figures: Readonly<Record<string, number | string | null>>,
  better: Readonly<Record<string, Better>> = {},
): string {
  return Object.entries(figures)
    .map(([k, v]) => {
      const value = typeof v === "number" ? formatValue(v) : (v ?? "n/a");
      const dir = better[k];
      return `${figureName(k)} ${value}${dir ? ` (${dir} is better)` : ""}`;
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
export function camLayerText(name: string, all: readonly string[]): string {
  const container = all.some((o) => o !== name && o.startsWith(`${name}.`));
  return container ? `${name} (whole block output)` : name;
}
