/** Convolution kernels of the current layer: one filter's input kernels, all of them, or RGB filters. */

import { Colorizer } from "../colormap";
import { button, downloadCanvas, el, MessageLine, select, syncSelect } from "../dom";
import { type Entry, partialNote, rgbOf, stackOf } from "../entry";
import { type TileSource, mapSource, rgbSource, subStack } from "../tiles";
import { GridSection } from "./grid_section";
import { LayerBar } from "./layer_bar";
import { type Tab, type TabContext, sectionTab } from "./tab";

/** Item indices 0 .. n-1. */
export const range = (n: number): number[] => Array.from({ length: Math.max(0, n) }, (_, i) => i);

export function createKernelsTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const panel = ctx.panel("kernels");
  const bar = new LayerBar(ctx);
  const state = { filter: 0, all: false, layer: "" };
  const controls = el(doc, "div", "cnnviz-controls");
  const filterWrap = el(doc, "label", "cnnviz-control");
  const filter = el(doc, "input", "cnnviz-number");
  filter.type = "number";
  filter.min = "0";
  filter.value = "0";
  filter.setAttribute("aria-label", "Output filter");
  filter.addEventListener("input", () => {
    state.filter = Math.max(0, Math.floor(Number(filter.value) || 0));
    section.page = 0;
    refresh();
  });
  filterWrap.append(el(doc, "span", "cnnviz-control-label", "Output filter"), filter);
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
  const png = button(doc, "PNG", "Save the kernel grid as PNG", () =>
    downloadCanvas(section.grid.canvas, `kernels_${ctx.get("layer_name")}.png`),
  );
  controls.append(filterWrap, allWrap, cmap.wrap, png);
  const message = new MessageLine(doc);
  panel.append(bar.el, controls, message.el);
  const section = new GridSection(ctx, panel, { label: "kernels", onPage: () => refresh() });

  function refresh(): void {
    syncSelect(cmap, ctx.colormapOptions(), ctx.get("kernel_cmap"));
    const info = bar.update();
    if (!info) return;
    if (info.name !== state.layer) section.page = 0;
    state.layer = info.name;
    if (!info.kernel_shape) {
      message.show(`${info.name} is a ${info.type}: it has no convolution kernels. Pick a Conv2d layer.`);
      section.clear();
      return;
    }
    const entry = ctx.session.request("kernels", { layer: info.name });
    if (entry) draw(entry);
    else message.show(`loading the kernels of ${info.name}…`);
  }

  function draw(entry: Entry<"kernels">): void {
    const t0 = performance.now();
    const stack = stackOf(entry);
    const [o = 1, i = 1] = entry.content.kernel_shape;
    message.show(entry.partial ? partialNote(entry.partial) : "");
    filter.max = String(o - 1);
    const rgb = rgbOf(entry);
    filterWrap.hidden = rgb !== null || state.all;
    let source: TileSource;
    let order: number[];
    if (rgb && !state.all) {
      source = rgbSource(rgb, (n) => `filter ${n} (RGB)`);
      order = range(rgb.count);
    } else {
      // All kernels, or the input kernels of one filter (as many as a partial snapshot holds).
      const f = state.all ? 0 : Math.min(state.filter, o - 1);
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
      source = { ...mapSource(sub, colorizer), label };
      order = range(sub.channels);
    }
    section.show(source, order, { key: entry.key });
    ctx.markPaint("kernels", t0);
  }

  return sectionTab({ el: panel, kinds: ["kernels"], traits: ["layers", "layer_name", "kernel_cmap", "colormaps"], refresh, section, message });
}
