/**
 * Trust: can the maps be believed? Two parts.
 *
 * Sanity check (Adebayo et al., 2018): for a CAM or saliency method, the
 * map of the explorer's class with the model's layers re-initialised one by
 * one (cascade from the output, or independently), drawn in a row after the
 * original with each map's similarity to it, and the engine's verdict.
 * Runs only when Run is pressed (one map per layer); cancellable.
 *
 * Evaluation: the summary of `LayerExplorer(evaluation=evaluate(...))` as a
 * table sorted by a click on a column header; a click on a row shows the
 * images where that method does worst on that metric (./trust_worst.ts).
 */

import { paintScaled } from "../canvas_util";
import { Colorizer, isDiverging } from "../colormap";
import { type MapStack, decodeMapStack } from "../decode";
import { button, el, MessageLine, select, syncSelect } from "../dom";
import type { Entry } from "../entry";
import { formatValue } from "../format";
import { requestKey } from "../keys";
import { type RequestParams, type SanityMode, SANITY_MODES, stackPayload } from "../messages";
import { blendOverlay } from "../overlay";
import { CANCELLED, type Progress } from "../status";
import type { TileSource } from "../tiles";
import type { EvaluationRecord } from "../traits";
import { COLUMNS, type Column, type SortState, intervalText, nextSort, scoresText, sortArrow, sortRows, stepLabel, verdictText } from "../trust_text";
import { chosenClass } from "./predictions";
import { type Tab, type TabContext, showPending } from "./tab";
import { WorstImages } from "./trust_worst";

/** Side of each map of the row, CSS pixels. */
const MAP_SIZE = 96;

const COLUMN_TITLES: Record<Column, "trust.col_method" | "trust.col_metric" | "trust.col_mean" | "trust.col_interval" | "trust.col_better" | "trust.col_n"> = {
  method: "trust.col_method",
  metric: "trust.col_metric",
  mean: "trust.col_mean",
  interval: "trust.col_interval",
  better: "trust.col_better",
  n: "trust.col_n",
};

export function createTrustTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("trust");
  const methods = (): string[] => [...ctx.get("cam_methods"), ...ctx.get("saliency_methods").filter((m) => !ctx.get("cam_methods").includes(m))];
  const methodOptions = (): [string, string][] => methods().map((m) => [m, m]);
  // a saved notebook shows its last check: start with its method and mode
  const shownKey = ctx.get("shown_sanity")?.key.split("|") ?? [];
  let method = shownKey[2] ?? ctx.get("cam_method");
  let mode: SanityMode = shownKey[3] === "independent" ? "independent" : "cascade";
  /** Keys Run was pressed for: only these are asked of Python. */
  const asked = new Set<string>();

  // ---------- sanity check ----------
  const sanity = el(doc, "section", "cnnviz-trust-sanity");
  const title = el(doc, "div", "cnnviz-trust-title", t("trust.sanity_title"));
  const about = el(doc, "div", "cnnviz-meta", t("trust.sanity_about"));
  const controls = el(doc, "div", "cnnviz-controls");
  const methodSel = select(doc, t("trust.method"), methodOptions(), method, (v) => {
    method = v;
    refresh();
  });
  const modeSel = select(
    doc,
    t("trust.mode"),
    SANITY_MODES.map((m) => [m, t(m === "cascade" ? "trust.mode_cascade" : "trust.mode_independent")] as [string, string]),
    mode,
    (v) => {
      mode = v === "independent" ? "independent" : "cascade";
      refresh();
    },
  );
  const run = button(doc, t("trust.run"), t("trust.run_label"), () => {
    const p = params();
    if (!p) return;
    asked.add(requestKey("sanity", p));
    ctx.session.retry("sanity");
    refresh();
  });
  run.classList.add("cnnviz-trust-run");
  controls.append(methodSel.wrap, modeSel.wrap, run);
  const message = new MessageLine(doc);
  const caption = el(doc, "div", "cnnviz-meta cnnviz-trust-caption");
  const row = el(doc, "div", "cnnviz-trust-maps");
  row.setAttribute("role", "group");
  const verdict = el(doc, "div", "cnnviz-trust-verdict");
  const logit = el(doc, "div", "cnnviz-meta cnnviz-trust-logit");
  sanity.append(title, about, controls, message.el, caption, row, verdict, logit);

  // ---------- evaluation ----------
  const evaluation = el(doc, "section", "cnnviz-trust-evaluation");
  const evalTitle = el(doc, "div", "cnnviz-trust-title", t("trust.eval_title"));
  const evalAbout = el(doc, "div", "cnnviz-meta cnnviz-trust-eval-about");
  const table = el(doc, "table", "cnnviz-trust-table");
  const worstMessage = new MessageLine(doc);
  const worst = new WorstImages(ctx);
  evaluation.append(evalTitle, evalAbout, table, worstMessage.el, worst.el);
  panel.append(sanity, evaluation);

  let sort: SortState | null = null;
  // a saved notebook shows its last drill-down: start with its method and metric
  const shownWorst = ctx.get("shown_evaluation_worst")?.key.split("|") ?? [];
  let chosen: RequestParams["evaluation_worst"] | null = shownWorst.length === 3 ? { method: shownWorst[1] ?? "", metric: shownWorst[2] ?? "" } : null;
  /** What the table was drawn from (redrawn only when it changes). */
  let drawnTable = "";

  function params(): RequestParams["sanity"] | null {
    const version = ctx.get("image_version");
    const predictions = ctx.session.request("predictions", { version });
    const target = chosenClass(ctx.get("target_class"), predictions?.content.top ?? null);
    return target === null ? null : { version, method, mode, target };
  }

  function refresh(): void {
    syncSelect(methodSel, methodOptions(), method);
    modeSel.input.value = mode;
    refreshSanity();
    refreshEvaluation();
  }

  function refreshSanity(): void {
    const p = params();
    run.disabled = p === null;
    if (!p) {
      clearSanity();
      message.show(t("trust.waiting_predictions"));
      return;
    }
    const key = requestKey("sanity", p);
    const name = ctx.classes.name(p.target);
    const entry = asked.has(key) ? ctx.session.request("sanity", p) : ctx.session.entry("sanity", key);
    if (entry) {
      message.hide();
      draw(entry);
      return;
    }
    clearSanity();
    if (!asked.has(key)) message.show(t("trust.hint", { name }));
    else showPending(ctx, message, "sanity", key, t("trust.running", { method, name }), refresh);
  }

  function clearSanity(): void {
    row.replaceChildren();
    caption.textContent = "";
    verdict.textContent = "";
    logit.textContent = "";
    delete row.dataset.maps;
  }

  function stackOf(entry: Entry<"sanity">): MapStack {
    return (entry.decoded.stack ??= decodeMapStack(stackPayload(entry.content.stack, entry.buffers)));
  }

  function draw(entry: Entry<"sanity">): void {
    const t0 = performance.now();
    const c = entry.content;
    const stack = stackOf(entry);
    const name = c.class_name ?? ctx.classes.name(c.target ?? 0);
    const cmap = ctx.get("cam_cmap");
    const colorizer = new Colorizer(stack, ctx.colorTable(cmap), { scale: "map", symmetric: isDiverging(cmap, ctx.get("diverging_colormaps")) });
    const image = ctx.image();
    const overlay = image !== null && image.height === stack.height && image.width === stack.width;
    const opacity = ctx.get("opacity");
    const source: TileSource = {
      count: stack.channels,
      height: stack.height,
      width: stack.width,
      paint: (i, out) => {
        if (overlay && image) blendOverlay(image.data.subarray(0, stack.height * stack.width * 3), colorizer.colorize(i), opacity, out);
        else colorizer.colorize(i, out);
      },
      value: () => null,
      label: () => "",
    };
    const s = MAP_SIZE / Math.max(stack.height, stack.width);
    const figures: HTMLElement[] = [];
    for (let i = 0; i < stack.channels; i++) {
      const step = i >= 1 && i <= c.steps.length ? c.steps[i - 1] : undefined;
      const isLogit = i > c.steps.length && c.random_logit !== null;
      const label = i === 0 ? t("trust.original") : step ? stepLabel(c.mode, step.layer, t) : isLogit && c.random_logit ? t("trust.random_logit", { name: c.random_logit.class_name ?? String(c.random_logit.target) }) : "";
      const scores = step ? step.scores : isLogit && c.random_logit ? c.random_logit.scores : null;
      const fig = el(doc, "figure", isLogit ? "cnnviz-trust-map cnnviz-trust-map-logit" : "cnnviz-trust-map");
      const canvas = el(doc, "canvas", "cnnviz-trust-canvas");
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", label);
      paintScaled(canvas, source, i, Math.round(stack.width * s), Math.round(stack.height * s));
      fig.append(canvas, el(doc, "figcaption", "cnnviz-meta cnnviz-trust-caption-text", label));
      if (scores) {
        const line = el(doc, "div", "cnnviz-meta cnnviz-trust-score", scoresText(scores, t));
        if (!isLogit && scores.spearman !== null && scores.spearman > c.threshold) line.classList.add("cnnviz-trust-bad");
        fig.append(line);
      }
      figures.push(fig);
    }
    row.replaceChildren(...figures);
    row.dataset.maps = String(stack.channels);
    row.setAttribute("aria-label", t("trust.maps_label", { method: c.method }));
    const modeText = t(c.mode === "cascade" ? "trust.mode_cascade" : "trust.mode_independent");
    caption.textContent = t("trust.caption", { method: c.method, name, mode: modeText });
    verdict.textContent = verdictText(c, t);
    verdict.dataset.fails = String(c.fails);
    verdict.classList.toggle("cnnviz-trust-bad", c.fails === true);
    verdict.classList.toggle("cnnviz-trust-good", c.fails === false);
    logit.textContent = c.random_logit
      ? t("trust.logit", { other: c.random_logit.class_name ?? String(c.random_logit.target), name, scores: scoresText(c.random_logit.scores, t) })
      : "";
    ctx.markPaint("sanity", t0);
  }

  // ---------- the evaluation table ----------

  function refreshEvaluation(): void {
    const rows = ctx.get("evaluation_summary");
    if (!rows) {
      evalAbout.textContent = t("trust.eval_none");
      table.replaceChildren();
      table.hidden = true;
      worst.clear();
      worstMessage.hide();
      drawnTable = "";
      return;
    }
    evalAbout.textContent = t("trust.eval_about");
    table.hidden = false;
    const identity = JSON.stringify([rows, sort, chosen, ctx.get("lang")]);
    if (identity !== drawnTable) {
      drawTable(rows);
      drawnTable = identity;
    }
    refreshWorst();
  }

  function cell(tag: "td" | "th", text: string): HTMLTableCellElement {
    return el(doc, tag, "cnnviz-trust-cell", text);
  }

  function drawTable(rows: readonly EvaluationRecord[]): void {
    const head = el(doc, "thead");
    const tr = el(doc, "tr");
    for (const column of COLUMNS) {
      const name = t(COLUMN_TITLES[column]);
      const th = cell("th", "");
      const b = button(doc, name + sortArrow(sort, column), t("trust.sort_label", { column: name }), () => {
        sort = nextSort(sort, column);
        refreshEvaluation();
      });
      b.dataset.column = column;
      b.className = "cnnviz-trust-sort";
      if (sort?.column === column) th.setAttribute("aria-sort", sort.ascending ? "ascending" : "descending");
      th.append(b);
      tr.append(th);
    }
    head.append(tr);
    const body = el(doc, "tbody");
    for (const r of sortRows(rows, sort)) {
      const line = el(doc, "tr", "cnnviz-trust-row");
      line.tabIndex = 0;
      line.title = t("trust.row_label", { method: r.method, metric: r.metric });
      line.dataset.method = r.method;
      line.dataset.metric = r.metric;
      if (chosen && chosen.method === r.method && chosen.metric === r.metric) {
        line.classList.add("cnnviz-trust-row-chosen");
        line.setAttribute("aria-selected", "true");
      }
      line.append(
        cell("td", r.method),
        cell("td", r.metric),
        cell("td", r.mean === null ? t("trust.na") : formatValue(r.mean)),
        cell("td", intervalText(r, t)),
        cell("td", t(r.better === "higher" ? "trust.higher" : "trust.lower")),
        cell("td", String(r.n)),
      );
      const open = (): void => {
        chosen = { method: r.method, metric: r.metric };
        refreshEvaluation();
      };
      line.addEventListener("click", open);
      line.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          open();
        }
      });
      body.append(line);
    }
    table.replaceChildren(head, body);
  }

  function refreshWorst(): void {
    if (!chosen) {
      worst.clear();
      worstMessage.hide();
      return;
    }
    const key = requestKey("evaluation_worst", chosen);
    const entry = ctx.session.request("evaluation_worst", chosen);
    if (!entry) {
      worst.clear();
      showPending(ctx, worstMessage, "evaluation_worst", key, t("trust.worst_loading", chosen), refresh);
      return;
    }
    worstMessage.hide();
    worst.draw(entry);
  }

  return {
    el: panel,
    kinds: ["predictions", "sanity", "evaluation_worst"],
    traits: ["cam_methods", "saliency_methods", "target_class", "image_version", "cam_cmap", "opacity", "evaluation_summary", "shown_sanity", "shown_evaluation_worst"],
    refresh,
    reply: () => {
      if (!panel.hidden) refresh();
    },
    error: (kind, _key, text) => {
      if (text === CANCELLED) refresh();
      else if (kind === "evaluation_worst") worstMessage.error(text);
      else if (kind === "sanity") message.error(text);
    },
    progress: (p: Readonly<Progress>) => {
      const q = params();
      if (p.kind === "sanity" && q && p.key === requestKey("sanity", q)) message.show(t("trust.progress", { text: p.text }));
    },
    resize: () => undefined,
    destroy: () => undefined,
  };
}
