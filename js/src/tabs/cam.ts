/**
 * Class activation maps: method, depth (CAM layer), opacity and colormap;
 * the top classes to explain; faithfulness figures of the map shown. A
 * class-agnostic method asks with target null (key `*`) and says so. Each
 * map is captioned with what it explains (method, class and probability,
 * layer); the figures belong to one (image, method, class, layer) and are
 * shown only beside that map.
 */

import { button, el, MessageLine } from "../dom";
import type { Entry } from "../entry";
import { computingText, explainedText, figuresText } from "../explain";
import { requestKey } from "../keys";
import type { Prediction, RequestKind, RequestParams } from "../messages";
import { CANCELLED } from "../status";
import { OverlayView, camControls, opacitySlider } from "./overlay_view";
import { chosenClass, isClassAgnostic } from "./predictions";
import { type Tab, type TabContext, cancelledNote, sectionTab, showPending } from "./tab";

export function createCamTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("cam");
  const controls = el(doc, "div", "cnnviz-controls");
  const cams = camControls(ctx);
  const layer = cams.layer;
  const opacity = opacitySlider(ctx);
  const faithButton = button(doc, t("cam.faithfulness"), t("cam.faithfulness_title"), () => askMetrics());
  const png = button(doc, t("common.png"), t("cam.png_title"), () => view.download("cam"));
  controls.append(cams.method, cams.depth, cams.depthName, opacity.wrap, cams.cmap, faithButton, png);
  panel.append(controls);
  const note = new MessageLine(doc, "cnnviz-meta cnnviz-cam-note");
  const faith = new MessageLine(doc, "cnnviz-meta cnnviz-faith");
  const view = new OverlayView(ctx, panel, t("cam.view_label"), () => refresh(), [note.el, faith.el]);
  /** The metrics key asked for by the button, and the error it got. */
  let asked: string | null = null;
  let metricsError: { key: string; message: string } | null = null;
  let predictions: Prediction[] | null = null;

  /** What to ask for now; null while the class to explain is not known. */
  function params(): RequestParams["cam"] | null {
    const m = ctx.get("cam_method");
    const base = { version: ctx.get("image_version"), method: m, layer: layer() };
    if (isClassAgnostic(m, ctx.get("class_agnostic_methods"))) return { ...base, target: null };
    const target = chosenClass(ctx.get("target_class"), predictions);
    return target === null ? null : { ...base, target };
  }

  /** The figures of exactly this map (image, method, class, layer); nothing for another one. */
  function showMetrics(p: RequestParams["metrics"] | null): void {
    const key = p ? requestKey("metrics", p) : null;
    const entry = key ? ctx.session.entry("metrics", key) : null;
    faith.el.dataset.key = key ?? "";
    if (entry) faith.show(t("cam.figures", { figures: figuresText(entry.content.figures, entry.content.better, t) }));
    else if (key !== null && metricsError?.key === key) faith.error(metricsError.message);
    else if (key !== null && key === asked) showPending(ctx, faith, "metrics", key, t("cam.computing_faithfulness"), askMetrics);
    else faith.show("");
  }

  function askMetrics(): void {
    const p = params();
    if (!p) return;
    asked = requestKey("metrics", p);
    metricsError = null;
    ctx.session.retry("metrics");
    ctx.session.request("metrics", p);
    showMetrics(p);
  }

  function draw(entry: Entry<"cam">, p: RequestParams["cam"]): void {
    const c = entry.content;
    const target = c.target ?? p.target;
    const explained = { ...c, target, class_name: c.class_name ?? (target === null ? null : ctx.classes.name(target)) };
    const at = c.layer ?? p.layer;
    view.draw(entry, {
      caption: explainedText(c.method, explained, at, t),
      file: [c.method, explained.class_name ?? "class-agnostic", at],
    });
  }

  function refresh(): void {
    cams.sync();
    opacity.sync();
    predictions = view.classes.load();
    const p = params();
    const m = ctx.get("cam_method");
    note.show(p && p.target === null ? t("cam.agnostic_note", { method: m }) : "");
    showMetrics(p);
    if (!p) {
      view.pending(t("common.waiting_predictions"));
      return;
    }
    const entry = ctx.session.request("cam", p);
    if (entry) {
      draw(entry, p);
      return;
    }
    const text = computingText(m, p.target === null ? null : ctx.classes.name(p.target), p.layer, t);
    view.pending(text, cancelledNote(ctx, "cam", requestKey("cam", p), text, refresh) ?? undefined);
  }

  return {
    ...sectionTab({
      el: panel,
      kinds: ["predictions", "cam", "metrics"],
      traits: ["cam_methods", "cam_method", "cam_layers", "cam_layer", "class_agnostic_methods", "target_class", "opacity", "cam_cmap", "colormaps"],
      refresh,
      section: view.section,
      message: view.message,
    }),
    error: (kind: RequestKind, key: string, message: string) => {
      if (message === CANCELLED) refresh();
      else if (kind !== "metrics") view.message.error(message);
      else {
        metricsError = { key, message };
        faith.error(message);
      }
    },
  };
}
