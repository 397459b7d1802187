/**
 * The layer slider of the kernels and feature-map tabs, with a list of the
 * layer names beside it; the name, type and shapes of the layer.
 */

import { el, slider, syncSelect } from "../dom";
import { formatShape } from "../format";
import { layerSliderWidth } from "../tiling";
import type { LayerInfo } from "../traits";
import type { TabContext } from "./tab";

/** The layer named by the `layer_name` trait, else the first. */
export function currentLayer(ctx: TabContext): LayerInfo | null {
  const all = ctx.get("layers");
  const name = ctx.get("layer_name");
  return all.find((l) => l.name === name) ?? all[0] ?? null;
}

export class LayerBar {
  readonly el: HTMLDivElement;
  private readonly slider: HTMLInputElement;
  private readonly list: { input: HTMLSelectElement; setOptions: (o: readonly (readonly [string, string])[], v: string) => void };
  private readonly name: HTMLSpanElement;
  private readonly shape: HTMLSpanElement;

  constructor(private readonly ctx: TabContext) {
    const doc = ctx.doc;
    this.el = el(doc, "div", "cnnviz-controls cnnviz-layer-bar");
    const pick = (info: LayerInfo | undefined): void => {
      if (!info) return;
      ctx.scrubbed();
      ctx.save("layer_name", info.name);
    };
    const t = ctx.t;
    const s = slider(doc, t("common.layer"), 0, 0, 1, 0, (i) => pick(ctx.get("layers")[i]));
    this.slider = s.input;
    const input = el(doc, "select", "cnnviz-select cnnviz-layer-list");
    input.setAttribute("aria-label", t("layer_bar.by_name"));
    input.title = t("layer_bar.pick_title");
    input.addEventListener("change", () => pick(ctx.get("layers").find((l) => l.name === input.value)));
    const setOptions = (opts: readonly (readonly [string, string])[], v: string): void => {
      input.replaceChildren(
        ...opts.map(([value, text]) => {
          const o = el(doc, "option", "", text);
          o.value = value;
          return o;
        }),
      );
      input.value = v;
    };
    this.list = { input, setOptions };
    this.name = el(doc, "span", "cnnviz-layer-name");
    this.shape = el(doc, "span", "cnnviz-meta cnnviz-layer-shape");
    this.el.append(s.wrap, input, this.name, this.shape);
  }

  /** Sync with the traits; returns the current layer. */
  update(): LayerInfo | null {
    const all = this.ctx.get("layers");
    const info = currentLayer(this.ctx);
    const idx = info ? all.indexOf(info) : 0;
    this.slider.max = String(Math.max(0, all.length - 1));
    this.slider.value = String(idx);
    this.slider.style.width = `${layerSliderWidth(all.length)}px`;
    this.slider.setAttribute("aria-valuetext", info ? info.name : "");
    syncSelect(this.list, all.map((l) => [l.name, `${l.name} (${l.type})`] as const), info?.name ?? "");
    const t = this.ctx.t;
    this.name.textContent = info ? `${info.name} (${info.type})` : t("layer_bar.none");
    const parts: string[] = [];
    if (info?.shape) parts.push(t("layer_bar.output", { shape: formatShape(info.shape) }));
    if (info?.kernel_shape) parts.push(t("layer_bar.kernels", { shape: formatShape(info.kernel_shape) }));
    this.shape.textContent = `${idx + 1} / ${all.length}${parts.length ? " · " + parts.join(" · ") : ""}`;
    return info;
  }
}
