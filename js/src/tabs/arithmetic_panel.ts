/**
 * "How is this value made?": a pinned unit of a conv layer as a sum, after
 * CNN Explainer. For the input channels that add most, the input patch the
 * kernel sees, the kernel and their products, number by number; then the
 * other channels summed, the bias, and the total next to the value the
 * feature map shows. A feature map is this dot product, repeated.
 */

import { type ChannelTerm, agrees, arithmeticArrays, channelTerms, splitTerms } from "../arithmetic";
import { colorOfValue, symmetricRange } from "../colormap";
import { button, el } from "../dom";
import type { Entry } from "../entry";
import { formatValue } from "../format";
import type { Translate } from "../i18n";

/** Input channels shown number by number (the others are summed in one line). */
export const SHOWN_CHANNELS = 4;
/** Kernels larger than this many cells are drawn as colours without numbers. */
const MAX_NUMBERED_CELLS = 49;

export class ArithmeticPanel {
  readonly el: HTMLDivElement;
  private readonly title: HTMLDivElement;
  private readonly body: HTMLDivElement;

  constructor(
    private readonly doc: Document,
    private readonly t: Translate,
    private readonly kernelTable: () => Uint8Array,
    private readonly inputTable: () => Uint8Array,
  ) {
    this.el = el(doc, "div", "cnnviz-arithmetic");
    this.el.hidden = true;
    this.el.setAttribute("role", "region");
    this.el.setAttribute("aria-label", t("arithmetic.region"));
    this.title = el(doc, "div", "cnnviz-arithmetic-title");
    this.body = el(doc, "div", "cnnviz-arithmetic-body");
    this.el.append(this.title, this.body, button(doc, t("arithmetic.close"), t("arithmetic.close_title"), () => this.hide()));
  }

  /** Say that the unit's arithmetic is on its way (or `text`, e.g. an error). */
  pending(text: string): void {
    this.title.textContent = text;
    this.body.replaceChildren();
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
  }

  show(entry: Entry<"arithmetic">): void {
    const c = entry.content;
    const t = this.t;
    const [channels = 0, kh = 0, kw = 0] = c.kernel_shape;
    const { patch, kernel, products } = arithmeticArrays(entry.buffers, c.kernel_shape);
    const terms = channelTerms(products, c.kernel_shape, c.input_channels);
    const { shown, rest } = splitTerms(terms, SHOWN_CHANNELS);
    this.title.textContent = t("arithmetic.title", { layer: c.layer, channel: c.channel, row: c.row, col: c.col });
    const [y0 = 0, x0 = 0, y1 = 0, x1 = 0] = c.box;
    const rows: HTMLElement[] = [
      el(this.doc, "div", "cnnviz-meta", t("arithmetic.explain", { kh, kw, channels, y0, y1: y1 - 1, x0, x1: x1 - 1 })),
    ];
    const cells = kh * kw;
    for (const term of shown) rows.push(this.termRow(term, cells, kh, kw, patch, kernel, products));
    if (rest.count > 0) rows.push(el(this.doc, "div", "cnnviz-arithmetic-rest", t("arithmetic.rest", { count: rest.count, sum: formatValue(rest.sum) })));
    const total = terms.reduce((a, x) => a + x.sum, 0);
    const ok = agrees(c.value, c.output);
    const line = el(this.doc, "div", "cnnviz-arithmetic-total");
    line.textContent = t("arithmetic.total", {
      channels,
      sum: formatValue(total),
      bias: formatValue(c.bias),
      value: formatValue(c.value),
      output: formatValue(c.output),
    });
    line.dataset.agrees = String(ok);
    const mark = el(this.doc, "span", ok ? "cnnviz-arithmetic-ok" : "cnnviz-arithmetic-bad", ok ? t("arithmetic.agrees") : t("arithmetic.differs"));
    line.append(" ", mark);
    rows.push(line);
    this.body.replaceChildren(...rows);
    this.el.hidden = false;
  }

  /** patch × kernel = products, Σ, for one input channel. */
  private termRow(
    term: ChannelTerm,
    cells: number,
    kh: number,
    kw: number,
    patch: Float32Array,
    kernel: Float32Array,
    products: Float32Array,
  ): HTMLElement {
    const t = this.t;
    const row = el(this.doc, "div", "cnnviz-arithmetic-row");
    row.dataset.channel = String(term.channel);
    const at = term.index * cells;
    const part = (values: Float32Array, table: Uint8Array, centred: boolean, label: string): HTMLElement =>
      this.cellGrid(values.subarray(at, at + cells), kh, kw, table, centred, label);
    row.append(
      el(this.doc, "span", "cnnviz-arithmetic-channel", t("arithmetic.input_channel", { channel: term.channel })),
      part(patch, this.inputTable(), false, t("arithmetic.patch")),
      el(this.doc, "span", "cnnviz-arithmetic-op", "×"),
      part(kernel, this.kernelTable(), true, t("arithmetic.kernel")),
      el(this.doc, "span", "cnnviz-arithmetic-op", "="),
      part(products, this.kernelTable(), true, t("arithmetic.products")),
      el(this.doc, "span", "cnnviz-arithmetic-sum", t("arithmetic.sum", { sum: formatValue(term.sum) })),
    );
    return row;
  }

  /** A kh × kw grid of coloured cells, with the numbers where they fit. */
  private cellGrid(values: Float32Array, kh: number, kw: number, table: Uint8Array, centred: boolean, label: string): HTMLElement {
    const box = el(this.doc, "figure", "cnnviz-arithmetic-grid");
    const grid = el(this.doc, "div", "cnnviz-cells");
    grid.style.gridTemplateColumns = `repeat(${kw}, auto)`;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const range = centred ? symmetricRange({ lo, hi }) : { lo, hi };
    const numbered = kh * kw <= MAX_NUMBERED_CELLS;
    for (const v of values) {
      const cell = el(this.doc, "span", "cnnviz-cell", numbered ? formatValue(v, 2) : "");
      const [r, g, b] = colorOfValue(table, v, range, centred);
      cell.style.background = `rgb(${r}, ${g}, ${b})`;
      cell.style.color = 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
      cell.title = formatValue(v);
      grid.append(cell);
    }
    box.append(grid, el(this.doc, "figcaption", "cnnviz-meta", label));
    return box;
  }
}
