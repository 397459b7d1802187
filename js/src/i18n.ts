/**
 * Every string a person reads in the widgets, in English and Simplified
 * Chinese: one table (`cnnviz_widgets/widgets/messages.json`, which Python
 * reads too) bundled into the front end by esbuild.
 *
 *   t("pager.next", { noun: "maps" })      the module-level language (setLang)
 *   const tr = translator(model.get("lang")); tr("features.order")
 *
 * A widget uses its own translator (`ctx.t` in the tabs), made from its
 * `lang` trait, so two widgets in different languages can share a page; the
 * module-level `t` is the default of functions that take a translator
 * (English unless `setLang` says otherwise). Keys are namespaced by module
 * (`features.order`); `{name}` placeholders are filled from `params`; a
 * text missing in a language falls back to English, an unknown key to the
 * key itself. Numbers are formatted by the caller (format.ts), the same in
 * every language.
 *
 * Pure module: no DOM access.
 */

import TABLE from "../../cnnviz_widgets/widgets/messages.json";

/** The languages of the table; the first is the default and the fallback. */
export const LANGS = ["en", "zh"] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = "en";

/** A key of the message table (checked by the compiler). */
export type MessageKey = keyof typeof TABLE;
export type Params = Readonly<Record<string, string | number>>;
export type Translate = (key: MessageKey, params?: Params) => string;

/** The table: key -> language -> text. */
export const MESSAGES: Readonly<Record<string, Readonly<Partial<Record<string, string>>>>> = TABLE;

/** Whether `value` names a language of the table. */
export function isLang(value: unknown): value is Lang {
  return typeof value === "string" && (LANGS as readonly string[]).includes(value);
}

/** The language `value` names ("zh", "zh-CN", "zh_CN" -> "zh"), or the default. */
export function langOf(value: unknown): Lang {
  if (typeof value !== "string") return DEFAULT_LANG;
  const code = value.trim().toLowerCase().split(/[-_.@]/)[0];
  return isLang(code) ? code : DEFAULT_LANG;
}

/** `text` with every `{name}` replaced by `params[name]` (unknown names are left as they are). */
export function interpolate(text: string, params?: Params): string {
  if (!params) return text;
  return text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/** The text of `key` in `lang` (else English, else the key itself), with `params` filled in. */
export function translate(lang: Lang, key: string, params?: Params): string {
  const entry = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : undefined;
  const text = entry?.[lang] ?? entry?.[DEFAULT_LANG] ?? key;
  return interpolate(text, params);
}

/** A translator for one language (anything `langOf` reads, e.g. a widget's `lang` trait). */
export function translator(lang: unknown): Translate {
  const l = langOf(lang);
  return (key, params) => translate(l, key, params);
}

let current: Lang = DEFAULT_LANG;

/** Set the module-level language of `t`; returns the language set. */
export function setLang(lang: unknown): Lang {
  current = langOf(lang);
  return current;
}

/** The module-level language of `t`. */
export function getLang(): Lang {
  return current;
}

/** Translate in the module-level language (see `setLang`). */
export const t: Translate = (key, params) => translate(current, key, params);
