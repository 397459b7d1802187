/**
 * The Trust view's words and order: the sanity check's verdict and score
 * lines, the labels of the randomised maps, and the sorting of the
 * evaluation table (click a header: sort by it; again: the other way).
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
