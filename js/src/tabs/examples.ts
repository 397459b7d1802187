/**
 * Dataset examples: the images of a dataset that excite a channel most,
 * cropped to the unit's receptive field, with the channel's activation drawn
 * over each crop; beside them, the channel's map for the current image and
 * (on demand) its activation-maximisation image: the figure Distill's
 * "Feature Visualization" made standard. The overview shows every channel's
 * best example; click one to open that channel.
 */

import { paintScaled } from "../canvas_util";
import { Colorizer, isDiverging } from "../colormap";
import { type MapStack, type RgbStack, decodeMapStack, decodeRgbStack, valueAt } from "../decode";
import { button, downloadCanvas, el, MessageLine, select, syncSelect } from "../dom";
import type { Entry } from "../entry";
import { stackOf } from "../entry";
import { classPurity, exampleClass, exampleLabel } from "../examples_text";
import { exportName } from "../explain";
import { formatRange } from "../format";
import { requestKey } from "../keys";
import { type ActmaxItem, type RequestParams, rgbPayload, stackPayload } from "../messages";
import { blendOverlay } from "../overlay";
import { CANCELLED, type Progress } from "../status";
import type { TileSource } from "../tiles";
import { rgbSource } from "../tiles";
import { GridSection } from "./grid_section";
import { currentLayer } from "./layer_bar";
import { type Tab, type TabContext, showPending } from "./tab";

/** Side of the current-image map and the optimised image beside the grid, CSS pixels. */
const SIDE_SIZE = 112;
/** Opacity of the activation drawn over the crops. */
const OVERLAY_OPACITY = 0.45;
export const OVERVIEW = -1;

interface Decoded {
  rgb: RgbStack;
  maps: MapStack | null;
}

export function createExamplesTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("examples");
  const info = () => ctx.get("examples_info");
  const layerOptions = (): [string, string][] => (info()?.layers ?? []).map((l) => [l, l]);
  const startLayer = (): string => {
    const layers = info()?.layers ?? [];
    const here = currentLayer(ctx)?.name;
    return here && layers.includes(here) ? here : (layers[layers.length - 1] ?? "");
  };
  // A reopened notebook or saved page opens on what was on screen (the saved shown_examples).
  const saved = ctx.get("shown_examples")?.content;
  const savedLayer = typeof saved?.layer === "string" && (info()?.layers ?? []).includes(saved.layer) ? saved.layer : null;
  const savedChannel = savedLayer !== null && typeof saved?.channel === "number" ? saved.channel : 0;
  let layer = savedLayer ?? startLayer();
  let overview = savedChannel === OVERVIEW;
  let channel = overview ? 0 : savedChannel;

  const controls = el(doc, "div", "cnnviz-controls");
  const layerSel = select(doc, t("examples.layer"), layerOptions(), layer, (v) => {
    layer = v;
    channel = Math.min(channel, channelCount() - 1);
    refresh();
  });
  const chWrap = el(doc, "label", "cnnviz-control");
  const chField = el(doc, "input", "cnnviz-text cnnviz-examples-channel");
  chField.type = "number";
  chField.min = "0";
  chField.setAttribute("aria-label", t("examples.channel_field"));
  chField.addEventListener("change", () => goTo(Number(chField.value)));
  const prev = button(doc, "‹", t("examples.previous"), () => goTo(channel - 1));
  const next = button(doc, "›", t("examples.next"), () => goTo(channel + 1));
  const chCount = el(doc, "span", "cnnviz-meta");
  chWrap.append(el(doc, "span", "cnnviz-control-label", t("examples.channel_label")), prev, chField, next, chCount);
  const modeSel = select(
    doc,
    t("examples.show"),
    [
      ["channel", t("examples.mode_channel")],
      ["overview", t("examples.mode_overview")],
    ],
    overview ? "overview" : "channel",
    (v) => {
      overview = v === "overview";
      refresh();
    },
  );
  const overlayWrap = el(doc, "label", "cnnviz-control");
  const overlayBox = el(doc, "input");
  overlayBox.type = "checkbox";
  overlayBox.checked = true;
  overlayBox.setAttribute("aria-label", t("examples.overlay_label"));
  overlayBox.addEventListener("change", () => refresh());
  overlayWrap.append(overlayBox, el(doc, "span", "cnnviz-control-label", t("examples.overlay")));
  const png = button(doc, "PNG", t("examples.png"), () =>
    downloadCanvas(section.grid.canvas, exportName(["examples", layer, overview ? "overview" : `channel${channel}`]), caption.textContent ?? ""),
  );
  controls.append(layerSel.wrap, chWrap, modeSel.wrap, overlayWrap, png);
  const about = el(doc, "div", "cnnviz-meta cnnviz-examples-about");
  const message = new MessageLine(doc);
  const caption = el(doc, "div", "cnnviz-meta cnnviz-examples-caption");
  const body = el(doc, "div", "cnnviz-body");
  const side = el(doc, "div", "cnnviz-input cnnviz-examples-side");
  const here = el(doc, "canvas", "cnnviz-examples-here");
  here.setAttribute("role", "img");
  const hereText = el(doc, "div", "cnnviz-meta");
  const optimised = el(doc, "canvas", "cnnviz-examples-actmax");
  optimised.setAttribute("role", "img");
  const optimisedText = el(doc, "div", "cnnviz-meta");
  const optimise = button(doc, t("examples.optimise"), t("examples.optimise_label"), () => askActmax());
  side.append(el(doc, "div", "cnnviz-meta", t("examples.this_image")), here, hereText, el(doc, "div", "cnnviz-meta", t("examples.optimised")), optimised, optimisedText, optimise);
  body.append(side);
  panel.append(controls, about, message.el, caption, body);
  const section = new GridSection(ctx, body, {
    label: t("examples.grid"),
    noun: t("examples.noun"),
    onPage: () => refresh(),
    onClick: (h) => {
      if (!overview) ctx.pin(h);
      else openChannel(shownChannels[h.channel] ?? h.channel);
    },
  });
  /** The channel of each tile of the overview drawn. */
  let shownChannels: readonly number[] = [];
  const decoded = new Map<string, Decoded>();
  /** Optimised images that arrived, by actmax key. */
  const optimisedImages = new Map<string, RgbStack>();

  function channelCount(): number {
    const l = ctx.get("layers").find((x) => x.name === layer);
    return l?.shape?.[0] ?? 1;
  }

  function goTo(c: number): void {
    if (!Number.isFinite(c)) return;
    channel = Math.max(0, Math.min(channelCount() - 1, Math.round(c)));
    chField.value = String(channel);
    refresh();
  }

  function openChannel(c: number): void {
    overview = false;
    modeSel.input.value = "channel";
    goTo(c);
  }

  function params(): RequestParams["examples"] {
    return { layer, channel: overview ? OVERVIEW : channel };
  }

  function refresh(): void {
    const i = info();
    const layers = i?.layers ?? [];
    if (!layers.includes(layer)) layer = startLayer();
    syncSelect(layerSel, layerOptions(), layer);
    chField.max = String(channelCount() - 1);
    // never overwrite what a person is typing (data arriving meanwhile redraws the tab)
    if (doc.activeElement !== chField) chField.value = String(channel);
    chCount.textContent = t("examples.of_channels", { count: channelCount() });
    for (const node of [chField, prev, next, overlayBox]) node.disabled = overview;
    // without examples the controls would choose among nothing: only the hint shows
    controls.hidden = !i || !layer;
    if (!i || !layer) {
      about.textContent = t("examples.none");
      section.clear();
      side.hidden = true;
      caption.textContent = "";
      message.hide();
      return;
    }
    about.textContent = t(i.lazy ? "examples.about_lazy" : "examples.about", { k: i.k, description: i.description });
    const p = params();
    const key = requestKey("examples", p);
    const entry = ctx.session.request("examples", p);
    drawSide();
    if (!entry) {
      showPending(ctx, message, "examples", key, t(i.lazy ? "examples.collecting" : "examples.loading", { layer }), refresh);
      section.clear();
      caption.textContent = "";
      return;
    }
    message.show(entry.partial ? t("examples.partial", { channels: entry.partial.channels, of: entry.partial.of }) : "");
    draw(entry);
  }

  function decode(entry: Entry<"examples">): Decoded {
    let d = decoded.get(entry.key + (entry.partial ? "|partial" : ""));
    if (!d) {
      const c = entry.content;
      d = {
        rgb: decodeRgbStack(rgbPayload(c.rgb, entry.buffers, 0)),
        maps: c.maps ? decodeMapStack(stackPayload(c.maps, entry.buffers, 1)) : null,
      };
      decoded.set(entry.key + (entry.partial ? "|partial" : ""), d);
    }
    return d;
  }

  function draw(entry: Entry<"examples">): void {
    const t0 = performance.now();
    const c = entry.content;
    const { rgb, maps } = decode(entry);
    const cmap = ctx.get("cam_cmap");
    const colorizer = maps ? new Colorizer(maps, ctx.colorTable(cmap), { scale: "map", symmetric: isDiverging(cmap, ctx.get("diverging_colormaps")) }) : null;
    const withMaps = colorizer !== null && overlayBox.checked && !overview;
    const plain = rgbSource(rgb);
    const n = rgb.height * rgb.width;
    const source: TileSource = {
      count: rgb.count,
      height: rgb.height,
      width: rgb.width,
      paint: (i, out) => {
        if (!withMaps || !colorizer) {
          plain.paint(i, out);
          return;
        }
        blendOverlay(rgb.data.subarray(i * n * 3, (i + 1) * n * 3), colorizer.colorize(i), OVERLAY_OPACITY, out);
      },
      value: (i, row, col) => (maps && !overview ? valueAt(maps, i, row, col) : null),
      label: (i) => exampleLabel(c, i, t),
    };
    shownChannels = c.channels ?? [];
    const order = Array.from({ length: rgb.count }, (_, i) => i);
    const identity = [entry.key, entry.partial ? "partial" : "complete", withMaps ? cmap : "plain"].join("|");
    section.show(source, order, { identity, key: entry.key });
    section.grid.canvas.dataset.examples = String(rgb.count);
    if (overview) caption.textContent = t("examples.caption_overview", { layer, count: rgb.count });
    else {
      const purity = classPurity(c.labels);
      const pure = purity ? t("examples.purity", { share: Math.round(purity.share * 100), name: exampleClass(c, c.labels.indexOf(purity.label), t) }) : "";
      caption.textContent = [t("examples.caption_channel", { layer, channel, count: rgb.count }), pure].filter(Boolean).join(" · ");
    }
    ctx.markPaint("examples", t0);
  }

  /** The channel's map for the current image and its optimised image, beside the grid. */
  function drawSide(): void {
    const explored = ctx.get("layers").some((l) => l.name === layer && l.shape);
    side.hidden = overview || !explored;
    if (side.hidden) return;
    here.setAttribute("aria-label", t("examples.this_image_label", { layer, channel }));
    const features = ctx.session.request("features", { version: ctx.get("image_version"), layer });
    const stack = features ? stackOf(features) : null;
    if (stack && channel < stack.channels) {
      const cmap = ctx.get("cmap");
      const colorizer = new Colorizer(stack, ctx.colorTable(cmap), { scale: "map", symmetric: isDiverging(cmap, ctx.get("diverging_colormaps")) });
      const one: TileSource = {
        count: 1,
        height: stack.height,
        width: stack.width,
        paint: (_i, out) => {
          colorizer.colorize(channel, out);
        },
        value: () => null,
        label: () => "",
      };
      const s = SIDE_SIZE / Math.max(stack.height, stack.width);
      paintScaled(here, one, 0, Math.round(stack.width * s), Math.round(stack.height * s));
      here.hidden = false;
      hereText.textContent = t("examples.this_image_range", { range: formatRange(stack.lo[channel] ?? 0, stack.hi[channel] ?? 0) });
    } else {
      here.hidden = true;
      hereText.textContent = t("examples.loading_map");
    }
    const image = optimisedImages.get(actmaxKey());
    optimised.hidden = !image;
    if (image) {
      const s = SIDE_SIZE / Math.max(image.height, image.width);
      paintScaled(optimised, rgbSource(image), 0, Math.round(image.width * s), Math.round(image.height * s));
      optimisedText.textContent = t("examples.optimised_done", { channel });
    } else if (!ctx.session.waitingFor("actmax") || optimisedText.textContent === "") optimisedText.textContent = t("examples.optimise_hint");
  }

  function actmaxParams(): RequestParams["actmax"] {
    return { layer, channels: [channel], regularize: true };
  }
  const actmaxKey = (): string => requestKey("actmax", actmaxParams());

  function askActmax(): void {
    ctx.session.retry("actmax");
    ctx.session.request("actmax", actmaxParams());
    optimisedText.textContent = t("examples.optimising", { channel });
  }

  return {
    el: panel,
    kinds: ["examples", "features", "actmax"],
    traits: ["examples_info", "layers", "image_version", "cam_cmap", "cmap", "colormaps"],
    refresh,
    reply: () => {
      if (!panel.hidden) refresh();
    },
    error: (kind, key, text) => {
      if (kind === "actmax") {
        if (key === actmaxKey()) optimisedText.textContent = text === CANCELLED ? t("examples.optimise_cancelled") : text;
        return;
      }
      if (kind === "features") return; // the feature-maps tab says it
      if (text === CANCELLED) refresh();
      else message.error(text);
    },
    progress: (p: Readonly<Progress>) => {
      if (p.kind === "examples" && p.key === requestKey("examples", params())) message.show(t("examples.progress", { text: p.text }));
      if (p.kind === "actmax" && p.key === actmaxKey()) optimisedText.textContent = t("examples.optimising_progress", { text: p.text });
    },
    item: (item: ActmaxItem) => {
      if (item.key === actmaxKey()) optimisedImages.set(item.key, decodeRgbStack(item.rgb));
      if (item.key === actmaxKey() && !panel.hidden) drawSide();
    },
    resize: () => section.resize(),
    destroy: () => section.destroy(),
  };
}
