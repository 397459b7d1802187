/**
 * The drawing pad: draw with the mouse or a pen; the drawing becomes the model's input (when a
 * stroke ends, or on "Use as input") and the top predictions beside the pad follow it.
 */

import { MessageLine, button, el, select, slider } from "../dom";
import type { MessageKey } from "../i18n";
import { rgbSource } from "../tiles";
import { ClassButtons } from "./predictions";
import type { Tab, TabContext } from "./tab";

const PEN_COLOURS: [string, MessageKey][] = [
  ["#ffffff", "draw.white"],
  ["#000000", "draw.black"],
  ["#ff0000", "draw.red"],
  ["#00c000", "draw.green"],
  ["#0000ff", "draw.blue"],
  ["#ffff00", "draw.yellow"],
];
/** Size of the pad without an input image, and its longest side on screen (CSS pixels). */
const BLANK_SIZE = 64;
const PAD_SIZE = 256;

export function createDrawTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("draw");
  const pad = el(doc, "canvas", "cnnviz-pad");
  pad.setAttribute("aria-label", t("draw.pad_label"));
  pad.setAttribute("role", "img");
  const pen = { size: 4, color: "#ffffff" };
  const size = slider(doc, t("draw.pen_size"), 1, 16, 1, pen.size, (v) => (pen.size = v));
  const colours = PEN_COLOURS.map(([v, k]) => [v, t(k)] as const);
  const colour = select(doc, t("draw.pen_colour"), colours, pen.color, (v) => (pen.color = v));
  const clear = button(doc, t("draw.clear"), t("draw.clear_title"), () => reset(false));
  const fromImage = button(doc, t("draw.from_input"), t("draw.from_input_title"), () => reset(true));
  const status = new MessageLine(doc);
  let sentVersion = -1;
  const send = (): void => {
    const data = pad.getContext("2d")?.getImageData(0, 0, pad.width, pad.height);
    if (!data) return;
    ctx.session.setImage(pad.height, pad.width, data.data.buffer);
    sentVersion = ctx.get("image_version");
    status.show(t("draw.sent"));
  };
  const use = button(doc, t("draw.use"), t("draw.use_title"), send);
  const liveWrap = el(doc, "label", "cnnviz-control");
  const live = el(doc, "input");
  live.type = "checkbox";
  live.checked = true;
  live.setAttribute("aria-label", t("draw.live_label"));
  liveWrap.append(live, el(doc, "span", "cnnviz-control-label", t("draw.live")));
  const controls = el(doc, "div", "cnnviz-controls");
  controls.append(size.wrap, colour.wrap, clear, fromImage, use, liveWrap);
  const hint = el(doc, "div", "cnnviz-meta cnnviz-pad-hint", t("draw.hint"));
  const classes = new ClassButtons(ctx);
  classes.el.setAttribute("aria-label", t("draw.predictions_label"));
  const side = el(doc, "div", "cnnviz-pad-side");
  side.append(el(doc, "div", "cnnviz-meta", t("draw.top")), classes.el, status.el);
  const body = el(doc, "div", "cnnviz-body");
  body.append(pad, side);
  panel.append(controls, hint, body);

  function reset(fromInput: boolean): void {
    const image = ctx.image();
    const h = image?.height ?? BLANK_SIZE;
    const w = image?.width ?? BLANK_SIZE;
    pad.width = w;
    pad.height = h;
    const scale = Math.max(1, Math.floor(PAD_SIZE / Math.max(h, w)));
    pad.style.width = `${w * scale}px`;
    pad.style.height = `${h * scale}px`;
    const c = pad.getContext("2d");
    if (!c) return;
    c.fillStyle = "#000000";
    c.fillRect(0, 0, w, h);
    if (fromInput && image) {
      const data = c.createImageData(w, h);
      rgbSource(image).paint(0, data.data);
      c.putImageData(data, 0, 0);
    }
  }

  let last: [number, number] | null = null;
  let drawing = false;
  const at = (e: PointerEvent): [number, number] => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  const stroke = (e: PointerEvent): void => {
    const c = pad.getContext("2d");
    if (!c) return;
    const p = at(e);
    c.strokeStyle = pen.color;
    c.fillStyle = pen.color;
    c.lineWidth = pen.size;
    c.lineCap = "round";
    c.beginPath();
    if (last) {
      c.moveTo(last[0], last[1]);
      c.lineTo(p[0], p[1]);
      c.stroke();
    } else {
      c.arc(p[0], p[1], pen.size / 2, 0, 2 * Math.PI);
      c.fill();
    }
    last = p;
  };
  const end = (): void => {
    const stroked = drawing;
    drawing = false;
    last = null;
    if (stroked && live.checked) send();
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    last = null;
    pad.setPointerCapture?.(e.pointerId);
    stroke(e);
  });
  pad.addEventListener("pointermove", (e) => {
    if (drawing) stroke(e);
  });
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointerleave", end);
  reset(false);

  const showPredictions = (): void => {
    const top = classes.load();
    if (top && ctx.get("image_version") > sentVersion && sentVersion >= 0) {
      status.show(t("draw.sees", { version: ctx.get("image_version") }));
    }
  };

  return {
    el: panel,
    kinds: ["predictions"],
    traits: ["image_version", "target_class"],
    refresh: showPredictions,
    reply: showPredictions,
    error: (_kind, _key, message) => status.show(message),
    resize: () => undefined,
    destroy: () => undefined,
  };
}
