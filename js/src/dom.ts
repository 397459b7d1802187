/** Small DOM builders for the explorer's controls (text always via textContent). */

import { keepKeys } from "./keys_guard";

export function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className = "",
  text = "",
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** A labelled <select>; `options` are [value, text] pairs. */
export function select(
  doc: Document,
  label: string,
  options: readonly (readonly [string, string])[],
  value: string,
  onChange: (value: string) => void,
): { wrap: HTMLLabelElement; input: HTMLSelectElement; setOptions: (o: readonly (readonly [string, string])[], v: string) => void } {
  const wrap = el(doc, "label", "cnnviz-control");
  wrap.append(el(doc, "span", "cnnviz-control-label", label));
  const input = el(doc, "select", "cnnviz-select");
  input.setAttribute("aria-label", label);
  const setOptions = (opts: readonly (readonly [string, string])[], v: string): void => {
    input.replaceChildren();
    for (const [val, text] of opts) {
      const o = el(doc, "option", "", text);
      o.value = val;
      input.appendChild(o);
    }
    input.value = v;
  };
  setOptions(options, value);
  input.addEventListener("change", () => onChange(input.value));
  wrap.append(input);
  return { wrap, input, setOptions };
}

/** A labelled range input. */
export function slider(
  doc: Document,
  label: string,
  min: number,
  max: number,
  step: number,
  value: number,
  onInput: (value: number) => void,
): { wrap: HTMLLabelElement; input: HTMLInputElement } {
  const wrap = el(doc, "label", "cnnviz-control");
  wrap.append(el(doc, "span", "cnnviz-control-label", label));
  const input = el(doc, "input", "cnnviz-slider");
  input.type = "range";
  input.min = String(min);
  input.max = String(max);
  input.step = String(step);
  input.value = String(value);
  input.setAttribute("aria-label", label);
  input.addEventListener("input", () => onInput(Number(input.value)));
  // The keys are handled here, not by the browser: hosts claim arrow keys for their own
  // navigation (JupyterLab prevents their default; Notebook 7 stops them before they reach
  // an output), which would leave the slider deaf. See keys_guard.ts.
  keepKeys(input, (event) => {
    const next = sliderKey(event.key, Number(input.value), Number(input.min), Number(input.max), Number(input.step) || 1);
    if (next === null) return false;
    if (next !== Number(input.value)) {
      input.value = String(next);
      onInput(Number(input.value));
    }
    return true;
  });
  wrap.append(input);
  return { wrap, input };
}

/** The value a slider key moves to (null for keys a slider does not use). */
export function sliderKey(key: string, value: number, min: number, max: number, step: number): number | null {
  const page = Math.max(step, Math.round((max - min) / 10 / step) * step);
  const clamp = (v: number): number => Math.min(max, Math.max(min, v));
  switch (key) {
    case "ArrowRight":
    case "ArrowUp":
      return clamp(value + step);
    case "ArrowLeft":
    case "ArrowDown":
      return clamp(value - step);
    case "PageUp":
      return clamp(value + page);
    case "PageDown":
      return clamp(value - page);
    case "Home":
      return min;
    case "End":
      return max;
    default:
      return null;
  }
}

export function button(doc: Document, text: string, label: string, onClick: () => void): HTMLButtonElement {
  const b = el(doc, "button", "cnnviz-button", text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.title = label;
  b.addEventListener("click", onClick);
  return b;
}

/** Height of the caption line of an exported PNG, CSS pixels. */
const CAPTION_HEIGHT = 20;

/** `canvas` below a line of text (white background), at the canvas's own pixel density. */
export function captioned(canvas: HTMLCanvasElement, caption: string): HTMLCanvasElement {
  const doc = canvas.ownerDocument;
  const scale = canvas.clientWidth > 0 ? canvas.width / canvas.clientWidth : 1;
  const line = Math.round(CAPTION_HEIGHT * scale);
  const out = doc.createElement("canvas");
  const g = out.getContext("2d");
  if (!g) return canvas;
  const font = `${Math.round(12 * scale)}px sans-serif`;
  g.font = font;
  const pad = Math.round(4 * scale);
  out.width = Math.max(canvas.width, Math.ceil(g.measureText(caption).width) + 2 * pad);
  out.height = canvas.height + line;
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, out.width, out.height);
  g.fillStyle = "#222222";
  g.font = font; // resizing the canvas reset it
  g.textBaseline = "middle";
  g.fillText(caption, pad, line / 2);
  g.drawImage(canvas, 0, line);
  return out;
}

/** Save a canvas as a PNG download named `name`, with `caption` as a line of text above it. */
export function downloadCanvas(canvas: HTMLCanvasElement, name: string, caption = ""): void {
  const a = canvas.ownerDocument.createElement("a");
  a.download = name.replace(/[^A-Za-z0-9._-]+/g, "_");
  a.href = (caption ? captioned(canvas, caption) : canvas).toDataURL("image/png");
  a.click();
}

/** Set a select's options (rebuilt only when they changed) and its value. */
export function syncSelect(
  control: { input: HTMLSelectElement; setOptions: (o: readonly (readonly [string, string])[], v: string) => void },
  options: readonly (readonly [string, string])[],
  value: string,
): void {
  const have = [...control.input.options].map((o) => `${o.value}\u0000${o.text}`).join("\u0001");
  const want = options.map(([v, t]) => `${v}\u0000${t}`).join("\u0001");
  if (have !== want) control.setOptions(options, value);
  else if (control.input.value !== value) control.input.value = value;
}

/** A button beside a message: "Compute again" after a cancel. */
export interface MessageAction {
  label: string;
  run: () => void;
}

/** A line of text under a tab's controls: loading notes, notes, errors. */
export class MessageLine {
  readonly el: HTMLDivElement;

  constructor(doc: Document, className = "cnnviz-message") {
    this.el = el(doc, "div", className);
    this.el.hidden = true;
  }

  show(text: string, action?: MessageAction): void {
    this.el.textContent = text;
    if (action) {
      const b = button(this.el.ownerDocument, action.label, action.label, action.run);
      b.classList.add("cnnviz-message-action");
      this.el.append(" ", b);
    }
    this.el.classList.remove("cnnviz-error");
    this.el.hidden = !text;
  }

  error(text: string): void {
    this.show(text);
    this.el.classList.add("cnnviz-error");
  }

  hide(): void {
    this.show("");
  }
}
