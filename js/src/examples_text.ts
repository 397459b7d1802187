/**
 * Texts of the dataset-examples view: what one example or one channel's
 * best example is, and the caption of a figure.
 *
 * Pure module: no DOM access.
 */

import { formatValue } from "./format";
import type { Translate } from "./i18n";
import type { ReplyContent } from "./messages";

type Examples = ReplyContent["examples"];

/** The class name of entry `i` (its label's name, the label number, or ""). */
export function exampleClass(content: Examples, i: number, t: Translate): string {
  const label = content.labels[i] ?? -1;
  if (label < 0) return "";
  return content.label_names?.[i] ?? t("examples.label_number", { label });
}

/**
 * Hover text of tile `i`: dataset index, class, score and the position of
 * the maximum; in an overview, the channel first.
 */
export function exampleLabel(content: Examples, i: number, t: Translate): string {
  const [row, col] = content.positions[i] ?? [0, 0];
  const parts = [
    t("examples.index", { index: content.indices[i] ?? -1 }),
    exampleClass(content, i, t),
    t("examples.score", { score: formatValue(content.scores[i] ?? Number.NaN) }),
    t("examples.position", { row: row ?? 0, col: col ?? 0 }),
  ].filter(Boolean);
  const channel = content.channels?.[i];
  if (channel !== undefined) parts.unshift(t("examples.channel", { channel }));
  return parts.join(" · ");
}

/**
 * The share of a channel's examples whose label is its most common one, and
 * that label's position in `labels` (null without labels): how "pure" a unit is.
 */
export function classPurity(labels: readonly number[]): { share: number; label: number } | null {
  const known = labels.filter((l) => l >= 0);
  if (known.length === 0) return null;
  const counts = new Map<number, number>();
  for (const l of known) counts.set(l, (counts.get(l) ?? 0) + 1);
  let best = known[0] as number;
  for (const [l, n] of counts) if (n > (counts.get(best) ?? 0) || (n === counts.get(best) && l < best)) best = l;
  return { share: (counts.get(best) ?? 0) / labels.length, label: best };
}
