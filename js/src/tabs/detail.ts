/** The pinned tile: a click on a tile shows it enlarged below the tabs, with its label and value. */

import { paintScaled } from "../canvas_util";
import { button, el } from "../dom";
import { formatValue } from "../format";
import type { GridHover } from "../grid_view";
import type { Translate } from "../i18n";

/** Longest side of the pinned picture, CSS pixels (whole multiples of the map's size). */
const DETAIL_SIZE = 192;

export class Detail {
  readonly el: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly text: HTMLDivElement;

  constructor(
    doc: Document,
    private readonly t: Translate,
  ) {
    this.el = el(doc, "div", "cnnviz-detail");
    this.el.hidden = true;
    this.canvas = el(doc, "canvas", "cnnviz-detail-canvas");
    this.canvas.setAttribute("role", "img");
    this.text = el(doc, "div", "cnnviz-detail-text");
    this.el.append(this.canvas, this.text, button(doc, t("detail.unpin"), t("detail.unpin_title"), () => this.hide()));
  }

  pin(h: GridHover): void {
    const s = h.source;
    const scale = Math.max(1, Math.floor(DETAIL_SIZE / Math.max(s.height, s.width)));
    paintScaled(this.canvas, s, h.channel, s.width * scale, s.height * scale);
    const t = this.t;
    this.canvas.setAttribute("aria-label", t("detail.pinned", { label: s.label(h.channel) }));
    this.text.textContent =
      `${s.label(h.channel)} · ${s.height} × ${s.width}` +
      (h.value === null ? "" : ` · ${t("detail.value_at", { row: h.row, col: h.col, value: formatValue(h.value) })}`);
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
  }
}
