/** The top predicted classes as buttons (CAM and saliency tabs): a click explains that class. */

import { button, el } from "../dom";
import type { Prediction } from "../messages";
import type { TabContext } from "./tab";

/** The class explained: the chosen one (target >= 0), else the top prediction; null when not known yet. */
export function chosenClass(target: number, predictions: readonly Prediction[] | null): number | null {
  if (target >= 0) return Math.floor(target);
  return predictions?.[0]?.index ?? null;
}

/** True when `method` is one of the class-agnostic CAM methods (names compared case-insensitively). */
export function isClassAgnostic(method: string, agnostic: readonly string[]): boolean {
  const m = method.toLowerCase();
  return agnostic.some((a) => a.toLowerCase() === m);
}

export class ClassButtons {
  readonly el: HTMLDivElement;

  constructor(private readonly ctx: TabContext) {
    this.el = el(ctx.doc, "div", "cnnviz-classes");
    this.el.setAttribute("aria-label", "Top predicted classes");
  }

  /** Ask for the predictions of the current image; null while they are on their way. */
  load(): Prediction[] | null {
    const entry = this.ctx.session.request("predictions", { version: this.ctx.get("image_version") });
    this.draw(entry ? entry.content.top : []);
    return entry ? entry.content.top : null;
  }

  private draw(predictions: readonly Prediction[]): void {
    const doc = this.ctx.doc;
    const target = this.ctx.get("target_class");
    this.el.replaceChildren();
    predictions.forEach((p, rank) => {
      const b = button(doc, "", `Explain class ${p.name}`, () => this.ctx.save("target_class", p.index));
      b.classList.add("cnnviz-class");
      const active = target === p.index || (target < 0 && rank === 0);
      b.classList.toggle("cnnviz-class-active", active);
      b.setAttribute("aria-pressed", String(active));
      b.dataset.index = String(p.index);
      const bar = el(doc, "span", "cnnviz-class-bar");
      bar.style.width = `${Math.round(p.prob * 100)}%`;
      b.append(el(doc, "span", "cnnviz-class-name", p.name), el(doc, "span", "cnnviz-class-prob", `${(p.prob * 100).toFixed(1)}%`), bar);
      this.el.appendChild(b);
    });
  }
}
