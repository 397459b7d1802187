/**
 * The kernels view's numbers: the output-filter field clamped to the
 * layer's filters, and the "all filters" grid paged by whole filters, each
 * filter starting a row (one row = one filter's input-channel kernels when
 * they fit the width).
 *
 * Pure module: no DOM access.
 */

import { type Translate, t as defaultT } from "./i18n";
import type { PageInfo } from "./tiling";

/** A typed filter index as the field must show it: an integer in 0 .. count-1 (0 when count is 0). */
export function clampFilter(value: number, count: number): number {
  const top = Math.max(0, Math.floor(count) - 1);
  if (!Number.isFinite(value)) return 0;
  return Math.min(top, Math.max(0, Math.floor(value)));
}

/** Whole filters on one page of at most `pageTiles` kernels (at least one filter). */
export function filtersPerPage(inputs: number, pageTiles: number): number {
  return Math.max(1, Math.floor(pageTiles / Math.max(1, inputs)));
}

/**
 * Columns for rows of whole filters: as many whole filters (`inputs`
 * kernels each) as fit in `fit` columns, so every filter starts at the same
 * column of a row; when one filter does not fit, the largest divisor of
 * `inputs` that does (a filter then takes several full rows, and the next
 * one starts a row).
 */
export function alignedColumns(inputs: number, fit: number): number {
  const n = Math.max(1, Math.floor(inputs));
  const f = Math.max(1, Math.floor(fit));
  if (f >= n) return n * Math.floor(f / n);
  for (let d = f; d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** The pager's text for a page of whole filters: "filters 8–15 of 64 · 16 kernels each". */
export function filterPageText(page: PageInfo, inputs: number, filters: number, t: Translate = defaultT): string {
  const per = Math.max(1, inputs);
  const first = Math.floor(page.start / per);
  const last = Math.max(first, Math.ceil(page.end / per) - 1);
  const which = first === last ? t("kernels.filter_n", { index: first }) : t("kernels.filters_range", { first, last });
  const each = inputs === 1 ? t("kernels.each_one") : t("kernels.each_many", { count: inputs });
  return t("kernels.page", { page: page.pageIndex + 1, pages: page.pageCount, which, filters, each });
}
