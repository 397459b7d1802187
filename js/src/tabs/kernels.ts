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
  const panel = ctx.panel("kernels");
  const bar = new LayerBar(ctx);
  const state = { filter: 0, all: false, layer: "", filters: 0 };
  const controls = el(doc, "div", "cnnviz-controls");
  const filterWrap = el(doc, "label", "cnnviz-control");
  const filter = el(doc, "input", "cnnviz-number");
  filter.type = "number";
  filter.min = "0";
  filter.value = "0";
  filter.setAttribute("aria-label", "Output filter");
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
  filterWrap.append(el(doc, "span", "cnnviz-control-label", "Output filter"), filter, filterCount);
  const allWrap = el(doc, "label", "cnnviz-control");
  const all = el(doc, "input");
  all.type = "checkbox";
  all.setAttribute("aria-label", "Show the kernels of all filters");
  all.addEventListener("change", () => {
    state.all = all.checked;
    section.page = 0;
    refresh();
  });
  allWrap.append(all, el(doc, "span", "cnnviz-control-label", "all filters"));
  const cmap = select(doc, "Colormap", ctx.colormapOptions(), ctx.get("kernel_cmap"), (v) => ctx.local("kernel_cmap", v));
  const rgbNote = el(doc, "span", "cnnviz-meta cnnviz-rgb-note", "RGB: each filter drawn in colour (its 3 input channels as red, green, blue)");
  rgbNote.hidden = true;
  const png = button(doc, "PNG", "Save the kernel grid as PNG", () => download());
  controls.append(filterWrap, allWrap, cmap.wrap, rgbNote, png);
  const message = new MessageLine(doc);
  panel.append(bar.el, controls, message.el);
  const section = new GridSection(ctx, panel, { label: "kernels", noun: "kernels", onPage: () => refresh() });
  let caption = "";

  function download(): void {
    const layer = state.layer;
    const which = state.all ? "all" : `filter${state.filter}`;
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
    filterCount.textContent = state.filters ? `of ${state.filters} (0–${state.filters - 1})` : "";
    setFilter(state.filter); // a new layer may have fewer filters
    if (!info.kernel_shape) {
      message.show(`${info.name} is a ${info.type}: it has no convolution kernels. Pick a Conv2d layer.`);
      section.clear();
      return;
    }
    const params = { layer: info.name };
    const entry = ctx.session.request("kernels", params);
    if (entry) draw(entry);
    else showPending(ctx, message, "kernels", requestKey("kernels", params), `loading the kernels of ${info.name}…`, refresh);
  }

  function draw(entry: Entry<"kernels">): void {
    const t0 = performance.now();
    const stack = stackOf(entry);
    const [o = 1, i = 1] = entry.content.kernel_shape;
    message.show(entry.partial ? partialNote(entry.partial) : "");
    state.filters = o;
    setFilter(state.filter);
    const rgb = rgbOf(entry);
    const showRgb = rgb !== null && !state.all;
    filterWrap.hidden = showRgb || state.all;
    // RGB filters are drawn in their own colours: the colormap menu would do nothing.
    cmap.wrap.hidden = showRgb;
    rgbNote.hidden = !showRgb;
    const shape = formatShape(entry.content.kernel_shape);
    if (rgb && showRgb) {
      caption = `kernels of ${state.layer} (${shape}) · RGB filters`;
      section.show(rgbSource(rgb, (n) => `filter ${n} (RGB)`), range(rgb.count), { key: entry.key });
      ctx.markPaint("kernels", t0);
      return;
    }
    // All kernels (a page of whole filters), or the input kernels of one filter (as many as a
    // partial snapshot holds).
    const f = state.filter;
    const start = Math.min(f * i, stack.channels);
    const sub = state.all ? stack : subStack(stack, start, Math.min(start + i, stack.channels));
    const absmax = entry.content.absmax || 1;
    const colorizer = new Colorizer(sub, ctx.colorTable(ctx.get("kernel_cmap")), {
      scale: "global",
      symmetric: true,
      range: [-absmax, absmax],
    });
    const label = state.all
      ? (n: number) => `filter ${Math.floor(n / i)} · input channel ${n % i}`
      : (n: number) => `filter ${f} · input channel ${n}`;
    const source: TileSource = { ...mapSource(sub, colorizer), label };
    caption = `kernels of ${state.layer} (${shape}) · ${state.all ? "all filters" : `filter ${f}`} · ${ctx.get("kernel_cmap")}, 0 = centre`;
    if (state.all) {
      section.show(source, range(sub.channels), {
        key: entry.key,
        pageSize: filtersPerPage(i, PAGE_SIZE) * i,
        rowLength: i,
        pageText: (page) => filterPageText(page, i, o),
      });
    } else section.show(source, range(sub.channels), { key: entry.key, rowLength: i });
    ctx.markPaint("kernels", t0);
  }

  return sectionTab({ el: panel, kinds: ["kernels"], traits: ["layers", "layer_name", "kernel_cmap", "colormaps"], refresh, section, message });
}
