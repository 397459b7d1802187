/** The drawing pad: draw with the mouse or a pen, then use the drawing as the model's input. */

import { button, el, select, slider } from "../dom";
import { rgbSource } from "../tiles";
import type { Tab, TabContext } from "./tab";

const PEN_COLOURS: [string, string][] = [
  ["#ffffff", "white"],
  ["#000000", "black"],
  ["#ff0000", "red"],
  ["#00c000", "green"],
  ["#0000ff", "blue"],
  ["#ffff00", "yellow"],
];
/** Size of the pad without an input image, and its longest side on screen (CSS pixels). */
const BLANK_SIZE = 64;
const PAD_SIZE = 256;

export function createDrawTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const panel = ctx.panel("draw");
  const pad = el(doc, "canvas", "cnnviz-pad");
  pad.setAttribute("aria-label", "Drawing pad: draw with the mouse or a pen");
  pad.setAttribute("role", "img");
  const pen = { size: 4, color: "#ffffff" };
  const size = slider(doc, "Pen size", 1, 16, 1, pen.size, (v) => (pen.size = v));
  const colour = select(doc, "Pen colour", PEN_COLOURS, pen.color, (v) => (pen.color = v));
  const clear = button(doc, "Clear", "Clear the drawing pad (black)", () => reset(false));
  const fromImage = button(doc, "From input", "Start from the current input image", () => reset(true));
  const use = button(doc, "Use as input", "Use the drawing as the model's input", () => {
    const data = pad.getContext("2d")?.getImageData(0, 0, pad.width, pad.height);
    if (data) ctx.session.setImage(pad.height, pad.width, data.data.buffer);
  });
  const controls = el(doc, "div", "cnnviz-controls");
  controls.append(size.wrap, colour.wrap, clear, fromImage, use);
  panel.append(controls, pad);

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
    drawing = false;
    last = null;
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

  return {
    el: panel,
    kinds: [],
    traits: [],
    refresh: () => undefined,
    reply: () => undefined,
    error: () => undefined,
    resize: () => undefined,
    destroy: () => undefined,
  };
}
