/**
 * Convolution kernels of the current layer: one filter's input kernels, all
 * of them (paged by whole filters, one filter a row), or RGB filters. The
 * output-filter field always says the filter shown: clamped to the layer's
 * filters as typed and when the layer changes.
 */

import { Colorizer } from "../colormap";
import { button, downloadCanvas, el, MessageLine, select, syncSelect } from "../dom";
import { type Entry, partialNote, rgbOf, stackOf } from "../entry";
import { exportName } from "../explain";
import { formatShape } from "../format";
import { requestKey } from "../keys";
import { clampFilter, filterPageText, filtersPerPage } from "../kernel_pages";
import { type TileSource, mapSource, rgbSource, subStack } from "../tiles";
import { GridSection, PAGE_SIZE } from "./grid_section";
import { LayerBar } from "./layer_bar";
import { type Tab, type TabContext, sectionTab, showPending } from "./tab";

/** Item indices 0 .. n-1. */
export const range = (n: number): number[] => Array.from({ length: Math.max(0, n) }, (_, i) => i);

export function createKernelsTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("kernels");
  const bar = new LayerBar(ctx);
  const state = { filter: 0, all: false, layer: "", filters: 0, inputs: 0 };
  /**
   * Whether every filter is drawn: asked for, or each filter has one input channel (a
   * grayscale model's first layer, a depthwise convolution), where one filter is one tile.
   */
  const showsAll = (): boolean => state.all || state.inputs === 1;
  const controls = el(doc, "div", "cnnviz-controls");
  const filterWrap = el(doc, "label", "cnnviz-control");
  const filter = el(doc, "input", "cnnviz-number");
  filter.type = "number";
  filter.min = "0";
  filter.value = "0";
  filter.setAttribute("aria-label", t("kernels.output_filter"));
  const filterCount = el(doc, "span", "cnnviz-meta cnnviz-filter-count");
  /** Clamp the typed filter to the layer's filters; the field shows the filter drawn. */
  const setFilter = (value: number): void => {
    state.filter = clampFilter(value, state.filters);
    if (filter.value !== String(state.filter)) filter.value = String(state.filter);
  };
  const typed = (): void => {
    setFilter(Number(filter.value));
    section.page = 0;
    refresh();
  };
  filter.addEventListener("input", () => {
    if (filter.value !== "") typed(); // empty: being typed
  });
  filter.addEventListener("change", typed);
  filterWrap.append(el(doc, "span", "cnnviz-control-label", t("kernels.output_filter")), filter, filterCount);
  const allWrap = el(doc, "label", "cnnviz-control");
  const all = el(doc, "input");
  all.type = "checkbox";
  all.setAttribute("aria-label", t("kernels.all_label"));
  all.addEventListener("change", () => {
    state.all = all.checked;
    section.page = 0;
    refresh();
  });
  allWrap.append(all, el(doc, "span", "cnnviz-control-label", t("kernels.all")));
  const cmap = select(doc, t("common.colormap"), ctx.colormapOptions(), ctx.get("kernel_cmap"), (v) => ctx.local("kernel_cmap", v));
  const rgbNote = el(doc, "span", "cnnviz-meta cnnviz-rgb-note", t("kernels.rgb_note"));
  rgbNote.hidden = true;
  const png = button(doc, t("common.png"), t("kernels.png_title"), () => download());
  controls.append(filterWrap, allWrap, cmap.wrap, rgbNote, png);
  const message = new MessageLine(doc);
  panel.append(bar.el, controls, message.el);
  const section = new GridSection(ctx, panel, { label: t("kernels.grid"), noun: t("kernels.grid"), onPage: () => refresh() });
  let caption = "";

  function download(): void {
    const layer = state.layer;
    const which = showsAll() ? "all" : `filter${state.filter}`;
    downloadCanvas(section.grid.canvas, exportName(["kernels", layer, which]), caption);
  }

  function refresh(): void {
    syncSelect(cmap, ctx.colormapOptions(), ctx.get("kernel_cmap"));
    const info = bar.update();
    if (!info) return;
    if (info.name !== state.layer) section.page = 0;
    state.layer = info.name;
    state.filters = info.kernel_shape?.[0] ?? 0;
    filter.max = String(Math.max(0, state.filters - 1));
    filterCount.textContent = state.filters ? t("kernels.filter_count", { count: state.filters, last: state.filters - 1 }) : "";
    setFilter(state.filter); // a new layer may have fewer filters
    if (!info.kernel_shape) {
      message.show(t("kernels.no_kernels", { name: info.name, type: info.type }));
      section.clear();
      return;
    }
    const params = { layer: info.name };
    const entry = ctx.session.request("kernels", params);
    if (entry) draw(entry);
    else {
      section.setStale(true);
      showPending(ctx, message, "kernels", requestKey("kernels", params), t("kernels.loading", { name: info.name }), refresh);
    }
  }

  function draw(entry: Entry<"kernels">): void {
    const t0 = performance.now();
    const stack = stackOf(entry);
    const [o = 1, i = 1] = entry.content.kernel_shape;
    message.show(entry.partial ? partialNote(entry.partial, t) : "");
    state.filters = o;
    state.inputs = i;
    setFilter(state.filter);
    const rgb = rgbOf(entry);
    const showRgb = rgb !== null && !state.all;
    const every = showsAll();
    filterWrap.hidden = showRgb || every;
    allWrap.hidden = i === 1; // every filter is drawn anyway
    // RGB filters are drawn in their own colours: the colormap menu would do nothing.
    cmap.wrap.hidden = showRgb;
    rgbNote.hidden = !showRgb;
    const shape = formatShape(entry.content.kernel_shape);
    if (rgb && showRgb) {
      caption = t("kernels.caption_rgb", { layer: state.layer, shape });
      section.show(rgbSource(rgb, (n) => t("kernels.rgb_tile", { index: n })), range(rgb.count), { key: entry.key });
      ctx.markPaint("kernels", t0);
      return;
    }
    // All kernels (a page of whole filters), or the input kernels of one filter (as many as a
    // partial snapshot holds).
    const f = state.filter;
    const start = Math.min(f * i, stack.channels);
    const sub = every ? stack : subStack(stack, start, Math.min(start + i, stack.channels));
    const absmax = entry.content.absmax || 1;
    const colorizer = new Colorizer(sub, ctx.colorTable(ctx.get("kernel_cmap")), {
      scale: "global",
      symmetric: true,
      range: [-absmax, absmax],
    });
    const label = every
      ? (n: number) => t("kernels.tile", { filter: Math.floor(n / i), channel: n % i })
      : (n: number) => t("kernels.tile", { filter: f, channel: n });
    const source: TileSource = { ...mapSource(sub, colorizer), label };
    caption = t("kernels.caption", {
      layer: state.layer,
      shape,
      which: every ? t("kernels.all") : t("kernels.filter_n", { index: f }),
      cmap: ctx.get("kernel_cmap"),
    });
    if (every) {
      section.show(source, range(sub.channels), {
        key: entry.key,
        pageSize: filtersPerPage(i, PAGE_SIZE) * i,
        ...(i > 1 ? { rowLength: i } : {}), // one tile a filter: they flow like maps
        pageText: (page) => filterPageText(page, i, o, t),
      });
    } else section.show(source, range(sub.channels), { key: entry.key, rowLength: i });
    ctx.markPaint("kernels", t0);
  }

  return sectionTab({ el: panel, kinds: ["kernels"], traits: ["layers", "layer_name", "kernel_cmap", "colormaps"], refresh, section, message });
}
