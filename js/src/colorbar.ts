/**
 * A colour bar: the colour table as a strip, with the value range it spans
 * (and zero, for a range that holds it) and a note ("per map: hover a tile").
 */

import { type Range, zeroPosition } from "./colormap";
import { el } from "./dom";
import { formatValue } from "./format";

export class ColorBar {
  readonly el: HTMLDivElement;
  private readonly strip: HTMLCanvasElement;
  private readonly lo: HTMLSpanElement;
  private readonly zero: HTMLSpanElement;
  private readonly hi: HTMLSpanElement;
  private readonly note: HTMLDivElement;
  private table: Uint8Array | null = null;

  constructor(doc: Document, label: string) {
    this.el = el(doc, "div", "cnnviz-colorbar");
    this.el.setAttribute("role", "img");
    this.el.setAttribute("aria-label", label);
    this.strip = el(doc, "canvas", "cnnviz-colorbar-strip");
    this.strip.width = 256;
    this.strip.height = 1;
    const ticks = el(doc, "div", "cnnviz-colorbar-ticks");
    this.lo = el(doc, "span", "cnnviz-colorbar-lo");
    this.zero = el(doc, "span", "cnnviz-colorbar-zero", "0");
    this.hi = el(doc, "span", "cnnviz-colorbar-hi");
    ticks.append(this.lo, this.zero, this.hi);
    this.note = el(doc, "div", "cnnviz-meta cnnviz-colorbar-note");
    this.el.append(this.strip, ticks, this.note);
    this.el.hidden = true;
  }

  /** Show `table` spanning `range` (null: no values to name), with `note` below. */
  update(table: Uint8Array, range: Range | null, note = ""): void {
    if (table !== this.table) {
      this.table = table;
      const g = this.strip.getContext("2d");
      if (g) {
        const img = g.createImageData(256, 1);
        img.data.set(table.subarray(0, 1024));
        g.putImageData(img, 0, 0);
      }
    }
    this.lo.textContent = range ? formatValue(range.lo) : "";
    this.hi.textContent = range ? formatValue(range.hi) : "";
    const z = range ? zeroPosition(range) : null;
    this.zero.hidden = z === null;
    if (z !== null) this.zero.style.left = `${(z * 100).toFixed(1)}%`;
    this.el.dataset.range = range ? JSON.stringify([range.lo, range.hi]) : "";
    this.note.textContent = note;
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
  }
}
