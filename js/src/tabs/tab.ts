/**
 * What every tab of the explorer is, and what it is given (the context).
 * A tab draws from the traits and the session's cache only: it never sends
 * a message itself.
 */

import type { MessageAction } from "../dom";
import type { GridHover } from "../grid_view";
import type { RgbStack } from "../decode";
import type { ActmaxItem, RequestKind } from "../messages";
import type { ClassNames } from "../explain";
import type { Translate } from "../i18n";
import type { Session } from "../session";
import { CANCELLED, type Progress } from "../status";
import type { ExplorerTraits, TraitName } from "../traits";
import type { ZoomBox } from "../zoom_box";

export interface Tab {
  /** The tab's panel (`.cnnviz-panel-<name>`). */
  readonly el: HTMLElement;
  /** Request kinds whose replies and errors this tab shows. */
  readonly kinds: readonly RequestKind[];
  /** Traits whose change redraws this tab (while it is shown). */
  readonly traits: readonly TraitName[];
  /** Sync the controls with the traits and draw what is here; ask for what is missing. */
  refresh(): void;
  /** The data of `key` (the key wanted for `kind`) arrived. */
  reply(kind: RequestKind, key: string): void;
  /** The request for `key` (the key wanted for `kind`) failed. */
  error(kind: RequestKind, key: string, message: string): void;
  /** One image of an activation-maximization run. */
  item?(item: ActmaxItem): void;
  /** Progress of a request of one of `kinds` (its text carries Python's estimate). */
  progress?(progress: Readonly<Progress>): void;
  /** The widget's width changed. */
  resize(): void;
  destroy(): void;
}

export interface TabContext {
  readonly doc: Document;
  /** Every text a tab shows comes from here: the message table in the widget's language. */
  readonly t: Translate;
  readonly session: Session;
  readonly zoom: ZoomBox;
  /** Class names and probabilities learnt from the replies. */
  readonly classes: ClassNames;
  get<K extends TraitName>(name: K): ExplorerTraits[K];
  /** Set a trait and send it to Python. */
  save<K extends TraitName>(name: K, value: ExplorerTraits[K]): void;
  /**
   * Set a display-only trait (colormap, colour scale, order, opacity): no
   * message to the kernel; it reaches Python with the next saved change.
   */
  local<K extends TraitName>(name: K, value: ExplorerTraits[K]): void;
  /** The panel element of tab `name`. */
  panel(name: string): HTMLElement;
  /** The input image, or null. */
  image(): RgbStack | null;
  /** The colour table named `name` (gray when unknown). */
  colorTable(name: string): Uint8Array;
  /** [value, text] of every colour table. */
  colormapOptions(): [string, string][];
  /** Width available to `node`, CSS pixels. */
  width(node: HTMLElement): number;
  /** A slider moved: the next `markPaint` measures from now to the painted frame. */
  scrubbed(): void;
  /** Record how long a draw of `kind` took (started at `t0`, performance.now()). */
  markPaint(kind: string, t0: number): void;
  /** Pin a tile into the detail panel. */
  pin(hover: GridHover): void;
  showError(text: string): void;
}

export type TabFactory = (ctx: TabContext) => Tab;

/** A cancelled request's note: what was cancelled, and a button that asks again (`again` redraws). */
export function cancelledNote(
  ctx: TabContext,
  kind: RequestKind,
  key: string,
  text: string,
  again: () => void,
): { text: string; action: MessageAction } | null {
  if (!ctx.session.isCancelled(kind, key)) return null;
  const run = (): void => {
    ctx.session.retry(kind);
    again();
  };
  return {
    text: ctx.t("tab.cancelled", { what: text.replace(/…$/, "") }),
    action: { label: ctx.t("tab.compute_again"), run },
  };
}

/** Say that the data of `key` is on its way (`text`), or that its request was cancelled. */
export function showPending(
  ctx: TabContext,
  message: { show(text: string, action?: MessageAction): void },
  kind: RequestKind,
  key: string,
  text: string,
  again: () => void,
): void {
  const note = cancelledNote(ctx, kind, key, text, again);
  if (note) message.show(note.text, note.action);
  else message.show(text);
}

/**
 * The usual tab: drawn by `refresh` into one grid section, redrawn when its
 * data arrives while it is on screen, its errors shown on one message line.
 */
export function sectionTab(parts: {
  el: HTMLElement;
  kinds: readonly RequestKind[];
  traits: readonly TraitName[];
  refresh: () => void;
  section: { resize(): void; destroy(): void };
  message: { error(text: string): void };
}): Tab {
  const { el, kinds, traits, refresh, section, message } = parts;
  return {
    el,
    kinds,
    traits,
    refresh,
    reply: () => {
      if (!el.hidden) refresh();
    },
    error: (_kind, _key, text) => {
      if (text === CANCELLED) refresh(); // says so, with a button that asks again
      else message.error(text);
    },
    resize: () => section.resize(),
    destroy: () => section.destroy(),
  };
}
