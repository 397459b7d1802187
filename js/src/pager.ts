/** Page controls for long stacks: first, previous, next, last, and a page number to go to. */

import { type Translate, t as defaultT } from "./i18n";
import { guardKeys } from "./keys_guard";
import type { PageInfo } from "./tiling";

export class Pager {
  readonly el: HTMLDivElement;
  private readonly first: HTMLButtonElement;
  private readonly prev: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private readonly last: HTMLButtonElement;
  private readonly label: HTMLSpanElement;
  private readonly field: HTMLInputElement;
  private readonly onPage: (pageIndex: number) => void;
  private page: PageInfo | null = null;
  private readonly noun: string;

  /**
   * `noun`: what the tiles are ("maps", "kernels"; in the language of `t`),
   * in the buttons' names and the text.
   */
  constructor(
    parent: HTMLElement,
    onPage: (pageIndex: number) => void,
    noun?: string,
    private readonly t: Translate = defaultT,
  ) {
    const doc = parent.ownerDocument;
    this.noun = noun ?? t("pager.maps");
    this.onPage = onPage;
    this.el = doc.createElement("div");
    this.el.className = "cnnviz-pager";
    this.el.hidden = true;
    const make = (text: string, title: string, go: () => number): HTMLButtonElement => {
      const b = doc.createElement("button");
      b.type = "button";
      b.className = "cnnviz-button";
      b.textContent = text;
      b.title = title;
      b.setAttribute("aria-label", title);
      b.addEventListener("click", () => this.go(go()));
      return b;
    };
    const at = (): number => this.page?.pageIndex ?? 0;
    const count = (): number => this.page?.pageCount ?? 1;
    const n = { noun: this.noun };
    this.first = make("«", t("pager.first", n), () => 0);
    this.prev = make(t("pager.prev_text"), t("pager.prev", n), () => at() - 1);
    this.next = make(t("pager.next_text"), t("pager.next", n), () => at() + 1);
    this.last = make("»", t("pager.last", n), () => count() - 1);
    this.label = doc.createElement("span");
    this.label.setAttribute("aria-live", "polite");
    const goTo = doc.createElement("label");
    goTo.className = "cnnviz-control";
    goTo.append(`${t("pager.go_to")} `);
    this.field = doc.createElement("input");
    this.field.type = "number";
    this.field.className = "cnnviz-number cnnviz-page-field";
    this.field.min = "1";
    this.field.setAttribute("aria-label", t("pager.go_to_label", n));
    this.field.addEventListener("change", () => this.go(Math.floor(Number(this.field.value)) - 1));
    goTo.append(this.field);
    guardKeys(doc);
    this.el.append(this.first, this.prev, this.label, this.next, this.last, goTo);
    parent.appendChild(this.el);
  }

  /**
   * Show the controls for `page` of `total` tiles (hidden when there is one
   * page); `text` replaces the default "page 1 / 4 · maps 0–255 of 1024".
   */
  update(page: PageInfo, total: number, text?: string): void {
    this.page = page;
    this.el.hidden = page.pageCount <= 1;
    this.first.disabled = this.prev.disabled = page.pageIndex <= 0;
    this.next.disabled = this.last.disabled = page.pageIndex >= page.pageCount - 1;
    this.field.max = String(page.pageCount);
    this.field.value = String(page.pageIndex + 1);
    this.label.textContent =
      text ??
      this.t("pager.text", {
        page: page.pageIndex + 1,
        pages: page.pageCount,
        noun: this.noun,
        first: page.start,
        last: Math.max(page.start, page.end - 1),
        total,
      });
  }

  private go(index: number): void {
    const p = this.page;
    if (!p || !Number.isFinite(index)) return;
    const to = Math.min(p.pageCount - 1, Math.max(0, index));
    if (to !== p.pageIndex) this.onPage(to);
    else this.field.value = String(p.pageIndex + 1);
  }

  destroy(): void {
    this.el.remove();
  }
}
