/**
 * What the CAM and saliency tabs share: the class buttons, a message line, a
 * caption saying what the map explains, a colour bar and a 2-tile grid (the
 * map blended on the input image, and the map alone), plus their opacity
 * slider. While a new map computes, the previous one stays dimmed under a
 * "computing …" caption, so that it is not taken for the new one.
 */

import { ColorBar } from "../colorbar";
import { Colorizer, isDiverging } from "../colormap";
import { valueAt } from "../decode";
import { type MessageAction, MessageLine, downloadCanvas, el, select, slider, syncSelect } from "../dom";
import { type Entry, partialNote, stackOf } from "../entry";
import { camLayerText, exportName } from "../explain";
import { keyVersion } from "../keys";
import { blendOverlay } from "../overlay";
import type { TileSource } from "../tiles";
import { GridSection } from "./grid_section";
import { ClassButtons } from "./predictions";
import type { TabContext } from "./tab";

/** Largest tile of the overlay grid, CSS pixels. */
const OVERLAY_TILE = 320;

/** [value, text] pairs of a list of method names. */
export function methodOptions(methods: readonly string[]): [string, string][] {
  return methods.map((m) => [m, m]);
}

/** The opacity slider (a display-only trait) with its value; `sync` sets it from the trait. */
export function opacitySlider(ctx: TabContext): { wrap: HTMLElement; sync: () => void } {
  const value = el(ctx.doc, "span", "cnnviz-meta cnnviz-opacity-value");
  const show = (v: number): void => {
    value.textContent = `${Math.round(v * 100)}%`;
  };
  const s = slider(ctx.doc, ctx.t("overlay.opacity"), 0, 1, 0.05, ctx.get("opacity"), (v) => {
    show(v);
    ctx.local("opacity", v);
  });
  s.wrap.append(value);
  const sync = (): void => {
    s.input.value = String(ctx.get("opacity"));
    show(ctx.get("opacity"));
  };
  sync();
  return { wrap: s.wrap, sync };
}

/** The controls of a CAM that the CAM and objects tabs share (see {@link camControls}). */
export interface CamControls {
  method: HTMLElement;
  depth: HTMLElement;
  depthName: HTMLElement;
  cmap: HTMLElement;
  /** The CAM layer asked for: the trait, else the last of the CAM layers. */
  layer: () => string;
  /** Set the controls from the traits. */
  sync: () => void;
}

/** The CAM method, the CAM layer slider with the layer's name, and the colormap. */
export function camControls(ctx: TabContext): CamControls {
  const { doc, t } = ctx;
  const method = select(doc, t("common.method"), methodOptions(ctx.get("cam_methods")), ctx.get("cam_method"), (v) => ctx.save("cam_method", v));
  const depth = slider(doc, t("cam.layer"), 0, 0, 1, 0, (i) => {
    const names = ctx.get("cam_layers");
    if (names[i]) ctx.save("cam_layer", names[i]);
  });
  const depthName = el(doc, "span", "cnnviz-layer-name");
  const cmap = select(doc, t("common.colormap"), ctx.colormapOptions(), ctx.get("cam_cmap"), (v) => ctx.local("cam_cmap", v));
  const layer = (): string => {
    const names = ctx.get("cam_layers");
    return ctx.get("cam_layer") || (names[names.length - 1] ?? "");
  };
  const sync = (): void => {
    const names = ctx.get("cam_layers");
    syncSelect(method, methodOptions(ctx.get("cam_methods")), ctx.get("cam_method"));
    syncSelect(cmap, ctx.colormapOptions(), ctx.get("cam_cmap"));
    depth.input.max = String(Math.max(0, names.length - 1));
    depth.input.value = String(Math.max(0, names.indexOf(layer())));
    depth.input.setAttribute("aria-valuetext", camLayerText(layer(), names, t));
    depthName.textContent = camLayerText(layer(), names, t);
  };
  return { method: method.wrap, depth: depth.wrap, depthName, cmap: cmap.wrap, layer, sync };
}

/** What a drawn map is: its caption, and the parts of its PNG file name. */
export interface MapLabel {
  caption: string;
  file: readonly string[];
}

export class OverlayView {
  readonly classes: ClassButtons;
  readonly message: MessageLine;
  readonly section: GridSection;
  private readonly caption: HTMLDivElement;
  private readonly colorBar: ColorBar;
  /** The map on the canvas, or null when nothing is drawn. */
  private drawn: { key: string; label: MapLabel } | null = null;

  /** Appends to `panel`: the class buttons, the message line, `extras`, the caption, then the grid. */
  constructor(
    private readonly ctx: TabContext,
    panel: HTMLElement,
    label: string,
    onPage: () => void,
    extras: readonly HTMLElement[] = [],
  ) {
    this.classes = new ClassButtons(ctx);
    this.message = new MessageLine(ctx.doc);
    this.caption = el(ctx.doc, "div", "cnnviz-explained");
    this.caption.hidden = true;
    this.colorBar = new ColorBar(ctx.doc, ctx.t("overlay.colorbar", { label }));
    panel.append(this.classes.el, this.message.el, ...extras, this.caption);
    this.section = new GridSection(ctx, panel, { label, maxTile: OVERLAY_TILE, onPage });
    this.section.box.append(this.colorBar.el);
  }

  /** Draw map 0 of `entry` over the input image, labelled `label`. */
  draw(entry: Entry<"cam" | "saliency">, label: MapLabel): void {
    const t0 = performance.now();
    this.ctx.classes.learnExplained(keyVersion(entry.key), entry.content);
    this.classes.redraw(); // a chosen class outside the top 5 is named by the map's reply
    const stack = stackOf(entry);
    const image = this.ctx.image();
    if (!image || image.height !== stack.height || image.width !== stack.width) {
      this.message.show(this.ctx.t("overlay.mismatch"));
      return;
    }
    const cmap = this.ctx.get("cam_cmap");
    const table = this.ctx.colorTable(cmap);
    const colorizer = new Colorizer(stack, table, { scale: "map", symmetric: isDiverging(cmap, this.ctx.get("diverging_colormaps")) });
    const opacity = this.ctx.get("opacity");
    const rgb = image.data.subarray(0, image.height * image.width * 3);
    const t = this.ctx.t;
    const names = [t("overlay.overlay_tile", { caption: label.caption }), t("overlay.map_tile", { caption: label.caption })];
    const source: TileSource = {
      count: 2,
      height: stack.height,
      width: stack.width,
      paint: (i, out) => {
        const colored = colorizer.colorize(0);
        if (i === 1) out.set(colored);
        else blendOverlay(rgb, colored, opacity, out);
      },
      value: (_i, row, col) => valueAt(stack, 0, row, col),
      label: (i) => names[i] ?? "",
    };
    this.message.show(entry.partial ? partialNote(entry.partial, t) : "");
    this.drawn = { key: entry.key, label };
    this.setCaption(label.caption, false);
    this.colorBar.update(table, colorizer.rangeOf(0), t("overlay.values"));
    this.section.show(source, [0, 1], { key: entry.key });
    this.ctx.markPaint(entry.kind, t0);
  }

  /**
   * The map asked for is not here: say what is computing (or `note`, e.g.
   * cancelled, with its action), and dim the previous map under it.
   */
  pending(text: string, note?: { text: string; action?: MessageAction }): void {
    if (note) this.message.show(note.text, note.action);
    else this.message.hide();
    if (!this.drawn) {
      this.caption.hidden = true;
      if (!note) this.message.show(text);
      return;
    }
    this.setCaption(this.ctx.t("overlay.dimmed", { text, caption: this.drawn.label.caption }), true);
  }

  /** Save the map on screen as PNG, named and captioned with what it explains. */
  download(kind: string): void {
    if (!this.drawn) return;
    const { label } = this.drawn;
    downloadCanvas(this.section.grid.canvas, exportName([kind, ...label.file]), label.caption);
  }

  private setCaption(text: string, stale: boolean): void {
    this.caption.textContent = text;
    this.caption.hidden = false;
    this.caption.classList.toggle("cnnviz-explained-stale", stale);
    this.section.box.classList.toggle("cnnviz-stale", stale);
    this.section.box.dataset.stale = String(stale);
  }
}
