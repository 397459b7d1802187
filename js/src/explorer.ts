/**
 * The explorer view: kernels, feature maps, class activation maps, saliency,
 * activation maximization and a drawing pad, as tabs over one model and one
 * input image (tabs/registry.ts). Focused widgets show a subset of the tabs
 * (trait `views`).
 *
 * This module is the shell: header, tab bar, status line (progress with
 * Python's estimate, Cancel while a request waits, a silent kernel), error
 * box, and the hint in a tab left empty by a silent kernel; it routes what
 * the session hears to the tabs and trait changes to the tab on screen. Data comes by custom message or by
 * the `shown_<kind>` traits (session.ts); colouring is the tabs' own, so
 * colormap, colour scale and order changes never ask Python for anything.
 *
 * Every text is in the language of the `lang` trait (i18n.ts). A change of
 * `lang` builds the shell and its tabs again in the new language; the
 * session (its cache and the requests in flight) and every trait (tab,
 * layer, method, class, colours) stay, so nothing is asked of Python again.
 */

import { button, el } from "./dom";
import { kindName } from "./explain";
import { langOf, translator } from "./i18n";
import { type RequestKind, SHOWN_KINDS, type ShownKind } from "./messages";
import { type Clock, Session, type SessionEvents } from "./session";
import { RUN_AGAIN_HINT, type SessionState, statusLine } from "./status";
import { guardKeys } from "./keys_guard";
import { ensureStyles } from "./styles";
import { ExplorerContext, type ExplorerModel } from "./tabs/context";
import { Detail } from "./tabs/detail";
import { tabsFor } from "./tabs/registry";
import type { Tab } from "./tabs/tab";
import { type TraitName, get } from "./traits";
import { ZoomBox } from "./zoom_box";

export type { ExplorerTraits, LayerInfo } from "./traits";

/** Timers of the page (none without a window: then the silent-kernel notice never shows). */
function windowClock(view: Window | null): Clock {
  return {
    now: () => performance.now(),
    setTimeout: (fn, ms) => view?.setTimeout(fn, ms) ?? null,
    clearTimeout: (handle) => {
      if (typeof handle === "number") view?.clearTimeout(handle);
    },
  };
}

/** Render the explorer into `host`; returns the cleanup function. */
export function renderExplorer(model: ExplorerModel, host: HTMLElement): () => void {
  const view = host.ownerDocument.defaultView;
  /** The shell on screen: it takes what the session hears. */
  const hub: { events: SessionEvents | null } = { events: null };
  const session = new Session({
    send: (msg, buffers) => {
      try {
        model.send(msg, undefined, buffers);
      } catch {
        // No kernel to send to (a saved page): the request stays unanswered, the status says so.
      }
    },
    clock: windowClock(view),
    firstId: 1 + Math.floor(Math.random() * 2 ** 40),
    events: {
      reply: (kind, key) => hub.events?.reply(kind, key),
      error: (kind, key, message) => hub.events?.error(kind, key, message),
      item: (item) => hub.events?.item(item),
      progress: (p) => hub.events?.progress?.(p),
      changed: (s) => hub.events?.changed(s),
      invalid: (message) => hub.events?.invalid(message),
    },
  });
  const seen = new Map<ShownKind, unknown>();
  /**
   * Hand the session the `shown_<kind>` traits that changed. Called before any
   * drawing a trait change causes: traits set together in Python arrive
   * together, and the data for a new layer or image may be among them.
   */
  const syncShown = (seed = false): void => {
    for (const kind of SHOWN_KINDS) {
      const value = model.get(`shown_${kind}`);
      if (seen.get(kind) === value) continue;
      seen.set(kind, value);
      session.shown(kind, value, seed);
    }
  };
  // What is on screen lives in the widget state: the first paint needs no request.
  syncShown(true);
  const onCustom = (msg: unknown, buffers: unknown): void => session.receive(msg, buffers);
  const onShown = (): void => syncShown();
  model.on("msg:custom", onCustom);
  for (const kind of SHOWN_KINDS) model.on(`change:shown_${kind}`, onShown);

  let teardown = renderShell(model, host, session, hub, syncShown);
  const onLang = (): void => {
    teardown();
    teardown = renderShell(model, host, session, hub, syncShown);
  };
  model.on("change:lang", onLang);
  return () => {
    model.off("change:lang", onLang);
    model.off("msg:custom", onCustom);
    for (const kind of SHOWN_KINDS) model.off(`change:shown_${kind}`, onShown);
    teardown();
    session.destroy();
  };
}

/**
 * The shell and its tabs, in the language of the `lang` trait, over a
 * session that outlives it; returns the cleanup function.
 */
function renderShell(
  model: ExplorerModel,
  host: HTMLElement,
  session: Session,
  hub: { events: SessionEvents | null },
  syncShown: () => void,
): () => void {
  const doc = host.ownerDocument;
  const view = doc.defaultView;
  const t = translator(get(model, "lang"));
  ensureStyles(host);
  const cleanups: (() => void)[] = [];
  const listen = (name: string, cb: () => void): void => {
    model.on(name, cb);
    cleanups.push(() => model.off(name, cb));
  };
  /** A trait change that draws: first take in the data that came with it. */
  const onTrait = (name: string, cb: () => void): void =>
    listen(`change:${name}`, () => {
      syncShown();
      cb();
    });

  const root = el(doc, "div", "cnnviz-root cnnviz-explorer");
  root.lang = langOf(get(model, "lang")) === "zh" ? "zh-Hans" : "en";
  root.dataset.requests = "0";
  // Keys typed in the widget (arrow keys on a slider, digits in a field) are the widget's,
  // not JupyterLab's notebook shortcuts.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("data-p-suppress-shortcuts", "true");
  host.appendChild(root);
  const header = el(doc, "div", "cnnviz-header");
  const title = el(doc, "div", "cnnviz-title");
  header.append(title);
  const errorBox = el(doc, "div", "cnnviz-message cnnviz-error");
  errorBox.setAttribute("role", "alert");
  errorBox.hidden = true;
  const status = el(doc, "div", "cnnviz-status");
  status.hidden = true;
  const statusText = el(doc, "span", "cnnviz-status-text");
  const progress = el(doc, "progress", "cnnviz-progress");
  progress.setAttribute("aria-label", t("explorer.progress"));
  const cancel = button(doc, t("explorer.cancel"), t("explorer.cancel_title"), () => session.cancel());
  cancel.disabled = true;
  status.append(statusText, progress, cancel);
  guardKeys(doc);
  const tabBar = el(doc, "div", "cnnviz-tabs");
  tabBar.setAttribute("role", "tablist");
  root.append(header, tabBar, status, errorBox);

  function showError(text: string): void {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }
  function showState(s: Readonly<SessionState>): void {
    root.dataset.requests = String(s.requests);
    root.dataset.bytesReceived = String(s.bytesReceived);
    root.dataset.pending = String(s.pending);
    if (s.lastRoundTripMs !== null) root.dataset.lastRoundTripMs = s.lastRoundTripMs.toFixed(2);
    if (s.silent) root.dataset.kernelSilent = "true";
    else delete root.dataset.kernelSilent;
    cancel.disabled = !s.cancellable;
    showHint(s.silent);
    const line = statusLine(s, t);
    status.hidden = line === null;
    if (!line) {
      statusText.textContent = "";
      return;
    }
    statusText.textContent = line.text;
    progress.hidden = !line.bar;
    if (line.total === null) progress.removeAttribute("value"); // indeterminate
    else {
      progress.max = line.total;
      progress.value = line.done;
    }
  }
  /**
   * A silent kernel leaves a tab empty, or showing older data than asked
   * for (a tab opened after a kernel restart): say what to do there.
   */
  let silent = false;
  function showHint(now: boolean): void {
    silent = now;
    for (const o of tabs) {
      const grid = o.tab.el.querySelector<HTMLCanvasElement>("canvas.cnnviz-grid");
      const empty = !grid || grid.hidden;
      const waiting = o.kinds.some((k) => session.waitingFor(k));
      const show = silent && o.kinds.length > 0 && (empty || waiting);
      let hint = o.tab.el.querySelector<HTMLElement>(".cnnviz-silent-hint");
      if (!hint && show) {
        hint = el(doc, "div", "cnnviz-silent-hint", t(RUN_AGAIN_HINT));
        hint.setAttribute("role", "status");
        o.tab.el.prepend(hint);
      }
      if (hint) hint.hidden = !show;
    }
  }

  title.textContent = get(model, "title");
  showError(get(model, "error"));

  // ---------- session and tabs ----------
  const tabs: { name: string; title: string; tab: Tab; button: HTMLButtonElement; kinds: readonly RequestKind[] }[] = [];
  const owners = (kind: RequestKind): Tab[] => tabs.map((o) => o.tab).filter((o) => o.kinds.includes(kind));
  /** Run a tab's drawing; a payload it cannot show goes to the error box. */
  const safely = (what: string, draw: () => void): void => {
    try {
      draw();
    } catch (err) {
      showError(t("explorer.cannot_show", { what, error: err instanceof Error ? err.message : String(err) }));
    }
  };
  const events: SessionEvents = {
    reply: (kind, key) => safely(kindName(kind, t), () => owners(kind).forEach((o) => o.reply(kind, key))),
    error: (kind, key, message) => {
      const found = owners(kind);
      if (found.length === 0) showError(message);
      for (const o of found) o.error(kind, key, message);
    },
    item: (item) => safely(t("explorer.an_optimised_image"), () => tabs.forEach((o) => o.tab.item?.(item))),
    progress: (p) => owners(p.kind).forEach((o) => o.progress?.(p)),
    changed: showState,
    invalid: showError,
  };
  hub.events = events;
  cleanups.push(() => {
    if (hub.events === events) hub.events = null;
  });

  const zoom = new ZoomBox(root, t);
  cleanups.push(() => zoom.destroy());
  const detail = new Detail(doc, t);
  const ctx = new ExplorerContext(model, root, host, session, zoom, detail, showError, t);
  ctx.readImage();

  let current: Tab | null = null;
  const refresh = (tab: Tab | null): void => {
    if (tab) safely(t("explorer.the_view", { name: tabs.find((o) => o.tab === tab)?.title ?? "" }), () => tab.refresh());
  };
  function selectTab(name: string, save: boolean): void {
    const chosen = tabs.find((o) => o.name === name) ?? tabs[0];
    current = chosen?.tab ?? null;
    for (const o of tabs) {
      const on = o === chosen;
      o.tab.el.hidden = !on;
      o.button.setAttribute("aria-selected", String(on));
      o.button.classList.toggle("cnnviz-tab-active", on);
    }
    tabBar.hidden = tabs.length <= 1;
    zoom.hide();
    detail.hide(); // a pinned tile belongs to the view it was pinned in
    if (save && chosen && get(model, "tab") !== chosen.name) ctx.save("tab", chosen.name);
    refresh(current);
    showHint(silent);
  }
  for (const spec of tabsFor(get(model, "views"))) {
    const tab = spec.create(ctx);
    const b = el(doc, "button", "cnnviz-tab", t(spec.title));
    b.type = "button";
    b.setAttribute("role", "tab");
    b.dataset.tab = spec.name;
    b.addEventListener("click", () => selectTab(spec.name, true));
    tabBar.appendChild(b);
    root.appendChild(tab.el);
    tabs.push({ name: spec.name, title: t(spec.title), tab, button: b, kinds: tab.kinds });
    cleanups.push(() => tab.destroy());
  }
  root.appendChild(detail.el); // below the panels

  // ---------- trait changes ----------
  const drawnFrom = new Set<TraitName>(tabs.flatMap((o) => o.tab.traits));
  for (const name of drawnFrom) {
    onTrait(name, () => {
      if (current?.traits.includes(name)) refresh(current);
    });
  }
  const showLayerNames = (): void => {
    root.dataset.layerNames = JSON.stringify(get(model, "layers").map((l) => l.name));
  };
  listen("change:layers", showLayerNames);
  listen("change:title", () => (title.textContent = get(model, "title")));
  listen("change:error", () => {
    showError(get(model, "error"));
    if (get(model, "error")) session.imageRefused();
  });
  onTrait("tab", () => {
    const name = get(model, "tab");
    if (tabs.find((o) => o.tab === current)?.name !== name) selectTab(name, false);
  });
  onTrait("image_version", () => {
    ctx.readImage();
    session.imageChanged(get(model, "image_version"));
    refresh(current);
  });
  onTrait("input_image", () => {
    ctx.readImage();
    refresh(current);
  });

  // ---------- resize ----------
  let frame = 0;
  const onResize = (): void => {
    if (frame || !view) return;
    frame = view.requestAnimationFrame(() => {
      frame = 0;
      for (const o of tabs) o.tab.resize();
    });
  };
  const observer = view && "ResizeObserver" in view ? new view.ResizeObserver(onResize) : null;
  observer?.observe(root);
  cleanups.push(() => {
    observer?.disconnect();
    if (frame && view) view.cancelAnimationFrame(frame);
  });

  showLayerNames();
  selectTab(get(model, "tab"), false);
  showState(session.state); // a shell built again (new language) shows what is still on its way

  return () => {
    for (const c of cleanups.reverse()) c();
    root.remove();
  };
}
