/** Previous / next page controls for long map stacks. */

import type { PageInfo } from "./tiling";

export class Pager {
  readonly el: HTMLDivElement;
  private readonly prev: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private readonly label: HTMLSpanElement;
  private readonly onPage: (pageIndex: number) => void;
  private page: PageInfo | null = null;

  constructor(parent: HTMLElement, onPage: (pageIndex: number) => void) {
    const doc = parent.ownerDocument;
    this.onPage = onPage;
    this.el = doc.createElement("div");
    this.el.className = "cnnviz-pager";
    this.el.hidden = true;
    this.prev = doc.createElement("button");
    this.next = doc.createElement("button");
    for (const [button, text, title] of [
      [this.prev, "‹ Prev", "Previous page of maps"],
      [this.next, "Next ›", "Next page of maps"],
    ] as const) {
      button.type = "button";
      button.className = "cnnviz-button";
      button.textContent = text;
      button.title = title;
      button.setAttribute("aria-label", title);
    }
    this.label = doc.createElement("span");
    this.label.setAttribute("aria-live", "polite");
    this.el.append(this.prev, this.label, this.next);
    this.prev.addEventListener("click", this.onPrev);
    this.next.addEventListener("click", this.onNext);
    parent.appendChild(this.el);
  }

  /** Show the controls for `page` of `total` maps (hidden when there is one page). */
  update(page: PageInfo, total: number): void {
    this.page = page;
    this.el.hidden = page.pageCount <= 1;
    this.prev.disabled = page.pageIndex <= 0;
    this.next.disabled = page.pageIndex >= page.pageCount - 1;
    this.label.textContent =
      `page ${page.pageIndex + 1} / ${page.pageCount} · ` +
      `maps ${page.start}–${Math.max(page.start, page.end - 1)} of ${total}`;
  }

  private readonly onPrev = (): void => {
    if (this.page && this.page.pageIndex > 0) this.onPage(this.page.pageIndex - 1);
  };

  private readonly onNext = (): void => {
    if (this.page && this.page.pageIndex < this.page.pageCount - 1) this.onPage(this.page.pageIndex + 1);
  };

  destroy(): void {
    this.prev.removeEventListener("click", this.onPrev);
    this.next.removeEventListener("click", this.onNext);
    this.el.remove();
  }
}
