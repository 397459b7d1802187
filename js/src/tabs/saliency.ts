/** Saliency maps: method and opacity; the top classes to explain; each map captioned with its class. */

import { button, el, select, syncSelect } from "../dom";
import { computingText, explainedText } from "../explain";
import { requestKey } from "../keys";
import { OverlayView, methodOptions, opacitySlider } from "./overlay_view";
import { chosenClass } from "./predictions";
import { type Tab, type TabContext, cancelledNote, sectionTab } from "./tab";

export function createSaliencyTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("saliency");
  const controls = el(doc, "div", "cnnviz-controls");
  const method = select(doc, t("common.method"), methodOptions(ctx.get("saliency_methods")), ctx.get("saliency_method"), (v) =>
    ctx.save("saliency_method", v),
  );
  const opacity = opacitySlider(ctx);
  const png = button(doc, t("common.png"), t("saliency.png_title"), () => view.download("saliency"));
  controls.append(method.wrap, opacity.wrap, png);
  panel.append(controls);
  const view = new OverlayView(ctx, panel, t("saliency.view_label"), () => refresh());

  function refresh(): void {
    syncSelect(method, methodOptions(ctx.get("saliency_methods")), ctx.get("saliency_method"));
    opacity.sync();
    const predictions = view.classes.load();
    const target = chosenClass(ctx.get("target_class"), predictions);
    if (target === null) {
      // predictions came and are empty: a detector that finds no object in this image
      view.pending(t(predictions === null ? "common.waiting_predictions" : "saliency.no_objects"));
      return;
    }
    const m = ctx.get("saliency_method");
    const p = { version: ctx.get("image_version"), method: m, target };
    const entry = ctx.session.request("saliency", p);
    if (entry) {
      const c = entry.content;
      const explained = { ...c, target: c.target ?? target, class_name: c.class_name ?? ctx.classes.name(c.target ?? target) };
      view.draw(entry, { caption: explainedText(c.method, explained, undefined, t), file: [c.method, explained.class_name] });
      return;
    }
    const text = computingText(t("saliency.method_name", { method: m }), ctx.classes.name(target), undefined, t);
    view.pending(text, cancelledNote(ctx, "saliency", requestKey("saliency", p), text, refresh) ?? undefined);
  }

  return sectionTab({
    el: panel,
    kinds: ["predictions", "saliency"],
    traits: ["saliency_methods", "saliency_method", "target_class", "opacity", "cam_cmap"],
    refresh,
    section: view.section,
    message: view.message,
  });
}
