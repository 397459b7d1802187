/** Saliency maps: method and opacity; the top classes to explain. */

import { button, downloadCanvas, el, select, syncSelect } from "../dom";
import { OverlayView, methodOptions, opacitySlider } from "./overlay_view";
import { chosenClass } from "./predictions";
import { type Tab, type TabContext, sectionTab } from "./tab";

export function createSaliencyTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const panel = ctx.panel("saliency");
  const controls = el(doc, "div", "cnnviz-controls");
  const method = select(doc, "Method", methodOptions(ctx.get("saliency_methods")), ctx.get("saliency_method"), (v) =>
    ctx.save("saliency_method", v),
  );
  const opacity = opacitySlider(ctx);
  const png = button(doc, "PNG", "Save the saliency map as PNG", () => downloadCanvas(view.section.grid.canvas, "saliency.png"));
  controls.append(method.wrap, opacity.wrap, png);
  panel.append(controls);
  const view = new OverlayView(ctx, panel, "saliency", () => refresh());

  function refresh(): void {
    syncSelect(method, methodOptions(ctx.get("saliency_methods")), ctx.get("saliency_method"));
    opacity.sync();
    const target = chosenClass(ctx.get("target_class"), view.classes.load());
    if (target === null) return;
    const m = ctx.get("saliency_method");
    const entry = ctx.session.request("saliency", { version: ctx.get("image_version"), method: m, target });
    if (entry) view.draw(entry, [`${entry.content.method} overlay`, `${entry.content.method} map`]);
    else view.message.show(`computing ${m} saliency for class ${target}…`);
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
