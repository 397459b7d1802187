/** The top predicted classes as buttons (CAM and saliency tabs): a click explains that class. */

import { button, el } from "../dom";
import { formatProb } from "../explain";
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
    this.el.setAttribute("aria-label", ctx.t("classes.label"));
  }

  /** Ask for the predictions of the current image; null while they are on their way. */
  load(): Prediction[] | null {
    const version = this.ctx.get("image_version");
    const entry = this.ctx.session.request("predictions", { version });
    if (entry) this.ctx.classes.learnPredictions(version, entry.content.top);
    this.draw(entry ? entry.content.top : []);
    return entry ? entry.content.top : null;
  }

  /** Draw again with the class names and probabilities learnt since (from a map's reply). */
  redraw(): void {
    this.draw(this.shown);
  }

  private shown: readonly Prediction[] = [];

  private draw(predictions: readonly Prediction[]): void {
    this.shown = predictions;
    const target = this.ctx.get("target_class");
    this.el.replaceChildren();
    predictions.forEach((p, rank) => this.add(p.index, p.name, p.prob, target === p.index || (target < 0 && rank === 0)));
    // A chosen class outside the top 5 (set from Python, or kept from the image before): a
    // pressed button of its own, so that what is explained is always visible.
    if (target >= 0 && !predictions.some((p) => p.index === target)) {
      const prob = this.ctx.classes.prob(this.ctx.get("image_version"), target);
      const b = this.add(target, this.ctx.classes.name(target), prob, true);
      b.classList.add("cnnviz-class-extra");
      b.title = this.ctx.t("classes.extra_title", { name: this.ctx.classes.name(target) });
    }
  }

  private add(index: number, name: string, prob: number | null, active: boolean): HTMLButtonElement {
    const doc = this.ctx.doc;
    const b = button(doc, "", this.ctx.t("classes.explain", { name }), () => this.ctx.save("target_class", index));
    b.classList.add("cnnviz-class");
    b.classList.toggle("cnnviz-class-active", active);
    b.setAttribute("aria-pressed", String(active));
    b.dataset.index = String(index);
    const bar = el(doc, "span", "cnnviz-class-bar");
    bar.style.width = `${Math.round((prob ?? 0) * 100)}%`;
    b.append(el(doc, "span", "cnnviz-class-name", name), el(doc, "span", "cnnviz-class-prob", prob === null ? "–" : formatProb(prob)), bar);
    this.el.appendChild(b);
    return b;
  }
}
