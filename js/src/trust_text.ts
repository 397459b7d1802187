/**
 * The Trust view's words and order: the sanity check's verdict and score
 * lines, the labels of the randomised maps, the sorting of the evaluation
 * table (click a header: sort by it; again: the other way), and the
 * drill-down's lines, thumbnail sizes and which of its images is the input.
 *
 * Pure module: no DOM access.
 */

import { formatValue } from "./format";
import { type Translate, t as defaultT } from "./i18n";
import type { ReplyContent, SanityMode, SimilarityScores } from "./messages";
import type { EvaluationRecord } from "./traits";

/** A score with 2 decimals ("0.83"), or "n/a". */
export function scoreText(v: number | null, t: Translate = defaultT): string {
  return v === null || !Number.isFinite(v) ? t("trust.na") : v.toFixed(2);
}

/** "Spearman 0.83 · SSIM 0.71 · HOG 0.65" */
export function scoresText(s: Readonly<SimilarityScores>, t: Translate = defaultT): string {
  return t("trust.scores", { spearman: scoreText(s.spearman, t), ssim: scoreText(s.ssim, t), hog: scoreText(s.hog, t) });
}

/** What is random in a step's map: "from features.9 up random" (cascade) or "only features.9 random". */
export function stepLabel(mode: SanityMode, layer: string, t: Translate = defaultT): string {
  return t(mode === "cascade" ? "trust.step_cascade" : "trust.step_independent", { layer });
}

/** The one-line verdict of a sanity check, with the engine's threshold. */
export function verdictText(c: Pick<ReplyContent["sanity"], "fails" | "value" | "threshold" | "over">, t: Translate = defaultT): string {
  if (c.fails === null) return t("trust.no_verdict");
  const params = { value: scoreText(c.value, t), threshold: formatValue(c.threshold) };
  const final = c.over === "final";
  if (c.fails) return t(final ? "trust.fail_final" : "trust.fail", params);
  return t(final ? "trust.pass_final" : "trust.pass", params);
}

// ---------- the evaluation table ----------

export const COLUMNS = ["method", "metric", "mean", "interval", "better", "n"] as const;
export type Column = (typeof COLUMNS)[number];
export interface SortState {
  column: Column;
  ascending: boolean;
}

/** The sort after a click on `column`: the same column flips, another starts ascending (numbers: descending). */
export function nextSort(current: SortState | null, column: Column): SortState {
  if (current && current.column === column) return { column, ascending: !current.ascending };
  return { column, ascending: !(column === "mean" || column === "n") };
}

/** The arrow beside the sorted column's header ("" elsewhere). */
export function sortArrow(state: SortState | null, column: Column): string {
  if (!state || state.column !== column) return "";
  return state.ascending ? " ▲" : " ▼";
}

function sortValue(r: Readonly<EvaluationRecord>, column: Column): string | number | null {
  switch (column) {
    case "method":
      return r.method;
    case "metric":
      return r.metric;
    case "mean":
      return r.mean;
    case "interval":
      return r.ci_low === null || r.ci_high === null ? null : r.ci_high - r.ci_low;
    case "better":
      return r.better;
    case "n":
      return r.n;
  }
}

/**
 * The rows sorted by `state` (null: as given). Stable; missing values (NaN
 * sent as null) last in either direction; text compared as people read it.
 */
export function sortRows<R extends EvaluationRecord>(rows: readonly R[], state: SortState | null): R[] {
  const indexed = rows.map((r, i) => [r, i] as const);
  if (!state) return rows.slice();
  const sign = state.ascending ? 1 : -1;
  indexed.sort(([a, i], [b, j]) => {
    const va = sortValue(a, state.column);
    const vb = sortValue(b, state.column);
    if (va === null || vb === null) return va === vb ? i - j : va === null ? 1 : -1;
    const c = typeof va === "number" && typeof vb === "number" ? va - vb : String(va).localeCompare(String(vb));
    return c !== 0 ? sign * c : i - j;
  });
  return indexed.map(([r]) => r);
}

/** "0.4123 [0.3871, 0.4402]"-style interval text, or "n/a". */
export function intervalText(r: Readonly<EvaluationRecord>, t: Translate = defaultT): string {
  if (r.ci_low === null || r.ci_high === null) return t("trust.na");
  return `[${formatValue(r.ci_low)}, ${formatValue(r.ci_high)}]`;
}

// ---------- the drill-down to the worst images ----------

/** What the drill-down's texts read of an `evaluation_worst` reply. */
export type WorstText = Pick<ReplyContent["evaluation_worst"], "indices" | "values" | "targets" | "labels" | "target_names" | "label_names">;

/**
 * The line of worst image `i`: "image 12: 0.4123 · class ring", with
 * "· label square" when the data has labels; names from the reply, else
 * from `name`.
 */
export function worstItemText(c: Readonly<WorstText>, i: number, name: (index: number) => string, t: Translate = defaultT): string {
  const value = c.values[i];
  const params = {
    index: c.indices[i] ?? "",
    value: value === null || value === undefined ? t("trust.na") : formatValue(value),
    target: c.target_names?.[i] ?? name(c.targets[i] ?? 0),
    label: c.label_names?.[i] ?? (c.labels ? name(c.labels[i] ?? 0) : ""),
  };
  return t(c.labels ? "trust.worst_row_label" : "trust.worst_row", params);
}

/** CSS size [width, height] that shows a `width` x `height` image with its longer side `side` px. */
export function fitSize(width: number, height: number, side: number): [number, number] {
  const s = side / Math.max(width, height, 1);
  return [Math.max(1, Math.round(width * s)), Math.max(1, Math.round(height * s))];
}

/**
 * Which dataset image is the explorer's input, from a click on a thumbnail
 * and the image version: a click waits for the next version (Python loads
 * the image and bumps it), which then belongs to that image until the
 * version changes again (another image, a drawing).
 */
export class LoadedImage {
  private pending: { index: number; from: number } | null = null;
  private current: { index: number; version: number } | null = null;

  /** A thumbnail was clicked while the input was image version `version`. */
  clicked(index: number, version: number): void {
    this.pending = { index, from: version };
  }

  /** The dataset index shown as the input at image version `version` (null: another image), and whether one is on its way. */
  at(version: number): { index: number | null; waiting: number | null } {
    if (this.pending && version !== this.pending.from) {
      this.current = { index: this.pending.index, version };
      this.pending = null;
    }
    if (this.current && this.current.version !== version) this.current = null;
    return { index: this.current?.index ?? null, waiting: this.pending?.index ?? null };
  }
}
