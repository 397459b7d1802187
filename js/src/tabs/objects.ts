/**
 * Objects: what a detector or segmenter predicts, and the map of one of its
 * objects (the `objects` and `object_cam` requests).
 *
 * Detector: the input with its boxes (class and score) over it; a score
 * threshold hides boxes below it (here only: the reply holds every box
 * above a low floor); a click on a box (the smallest, where boxes overlap)
 * or on its row in the list explains it: its map by the explorer's CAM
 * method at the explorer's CAM layer, optionally normalised inside the box.
 * Segmenter: the predicted classes as a translucent mask with a legend
 * (share of the pixels); a click on a class of the legend or on a region of
 * the image explains that class over its region.
 *
 * Two tiles: the objects (boxes or mask) and the map over the input image,
 * the explained box drawn on it; hover reads the map's value. The chosen
 * object is the `target_class` trait (a box's index, or a class), which the
 * saliency tab explains too.
 */

import { sizeCanvas } from "../canvas_util";
import { ColorBar } from "../colorbar";
import { Colorizer, isDiverging } from "../colormap";
import { type MapStack, decodeMapStack, valueAt } from "../decode";
import { button, downloadCanvas, el, MessageLine, slider } from "../dom";
import type { Entry } from "../entry";
import { exportName, formatProb } from "../explain";
import { formatValue } from "../format";
import type { GridHover } from "../grid_view";
import { requestKey } from "../keys";
import { type RequestKind, type RequestParams, stackPayload } from "../messages";
import {
  type Box,
  type Objects,
  boxAt,
  boxRect,
  chosenObject,
  classAt,
  classColor,
  cssColor,
  decodeObjects,
  legend,
  placeLabels,
  paintMask,
  tileToImage,
  visibleBoxes,
} from "../objects";
import { blendOverlay } from "../overlay";
import { CANCELLED } from "../status";
import type { TileSource } from "../tiles";
import { type Rect, tileRect } from "../tiling";
import { GridSection } from "./grid_section";
import { camControls, opacitySlider } from "./overlay_view";
import { type Tab, type TabContext, cancelledNote, showPending } from "./tab";

/** Tiles between these sizes, CSS pixels: a 128 px scene 3x, a 224 px image 2x (labels need room). */
const MIN_TILE = 300;
const MAX_TILE = 448;
/** Opacity of the class mask over the image. */
const MASK_ALPHA = 0.55;
/** The boxes' label font and its line height, CSS pixels. */
const LABEL_FONT = "600 11px sans-serif";
const LABEL_HEIGHT = 15;

/** Black or white, whichever reads better on colour `c`. */
function textOn(c: readonly [number, number, number]): string {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 150 ? "#000" : "#fff";
}

export function createObjectsTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("objects");
  const controls = el(doc, "div", "cnnviz-controls");
  const cams = camControls(ctx);
  const layer = cams.layer;
  const threshold = slider(doc, t("objects.threshold"), 0, 1, 0.01, ctx.get("score_threshold"), (v) => {
    ctx.scrubbed();
    ctx.local("score_threshold", v);
  });
  threshold.wrap.classList.add("cnnviz-objects-threshold");
  const thresholdValue = el(doc, "span", "cnnviz-meta cnnviz-objects-threshold-value");
  threshold.wrap.append(thresholdValue);
  const normalize = el(doc, "label", "cnnviz-control cnnviz-objects-normalize");
  const normalizeBox = el(doc, "input");
  normalizeBox.type = "checkbox";
  normalizeBox.title = t("objects.normalize_title");
  normalizeBox.addEventListener("change", () => ctx.save("normalize_in_boxes", normalizeBox.checked));
  normalize.append(normalizeBox, el(doc, "span", "cnnviz-control-label", t("objects.normalize")));
  const opacity = opacitySlider(ctx);
  const png = button(doc, t("common.png"), t("objects.png_title"), () => download());
  controls.append(cams.method, cams.depth, cams.depthName, threshold.wrap, normalize, opacity.wrap, cams.cmap, png);
  const list = el(doc, "div", "cnnviz-classes cnnviz-objects-list");
  list.setAttribute("role", "group");
  const message = new MessageLine(doc);
  const note = el(doc, "div", "cnnviz-meta cnnviz-objects-note");
  const caption = el(doc, "div", "cnnviz-explained");
  caption.hidden = true;
  panel.append(controls, list, message.el, note, caption);
  const section = new GridSection(ctx, panel, { label: t("objects.view_label"), minTile: MIN_TILE, maxTile: MAX_TILE, onPage: () => refresh(), onClick: (h) => clicked(h) });
  const colorBar = new ColorBar(doc, t("overlay.colorbar", { label: t("objects.view_label") }));
  section.box.append(colorBar.el);
  /** Boxes and labels, drawn over the grid's canvas (vector, so that labels stay sharp). */
  const overlay = el(doc, "canvas", "cnnviz-objects-overlay");
  overlay.setAttribute("aria-hidden", "true");
  section.grid.canvas.after(overlay);

  /** The decoded objects of one reply (by key). */
  let decoded: { key: string; objects: Objects } | null = null;
  /** What the tiles show now (for clicks, the overlay and the PNG). */
  let shown: { objects: Objects; selected: number | null; boxes: Box[]; map: Entry<"object_cam"> | null; caption: string } | null = null;

  function objectsOf(entry: Entry<"objects">): Objects {
    if (decoded?.key !== entry.key) decoded = { key: entry.key, objects: decodeObjects(entry.content, entry.buffers) };
    return decoded.objects;
  }

  function stackOf(entry: Entry<"object_cam">): MapStack {
    return (entry.decoded.stack ??= decodeMapStack(stackPayload(entry.content.stack, entry.buffers)));
  }

  function params(objects: Objects, object: number): RequestParams["object_cam"] {
    const normalizeIn = objects.task === "detection" && ctx.get("normalize_in_boxes");
    return { version: ctx.get("image_version"), method: ctx.get("cam_method"), layer: layer(), object, normalize: normalizeIn };
  }

  function syncControls(): void {
    cams.sync();
    const v = ctx.get("score_threshold");
    threshold.input.value = String(v);
    threshold.input.setAttribute("aria-valuetext", v.toFixed(2));
    thresholdValue.textContent = v.toFixed(2);
    normalizeBox.checked = ctx.get("normalize_in_boxes");
    opacity.sync();
  }

  /** The list under the controls: the boxes above the threshold, or the legend of the classes. */
  function drawList(objects: Objects, boxes: readonly Box[], selected: number | null): void {
    list.replaceChildren();
    if (objects.task === "detection") {
      list.setAttribute("aria-label", t("objects.boxes_label"));
      for (const b of boxes) {
        const score = b.score.toFixed(2);
        addItem(b.index, classColor(b.label), `${b.name} #${b.index + 1}`, score, b.score, t("objects.explain_box", { name: `${b.name} #${b.index + 1}`, score }), selected);
      }
      return;
    }
    list.setAttribute("aria-label", t("objects.classes_tile"));
    for (const entry of legend(objects)) {
      const share = formatProb(entry.share);
      addItem(entry.label, entry.color, entry.name, share, entry.share, t("objects.explain_class", { name: entry.name, share }), selected);
    }
  }

  function addItem(index: number, color: readonly [number, number, number] | null, name: string, value: string, bar: number, label: string, selected: number | null): void {
    const active = index === selected;
    const b = button(doc, "", label, () => ctx.save("target_class", index));
    b.classList.add("cnnviz-class", "cnnviz-object");
    b.classList.toggle("cnnviz-class-active", active);
    b.setAttribute("aria-pressed", String(active));
    b.dataset.index = String(index);
    const swatch = el(doc, "span", "cnnviz-swatch");
    if (color) swatch.style.background = cssColor(color);
    else swatch.classList.add("cnnviz-swatch-none");
    const fill = el(doc, "span", "cnnviz-class-bar");
    fill.style.width = `${Math.round(Math.min(1, Math.max(0, bar)) * 100)}%`;
    b.append(swatch, el(doc, "span", "cnnviz-class-name", name), el(doc, "span", "cnnviz-class-prob", value), fill);
    list.append(b);
  }

  function captionOf(objects: Objects, c: Entry<"object_cam">["content"]): string {
    if (objects.task === "segmentation") return t("objects.caption_class", { method: c.method, name: c.class_name, share: formatProb(c.score), layer: c.layer });
    const params = { method: c.method, name: c.class_name, score: c.score.toFixed(2), layer: c.layer };
    return t(c.normalize ? "objects.caption_box_normalized" : "objects.caption_box", params);
  }

  function clear(): void {
    shown = null;
    list.replaceChildren();
    note.textContent = "";
    caption.hidden = true;
    colorBar.hide();
    section.clear();
    drawOverlay();
  }

  function refresh(): void {
    syncControls();
    const version = ctx.get("image_version");
    const entry = ctx.session.request("objects", { version });
    if (!entry) {
      clear();
      showPending(ctx, message, "objects", requestKey("objects", { version }), t("objects.finding"), refresh);
      return;
    }
    const objects = objectsOf(entry);
    const detection = objects.task === "detection";
    threshold.wrap.hidden = !detection;
    normalize.hidden = !detection;
    const image = ctx.image();
    if (!image || image.height !== objects.height || image.width !== objects.width) {
      clear();
      message.show(t("overlay.mismatch"));
      return;
    }
    const selected = chosenObject(ctx.get("target_class"), objects);
    const cut = ctx.get("score_threshold");
    const boxes = detection ? visibleBoxes(objects.boxes, cut) : [];
    drawList(objects, boxes, selected);
    if (detection) {
      note.textContent = t("objects.shown_count", { shown: boxes.length, count: objects.boxes.length, threshold: cut.toFixed(2) });
    } else {
      note.textContent = t("objects.click_class");
    }
    let map: Entry<"object_cam"> | null = null;
    let text = "";
    message.hide();
    if (selected === null) {
      message.show(detection ? t("objects.none_detected", { floor: formatValue(objects.floor) }) : t("objects.no_classes"));
    } else {
      if (detection && boxes.length === 0) message.show(t("objects.none_above", { threshold: cut.toFixed(2), count: objects.boxes.length }));
      const p = params(objects, selected);
      map = ctx.session.request("object_cam", p);
      if (!map) {
        const name = detection ? `${objects.boxes[selected]?.name ?? ""} #${selected + 1}` : (objects.classes.find((c) => c.label === selected)?.name ?? String(selected));
        text = t("objects.computing", { method: p.method, name });
        const cancelled = cancelledNote(ctx, "object_cam", requestKey("object_cam", p), text, refresh);
        if (cancelled) message.show(cancelled.text, cancelled.action);
      }
    }
    draw(objects, selected, boxes, map, text);
  }

  function draw(objects: Objects, selected: number | null, boxes: Box[], map: Entry<"object_cam"> | null, pending: string): void {
    const t0 = performance.now();
    const image = ctx.image();
    if (!image) return;
    const { height, width } = objects;
    const rgb = image.data.subarray(0, height * width * 3);
    const stack = map ? stackOf(map) : null;
    const usable = stack !== null && stack.height === height && stack.width === width;
    const cmapName = ctx.get("cam_cmap");
    const table = ctx.colorTable(cmapName);
    const colorizer = usable && stack ? new Colorizer(stack, table, { scale: "map", symmetric: isDiverging(cmapName, ctx.get("diverging_colormaps")) }) : null;
    const alpha = ctx.get("opacity");
    const label = map ? captionOf(objects, map.content) : pending;
    const source: TileSource = {
      count: 2,
      height,
      width,
      paint: (i, out) => {
        if (i === 0 && objects.task === "segmentation") paintMask(rgb, objects, MASK_ALPHA, selected, out);
        else if (i === 1 && colorizer) blendOverlay(rgb, colorizer.colorize(0), alpha, out);
        else for (let k = 0; k < height * width; k++) {
          out[4 * k] = rgb[3 * k] as number;
          out[4 * k + 1] = rgb[3 * k + 1] as number;
          out[4 * k + 2] = rgb[3 * k + 2] as number;
          out[4 * k + 3] = 255;
        }
      },
      value: (_i, row, col) => (usable && stack ? valueAt(stack, 0, row, col) : null),
      label: (i) => (i === 0 ? t(objects.task === "detection" ? "objects.boxes_tile" : "objects.classes_tile") : t("overlay.overlay_tile", { caption: label })),
    };
    shown = { objects, selected, boxes, map: usable ? map : null, caption: label };
    if (map && !usable) message.show(t("overlay.mismatch"));
    caption.textContent = label;
    caption.hidden = !label;
    caption.classList.toggle("cnnviz-explained-stale", !map);
    if (colorizer) colorBar.update(table, colorizer.rangeOf(0), t("overlay.values"));
    else colorBar.hide();
    section.show(source, [0, 1], { key: map?.key ?? "" });
    panel.dataset.selected = selected === null ? "" : String(selected);
    panel.dataset.task = objects.task;
    drawOverlay();
    ctx.markPaint("object_cam", t0);
  }

  /** The boxes (tile 0) and the explained box (tile 1) over the grid. */
  function drawOverlay(): void {
    const grid = section.grid.canvas;
    const layout = section.grid.gridLayout;
    if (!shown || !layout || grid.hidden || shown.objects.task !== "detection") {
      overlay.hidden = true;
      overlay.dataset.boxes = "[]";
      return;
    }
    const objects = shown.objects;
    overlay.hidden = false;
    overlay.style.left = `${grid.offsetLeft}px`;
    overlay.style.top = `${grid.offsetTop}px`;
    const g = sizeCanvas(overlay, layout.width, layout.height);
    g.clearRect(0, 0, layout.width, layout.height);
    g.font = LABEL_FONT;
    g.textBaseline = "middle";
    const drawn: { index: number; x: number; y: number; width: number; height: number }[] = [];
    const outline = (tile: Rect, b: Box, selectedBox: boolean): Rect => {
      const r = boxRect(b, tile, objects.height, objects.width);
      g.save();
      g.beginPath();
      g.rect(tile.x, tile.y, tile.width, tile.height);
      g.clip();
      g.lineWidth = selectedBox ? 4 : 2.5;
      g.strokeStyle = "rgba(255, 255, 255, 0.9)";
      g.strokeRect(r.x, r.y, r.width, r.height);
      g.lineWidth = selectedBox ? 2.5 : 1.5;
      g.strokeStyle = cssColor(classColor(b.label));
      g.strokeRect(r.x, r.y, r.width, r.height);
      g.restore();
      drawn.push({ index: b.index, x: r.x, y: r.y, width: r.width, height: r.height });
      return r;
    };
    const tile0 = tileRect(layout, 0);
    const chosen = shown.selected === null ? undefined : objects.boxes[shown.selected];
    // the largest first, so that smaller boxes stay on top; the explained box last
    const order = [...shown.boxes].sort((a, b) => (b.x2 - b.x1) * (b.y2 - b.y1) - (a.x2 - a.x1) * (a.y2 - a.y1));
    const rects = new Map<Box, Rect>();
    for (const b of order) if (b !== chosen) rects.set(b, outline(tile0, b, false));
    if (chosen && shown.boxes.includes(chosen)) rects.set(chosen, outline(tile0, chosen, true));
    // labels over every box, placed so that they do not cover each other: the explained box's
    // first, then by score; drawn in reverse, so that the first is on top
    const labelled = [...(chosen && rects.has(chosen) ? [chosen] : []), ...shown.boxes.filter((b) => b !== chosen)];
    const texts = labelled.map((b) => `${b.name} ${b.score.toFixed(2)}`);
    const widths = texts.map((text) => g.measureText(text).width + 6);
    const places = placeLabels(labelled.map((b, i) => ({ box: rects.get(b) as Rect, width: widths[i] as number })), LABEL_HEIGHT, tile0);
    for (let i = labelled.length - 1; i >= 0; i--) {
      const colour = classColor((labelled[i] as Box).label);
      const at = places[i] as { x: number; y: number };
      g.fillStyle = cssColor(colour);
      g.fillRect(at.x, at.y, widths[i] as number, LABEL_HEIGHT);
      g.fillStyle = textOn(colour);
      g.fillText(texts[i] as string, at.x + 3, at.y + LABEL_HEIGHT / 2);
    }
    if (chosen) outline(tileRect(layout, 1), chosen, true);
    overlay.dataset.boxes = JSON.stringify(drawn.slice(0, drawn.length - (chosen ? 1 : 0)));
  }

  function clicked(hover: GridHover): void {
    if (!shown) return;
    const objects = shown.objects;
    const at = tileToImage(hover.x, hover.y, hover.tile, objects.height, objects.width);
    if (objects.task === "detection") {
      const hit = boxAt(shown.boxes, at.x, at.y);
      if (hit) ctx.save("target_class", hit.index);
      return;
    }
    const region = classAt(objects, at.x, at.y);
    if (region) ctx.save("target_class", region.label);
  }

  function download(): void {
    if (!shown?.map) return;
    const grid = section.grid.canvas;
    const out = doc.createElement("canvas");
    out.width = grid.width;
    out.height = grid.height;
    out.style.width = grid.style.width;
    out.style.height = grid.style.height;
    const g = out.getContext("2d");
    if (!g) return;
    g.drawImage(grid, 0, 0);
    if (!overlay.hidden) g.drawImage(overlay, 0, 0, grid.width, grid.height);
    const c = shown.map.content;
    downloadCanvas(out, exportName(["objects", c.method, c.class_name, c.layer]), shown.caption);
  }

  return {
    el: panel,
    kinds: ["objects", "object_cam"],
    traits: ["cam_methods", "cam_method", "cam_layers", "cam_layer", "target_class", "opacity", "cam_cmap", "colormaps", "score_threshold", "normalize_in_boxes"],
    refresh,
    reply: () => {
      if (!panel.hidden) refresh();
    },
    error: (_kind: RequestKind, _key: string, text: string) => {
      if (text === CANCELLED) refresh();
      else message.error(text);
    },
    resize: () => {
      section.resize();
      drawOverlay();
    },
    destroy: () => section.destroy(),
  };
}
