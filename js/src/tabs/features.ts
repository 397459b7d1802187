/**
 * Feature maps of the current layer beside the input image: order, colour
 * scale and colormap change in the front end only; hovering a map outlines
 * the unit's receptive field (or position) in the input. A diverging
 * colormap is centred on zero (white = 0) in every colour scale; a colour
 * bar beside the grid names the range (per map: the hovered map's).
 */

import { paintScaled } from "../canvas_util";
import { ColorBar } from "../colorbar";
import { COLOR_SCALES, type ColorScale, Colorizer, isDiverging } from "../colormap";
import { button, downloadCanvas, el, MessageLine, select, syncSelect } from "../dom";
import { exportName } from "../explain";
import { formatShape } from "../format";
import { requestKey } from "../keys";
import { type Entry, partialNote, stackOf } from "../entry";
import type { GridHover } from "../grid_view";
import { type ChannelOrder, channelOrder } from "../order";
import { mapSource, rgbSource } from "../tiles";
import { inputOutline } from "../zoom";
import { ArithmeticPanel } from "./arithmetic_panel";
import { GridSection } from "./grid_section";
import { LayerBar, currentLayer } from "./layer_bar";
import { type Tab, type TabContext, sectionTab, showPending } from "./tab";

/** Longest side of the input image beside the grid, CSS pixels. */
const INPUT_SIZE = 128;

export function createFeaturesTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("features");
  const bar = new LayerBar(ctx);
  const controls = el(doc, "div", "cnnviz-controls");
  const orderSel = select(doc, t("features.order"), [["index", t("features.order_index")], ["mean", t("features.order_mean")]], ctx.get("order"), (v) =>
    ctx.local("order", v),
  );
  const scaleText = { map: t("scale.map"), layer: t("scale.layer"), global: t("scale.global") };
  const scaleSel = select(doc, t("features.color_scale"), COLOR_SCALES.map((s) => [s, scaleText[s]] as const), ctx.get("color_scale"), (v) =>
    ctx.local("color_scale", v),
  );
  const cmap = select(doc, t("common.colormap"), ctx.colormapOptions(), ctx.get("cmap"), (v) => ctx.local("cmap", v));
  const png = button(doc, t("common.png"), t("features.png_title"), () =>
    downloadCanvas(section.grid.canvas, exportName(["features", currentLayer(ctx)?.name]), caption),
  );
  controls.append(orderSel.wrap, scaleSel.wrap, cmap.wrap, png);
  const message = new MessageLine(doc);
  const body = el(doc, "div", "cnnviz-body");
  const inputBox = el(doc, "div", "cnnviz-input");
  const input = el(doc, "canvas", "cnnviz-input-canvas");
  input.setAttribute("role", "img");
  input.setAttribute("aria-label", t("features.input_label"));
  const outline = el(doc, "div", "cnnviz-outline");
  outline.hidden = true;
  const colorBar = new ColorBar(doc, t("features.colorbar"));
  inputBox.append(el(doc, "div", "cnnviz-meta", t("features.input")), input, outline, colorBar.el);
  body.append(inputBox);
  // A click on a map pins it and, on a conv layer, shows how the clicked value is made.
  const arithmetic = new ArithmeticPanel(doc, t, () => ctx.colorTable(ctx.get("kernel_cmap")), () => ctx.colorTable("gray"));
  panel.append(bar.el, controls, message.el, body, arithmetic.el);
  const section = new GridSection(ctx, body, { label: t("features.grid"), onHover: hovered, onPage: () => refresh(), onClick: clicked });
  /** The arithmetic asked for last: its key, layer and image version. */
  let asked: { key: string; layer: string; version: number } | null = null;
  /** What the page index belongs to: a new layer or order starts at page 1. */
  let paged = "";
  /** The colouring drawn, for the colour bar of a hovered map. */
  let colors: Colorizer | null = null;
  let caption = "";

  function clicked(h: GridHover): void {
    ctx.pin(h);
    const info = currentLayer(ctx);
    if (!info?.kernel_shape || h.value === null) return; // only a convolution's units are kernel sums
    const params = { version: ctx.get("image_version"), layer: info.name, channel: h.channel, row: h.row, col: h.col };
    asked = { key: requestKey("arithmetic", params), layer: info.name, version: params.version };
    const entry = ctx.session.request("arithmetic", params);
    if (entry) arithmetic.show(entry);
    else arithmetic.pending(t("arithmetic.ask", { layer: info.name, channel: h.channel, row: h.row, col: h.col }));
  }

  function hovered(h: GridHover | null): void {
    outlineInput(h);
    showColorBar(h ? h.channel : null);
  }

  /** The colour bar of the colouring drawn: per map, the range of map `channel` (when hovered). */
  function showColorBar(channel: number | null): void {
    if (!colors) {
      colorBar.hide();
      return;
    }
    const centred = (scale: string): string => (colors?.symmetric ? t("features.centred", { scale }) : scale);
    if (colors.sharedRange) {
      colorBar.update(colors.colorTable, colors.sharedRange, centred(scaleText[colors.scale === "layer" ? "layer" : "global"]));
    } else if (channel === null) {
      colorBar.update(colors.colorTable, null, t("features.hover_for_range", { scale: centred(scaleText.map) }));
    } else colorBar.update(colors.colorTable, colors.rangeOf(channel), centred(t("features.map_n", { index: channel })));
  }

  function outlineInput(h: GridHover | null): void {
    const image = ctx.image();
    if (!h || !image) {
      outline.hidden = true;
      return;
    }
    const info = currentLayer(ctx);
    const shape = info?.shape;
    // The field belongs to the layer's own maps (not to a grid of something else).
    const field = shape && shape[1] === h.source.height && shape[2] === h.source.width ? info?.rf : null;
    const o = inputOutline(h.row, h.col, h.source.height, h.source.width, image.height, image.width, field);
    const [x0, y0, x1, y1] = o.box;
    const s = input.clientWidth / image.width;
    outline.dataset.kind = o.kind;
    outline.dataset.box = JSON.stringify(o.box);
    outline.setAttribute(
      "aria-label",
      o.kind === "receptive-field"
        ? t("features.receptive_field", { row: h.row, col: h.col, width: Math.round(x1 - x0), height: Math.round(y1 - y0) })
        : t("features.position", { row: h.row, col: h.col }),
    );
    outline.hidden = false;
    outline.style.left = `${input.offsetLeft + x0 * s}px`;
    outline.style.top = `${input.offsetTop + y0 * s}px`;
    outline.style.width = `${Math.max(2, (x1 - x0) * s)}px`;
    outline.style.height = `${Math.max(2, (y1 - y0) * s)}px`;
  }

  function drawInput(): void {
    const image = ctx.image();
    input.hidden = !image;
    if (!image) return;
    const scale = INPUT_SIZE / Math.max(image.height, image.width);
    paintScaled(input, rgbSource(image), 0, Math.round(image.width * scale), Math.round(image.height * scale));
  }

  function refresh(): void {
    orderSel.input.value = ctx.get("order");
    scaleSel.input.value = ctx.get("color_scale");
    syncSelect(cmap, ctx.colormapOptions(), ctx.get("cmap"));
    const info = bar.update();
    drawInput();
    if (!info) return;
    const pagedNow = `${info.name}|${ctx.get("order")}`;
    if (pagedNow !== paged) section.page = 0;
    paged = pagedNow;
    const params = { version: ctx.get("image_version"), layer: info.name };
    const entry = ctx.session.request("features", params);
    if (entry) draw(entry);
    else {
      section.setStale(true);
      showPending(ctx, message, "features", requestKey("features", params), t("features.loading", { name: info.name }), refresh);
    }
  }

  function draw(entry: Entry<"features">): void {
    const t0 = performance.now();
    const stack = stackOf(entry);
    const scaleName = ctx.get("color_scale");
    const scale: ColorScale = (COLOR_SCALES as readonly string[]).includes(scaleName) ? (scaleName as ColorScale) : "map";
    const g = ctx.get("global_range");
    const range = g && g.length === 2 ? g : null;
    const cmapName = ctx.get("cmap");
    const colorizer = new Colorizer(stack, ctx.colorTable(cmapName), {
      scale: scale === "global" && !range ? "layer" : scale,
      range,
      symmetric: isDiverging(cmapName, ctx.get("diverging_colormaps")), // white = 0 whatever the scale
    });
    colors = colorizer;
    showColorBar(null);
    const orderName: ChannelOrder = ctx.get("order") === "mean" ? "mean" : "index";
    const orders = (entry.decoded.orders ??= new Map());
    let order = orders.get(orderName);
    if (!order) {
      order = channelOrder(stack, orderName);
      orders.set(orderName, order);
    }
    message.show(entry.partial ? partialNote(entry.partial, t) : "");
    const content = entry.partial ? `partial ${entry.partial.channels}` : "complete";
    const identity = [entry.key, content, cmapName, colorizer.scale, JSON.stringify(range), orderName].join("|");
    const scaleWords = scaleText[colorizer.scale];
    caption = t("features.caption", {
      layer: currentLayer(ctx)?.name ?? "",
      shape: formatShape([stack.channels, stack.height, stack.width]),
      cmap: cmapName,
      scale: colorizer.symmetric ? t("features.zero_centre", { scale: scaleWords }) : scaleWords,
      order: orderName === "mean" ? t("features.by_mean") : t("features.by_channel"),
    });
    section.show(mapSource(stack, colorizer, t), order, { identity, key: entry.key });
    ctx.markPaint("features", t0);
  }

  const tab = sectionTab({
    el: panel,
    kinds: ["features", "arithmetic"],
    traits: ["layers", "layer_name", "order", "color_scale", "cmap", "colormaps", "global_range", "image_version"],
    refresh: () => {
      if (asked && (asked.layer !== currentLayer(ctx)?.name || asked.version !== ctx.get("image_version"))) {
        asked = null;
        arithmetic.hide(); // it explained a unit of another layer or image
      }
      refresh();
    },
    section,
    message,
  });
  return {
    ...tab,
    reply: (kind, key) => {
      if (kind !== "arithmetic") tab.reply(kind, key);
      else if (key === asked?.key) {
        const entry = ctx.session.entry("arithmetic", key);
        if (entry) arithmetic.show(entry);
      }
    },
    error: (kind, key, text) => {
      if (kind !== "arithmetic") tab.error(kind, key, text);
      else if (key === asked?.key) arithmetic.pending(text);
    },
  };
}
