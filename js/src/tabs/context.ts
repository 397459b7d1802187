/** The TabContext of one explorer: traits, colour tables, the input image, timing marks. */

import type { AnyModel } from "@anywidget/types";
import { grayColorTable } from "../colormap";
import { type RgbStack, decodeColorTable, decodeRgbStack } from "../decode";
import { el } from "../dom";
import { ClassNames } from "../explain";
import type { GridHover } from "../grid_view";
import type { Translate } from "../i18n";
import type { Session } from "../session";
import { type ExplorerTraits, type TraitName, get } from "../traits";
import type { ZoomBox } from "../zoom_box";
import type { Detail } from "./detail";
import type { TabContext } from "./tab";

export type ExplorerModel = AnyModel<ExplorerTraits>;

/** Width used before the element has been laid out. */
const FALLBACK_WIDTH = 640;

export class ExplorerContext implements TabContext {
  readonly doc: Document;
  readonly classes: ClassNames;
  private input: RgbStack | null = null;
  private scrubStart = 0;

  constructor(
    private readonly model: ExplorerModel,
    private readonly root: HTMLElement,
    private readonly host: HTMLElement,
    readonly session: Session,
    readonly zoom: ZoomBox,
    private readonly detail: Detail,
    readonly showError: (text: string) => void,
    readonly t: Translate,
  ) {
    this.doc = host.ownerDocument;
    this.classes = new ClassNames(t);
  }

  get<K extends TraitName>(name: K): ExplorerTraits[K] {
    return get(this.model, name);
  }

  save<K extends TraitName>(name: K, value: ExplorerTraits[K]): void {
    this.model.set(name, value);
    this.model.save_changes();
  }

  local<K extends TraitName>(name: K, value: ExplorerTraits[K]): void {
    this.model.set(name, value);
  }

  panel(name: string): HTMLElement {
    const panel = el(this.doc, "div", `cnnviz-panel cnnviz-panel-${name}`);
    panel.setAttribute("role", "tabpanel");
    panel.dataset.panel = name;
    return panel;
  }

  /** Decode the `input_image` trait again (after it changed). */
  readImage(): void {
    try {
      const p = this.get("input_image");
      this.input = p ? decodeRgbStack(p) : null;
    } catch (err) {
      this.input = null;
      this.showError(this.t("explorer.cannot_show", { what: this.t("explorer.input_image"), error: String(err) }));
    }
  }

  image(): RgbStack | null {
    return this.input;
  }

  colorTable(name: string): Uint8Array {
    const t = this.get("colormaps")[name];
    return t ? decodeColorTable(t) : grayColorTable();
  }

  colormapOptions(): [string, string][] {
    return Object.keys(this.get("colormaps")).map((n) => [n, n]);
  }

  width(node: HTMLElement): number {
    const w = node.clientWidth || this.root.clientWidth || this.host.clientWidth;
    return w > 0 ? w : FALLBACK_WIDTH;
  }

  scrubbed(): void {
    this.scrubStart = performance.now();
  }

  /** Record how long a draw took, and (after a slider move) the time from the move to the painted frame. */
  markPaint(kind: string, t0: number): void {
    const root = this.root;
    root.dataset.lastDrawMs = (performance.now() - t0).toFixed(2);
    root.dataset.lastDrawKind = kind;
    root.dataset.draws = String(Number(root.dataset.draws ?? "0") + 1);
    if (this.scrubStart > 0) {
      const start = this.scrubStart;
      this.scrubStart = 0;
      this.doc.defaultView?.requestAnimationFrame(() => {
        root.dataset.lastPaintMs = (performance.now() - start).toFixed(2);
      });
    }
  }

  pin(hover: GridHover): void {
    this.detail.pin(hover);
  }
}
