/**
 * Keys typed into the widget's controls belong to the widget.
 *
 * JupyterLab honours `data-lm-suppress-shortcuts` on the widget's root;
 * Notebook 7 does not: its keydown listener on the document (capture phase)
 * takes the arrow keys and stops them before they reach an output, so a
 * focused slider never sees them. One listener on the window, in the capture
 * phase, runs before any listener on the document: a key for one of the
 * widget's controls is handled there (sliders: `keepKeys`) or left to the
 * control's default action (text and number fields, selects, buttons), and
 * goes no further. Keys with Ctrl, Alt or Meta, Escape and Tab still reach
 * the host (save, leave the output, move the focus).
 */

type KeyHandler = (event: KeyboardEvent) => boolean;

const handlers = new WeakMap<EventTarget, KeyHandler>();
const windows = new WeakSet<Window>();
const CONTROLS = new Set(["INPUT", "SELECT", "TEXTAREA", "BUTTON"]);

/** Whether a key pressed in one of the widget's controls is the widget's (not the host's). */
export function widgetKey(e: { key: string; ctrlKey: boolean; metaKey: boolean; altKey: boolean }): boolean {
  return !e.ctrlKey && !e.metaKey && !e.altKey && e.key !== "Escape" && e.key !== "Tab";
}

function onKey(event: KeyboardEvent): void {
  const target = event.composedPath()[0];
  if (!(target instanceof Element) || !CONTROLS.has(target.tagName) || !target.closest(".cnnviz-root")) return;
  if (!widgetKey(event)) return;
  if (handlers.get(target)?.(event)) event.preventDefault();
  event.stopPropagation();
}

/** Listen (once per window) for keys typed into the widget's controls in `doc`. */
export function guardKeys(doc: Document): void {
  const view = doc.defaultView;
  if (!view || windows.has(view)) return;
  windows.add(view);
  view.addEventListener("keydown", onKey, true);
}

/**
 * Handle the keys of `control` in the window's listener: `handle` returns
 * true when it used the key (its default action is then prevented).
 */
export function keepKeys(control: HTMLElement, handle: KeyHandler): void {
  handlers.set(control, handle);
  guardKeys(control.ownerDocument);
}
