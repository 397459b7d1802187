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
 */

import { button, el } from "./dom";
import { type RequestKind, SHOWN_KINDS, type ShownKind } from "./messages";
import { type Clock, Session } from "./session";
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
  const doc = host.ownerDocument;
  const view = doc.defaultView;
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
  progress.setAttribute("aria-label", "Progress");
  const cancel = button(doc, "Cancel", "Cancel the running computation", () => session.cancel());
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
    const line = statusLine(s);
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
    for (const t of tabs) {
      const grid = t.tab.el.querySelector<HTMLCanvasElement>("canvas.cnnviz-grid");
      const empty = !grid || grid.hidden;
      const waiting = t.kinds.some((k) => session.waitingFor(k));
      const show = silent && t.kinds.length > 0 && (empty || waiting);
      let hint = t.tab.el.querySelector<HTMLElement>(".cnnviz-silent-hint");
      if (!hint && show) {
        hint = el(doc, "div", "cnnviz-silent-hint", RUN_AGAIN_HINT);
        hint.setAttribute("role", "status");
        t.tab.el.prepend(hint);
      }
      if (hint) hint.hidden = !show;
    }
  }

  title.textContent = get(model, "title");
  showError(get(model, "error"));

  // ---------- session and tabs ----------
  const tabs: { name: string; tab: Tab; button: HTMLButtonElement; kinds: readonly RequestKind[] }[] = [];
  const owners = (kind: RequestKind): Tab[] => tabs.map((t) => t.tab).filter((t) => t.kinds.includes(kind));
  /** Run a tab's drawing; a payload it cannot show goes to the error box. */
  const safely = (what: string, draw: () => void): void => {
    try {
      draw();
    } catch (err) {
      showError(`Cannot show ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
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
      reply: (kind, key) => safely(kind, () => owners(kind).forEach((t) => t.reply(kind, key))),
      error: (kind, key, message) => {
        const found = owners(kind);
        if (found.length === 0) showError(message);
        for (const t of found) t.error(kind, key, message);
      },
      item: (item) => safely("an optimised image", () => tabs.forEach((t) => t.tab.item?.(item))),
      progress: (p) => owners(p.kind).forEach((t) => t.progress?.(p)),
      changed: showState,
      invalid: showError,
    },
  });
  cleanups.push(() => session.destroy());
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

  const zoom = new ZoomBox(root);
  cleanups.push(() => zoom.destroy());
  const detail = new Detail(doc);
  const ctx = new ExplorerContext(model, root, host, session, zoom, detail, showError);
  ctx.readImage();

  let current: Tab | null = null;
  const refresh = (tab: Tab | null): void => {
    if (tab) safely(`the ${tabs.find((t) => t.tab === tab)?.name ?? ""} view`, () => tab.refresh());
  };
  function selectTab(name: string, save: boolean): void {
    const chosen = tabs.find((t) => t.name === name) ?? tabs[0];
    current = chosen?.tab ?? null;
    for (const t of tabs) {
      const on = t === chosen;
      t.tab.el.hidden = !on;
      t.button.setAttribute("aria-selected", String(on));
      t.button.classList.toggle("cnnviz-tab-active", on);
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
    const b = el(doc, "button", "cnnviz-tab", spec.title);
    b.type = "button";
    b.setAttribute("role", "tab");
    b.dataset.tab = spec.name;
    b.addEventListener("click", () => selectTab(spec.name, true));
    tabBar.appendChild(b);
    root.appendChild(tab.el);
    tabs.push({ name: spec.name, tab, button: b, kinds: tab.kinds });
    cleanups.push(() => tab.destroy());
  }
  root.appendChild(detail.el); // below the panels

  // ---------- messages and trait changes ----------
  const onCustom = (msg: unknown, buffers: unknown): void => session.receive(msg, buffers);
  model.on("msg:custom", onCustom);
  cleanups.push(() => model.off("msg:custom", onCustom));
  for (const kind of SHOWN_KINDS) listen(`change:shown_${kind}`, () => syncShown());

  const drawnFrom = new Set<TraitName>(tabs.flatMap((t) => t.tab.traits));
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
  listen("change:error", () => showError(get(model, "error")));
  onTrait("tab", () => {
    const name = get(model, "tab");
    if (tabs.find((t) => t.tab === current)?.name !== name) selectTab(name, false);
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
      for (const t of tabs) t.tab.resize();
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

  return () => {
    for (const c of cleanups.reverse()) c();
    root.remove();
  };
}
