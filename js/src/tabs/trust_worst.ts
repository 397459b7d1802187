/**
 * The Trust view's drill-down: the images where a method does worst on a
 * metric, worst first. With the evaluation's data (`LayerExplorer(...,
 * evaluation_data=data)`) a row of thumbnails, each with the method's map
 * over it, its dataset index, value and class; a click on one makes it the
 * explorer's input image (the other tabs then show it). Without the data, a
 * list of indices and values and a line saying how to get the pictures.
 */

import { paintScaled } from "../canvas_util";
import { Colorizer, isDiverging } from "../colormap";
import { type MapStack, type RgbStack, decodeMapStack, decodeRgbStack } from "../decode";
import { el } from "../dom";
import type { Entry } from "../entry";
import { rgbPayload, stackPayload } from "../messages";
import { blendOverlay } from "../overlay";
import type { TileSource } from "../tiles";
import { LoadedImage, fitSize, worstItemText } from "../trust_text";
import type { TabContext } from "./tab";

/** Longer side of each drawn thumbnail, CSS pixels. */
const THUMB_SIZE = 96;

export class WorstImages {
  readonly el: HTMLElement;
  private readonly loaded = new LoadedImage();
  /** What is drawn (redrawn only when it changes, so a focused thumbnail keeps its focus). */
  private drawn = "";
  private drawnEntry: Entry<"evaluation_worst"> | null = null;

  constructor(private readonly ctx: TabContext) {
    this.el = el(ctx.doc, "div", "cnnviz-trust-worst");
  }

  clear(): void {
    this.el.replaceChildren();
    this.drawn = "";
  }

  draw(entry: Entry<"evaluation_worst">): void {
    const { ctx } = this;
    const t = ctx.t;
    const c = entry.content;
    const better = t(c.better === "higher" ? "trust.higher" : "trust.lower");
    const head = el(ctx.doc, "div", "cnnviz-meta cnnviz-trust-worst-caption", t("trust.worst_caption", { count: c.indices.length, n: c.n, method: c.method, metric: c.metric, better }));
    const name = (i: number): string => ctx.classes.name(i);
    if (!c.images || !c.rgb || !c.maps) {
      const list = el(ctx.doc, "ol", "cnnviz-trust-worst-list");
      c.indices.forEach((index, i) => {
        const item = el(ctx.doc, "li", "cnnviz-trust-worst-item", worstItemText(c, i, name, t));
        item.dataset.index = String(index);
        list.append(item);
      });
      this.el.replaceChildren(head, list, el(ctx.doc, "div", "cnnviz-meta cnnviz-trust-worst-note", t("trust.worst_no_images")));
      this.drawn = "";
      return;
    }
    const { index: current, waiting } = this.loaded.at(ctx.get("image_version"));
    const identity = JSON.stringify([entry.key, ctx.get("cam_cmap"), ctx.get("opacity"), ctx.get("lang"), current, waiting]);
    if (identity === this.drawn && entry === this.drawnEntry) return;
    const focused = (this.el.querySelector(".cnnviz-trust-thumb-button:focus")?.closest(".cnnviz-trust-thumb") as HTMLElement | null)?.dataset.index;
    const t0 = performance.now();
    const rgb = (entry.decoded.rgb ??= decodeRgbStack(rgbPayload(c.rgb, entry.buffers, 0)));
    const maps = (entry.decoded.stack ??= decodeMapStack(stackPayload(c.maps, entry.buffers, 1)));
    const source = this.overlay(rgb, maps);
    const [w, h] = fitSize(rgb.width, rgb.height, THUMB_SIZE);
    const row = el(ctx.doc, "div", "cnnviz-trust-thumbs");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", t("trust.worst_caption", { count: c.indices.length, n: c.n, method: c.method, metric: c.metric, better }));
    c.indices.forEach((index, i) => {
      const text = worstItemText(c, i, name, t);
      const fig = el(ctx.doc, "figure", "cnnviz-trust-thumb");
      fig.dataset.index = String(index);
      const pick = el(ctx.doc, "button", "cnnviz-trust-thumb-button");
      pick.type = "button";
      pick.title = t("trust.worst_open", { index });
      pick.setAttribute("aria-label", `${text}. ${t("trust.worst_open", { index })}`);
      const canvas = el(ctx.doc, "canvas", "cnnviz-trust-canvas");
      paintScaled(canvas, source, i, w, h);
      pick.append(canvas);
      pick.addEventListener("click", () => {
        this.loaded.clicked(index, ctx.get("image_version"));
        ctx.session.setEvaluationImage(index);
        this.draw(entry);
      });
      if (index === current) {
        fig.classList.add("cnnviz-trust-thumb-current");
        pick.setAttribute("aria-current", "true");
      }
      fig.append(pick, el(ctx.doc, "figcaption", "cnnviz-meta cnnviz-trust-caption-text", text));
      row.append(fig);
    });
    row.dataset.thumbs = String(c.indices.length);
    const overlay = t("trust.worst_overlay", { method: c.method, layer: c.layer ?? "" });
    const note = waiting !== null ? t("trust.worst_loading_image", { index: waiting }) : current !== null ? t("trust.worst_loaded", { index: current }) : t("trust.worst_click");
    const noteLine = el(ctx.doc, "div", "cnnviz-meta cnnviz-trust-worst-note", note);
    this.el.replaceChildren(head, el(ctx.doc, "div", "cnnviz-meta", c.layer ? overlay : t("trust.worst_overlay_plain", { method: c.method })), row, noteLine);
    this.drawn = identity;
    this.drawnEntry = entry;
    if (focused !== undefined) row.querySelector<HTMLElement>(`.cnnviz-trust-thumb[data-index="${focused}"] button`)?.focus();
    ctx.markPaint("evaluation_worst", t0);
  }

  /** Each thumbnail with the method's map blended over it (the CAM colormap and opacity of the explorer). */
  private overlay(rgb: RgbStack, maps: MapStack): TileSource {
    const cmap = this.ctx.get("cam_cmap");
    const colorizer = new Colorizer(maps, this.ctx.colorTable(cmap), { scale: "map", symmetric: isDiverging(cmap, this.ctx.get("diverging_colormaps")) });
    const opacity = this.ctx.get("opacity");
    const n = rgb.height * rgb.width;
    return {
      count: rgb.count,
      height: rgb.height,
      width: rgb.width,
      paint: (i, out) => blendOverlay(rgb.data.subarray(i * n * 3, (i + 1) * n * 3), colorizer.colorize(i), opacity, out),
      value: () => null,
      label: () => "",
    };
  }
}
