/**
 * The message table (cnnviz_widgets/widgets/messages.json) and `t`: every key
 * the front end uses is in the table in both languages, every key of the
 * table is used (by the front end or by Python), placeholders agree between
 * the languages, `t` fills them in and falls back to English; the pure text
 * builders speak the language of the translator they are given.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { afterEach, describe, it } from "node:test";
import { ClassNames, classText, computingText, explainedText, figuresText } from "../src/explain";
import {
  LANGS,
  MESSAGES,
  type Params,
  getLang,
  interpolate,
  isLang,
  langOf,
  setLang,
  t,
  translate,
  translator,
} from "../src/i18n";
import { filterPageText } from "../src/kernel_pages";
import { StaticModel } from "../src/static_model";
import { WAITING_TEXT, statusLine } from "../src/status";
import { pageRange } from "../src/tiling";

const jsRoot = process.env.CNNVIZ_JS_ROOT ?? process.cwd();
const repoRoot = resolve(jsRoot, "..");

function files(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === "node_modules" || name === "__pycache__") continue;
    if (statSync(path).isDirectory()) out.push(...files(path, ext));
    else if (name.endsWith(ext)) out.push(path);
  }
  return out;
}

const sources = files(join(jsRoot, "src"), ".ts").map((path) => ({ path, text: readFileSync(path, "utf8") }));
const python = files(join(repoRoot, "cnnviz_widgets"), ".py").map((path) => ({ path, text: readFileSync(path, "utf8") }));
const keys = Object.keys(MESSAGES);
const namespaces = new Set(keys.map((k) => k.split(".")[0]));

/** Keys in `t("...")` calls (any translator named t: `t`, `ctx.t`, `this.t`, `defaultT`). */
function calledKeys(text: string): string[] {
  return [...text.matchAll(/\b(?:t|defaultT)\(\s*"([^"]+)"/g)].map((m) => m[1] ?? "");
}

/** String literals that look like keys of the table's namespaces ("features.order"), wherever they are. */
function keyLiterals(text: string): string[] {
  return [...text.matchAll(/"([a-z][a-z0-9_]*\.[a-z0-9_.]+)"/g)]
    .map((m) => m[1] ?? "")
    .filter((k) => namespaces.has(k.split(".")[0] ?? ""));
}

const placeholders = (text: string): string[] => [...text.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] ?? "").sort();

describe("message table", () => {
  it("has an English and a Chinese text for every key, namespaced by module", () => {
    assert.ok(keys.length > 100, `only ${keys.length} keys`);
    for (const key of keys) {
      assert.match(key, /^[a-z][a-z0-9_]*\.[a-z0-9_.]+$/, `key ${key}: namespace.name`);
      const entry = MESSAGES[key] ?? {};
      assert.deepEqual(Object.keys(entry).sort(), [...LANGS].sort(), `${key}: exactly the languages ${LANGS.join(", ")}`);
      for (const lang of LANGS) {
        const text = entry[lang];
        assert.equal(typeof text, "string", `${key}.${lang}`);
        assert.ok((text ?? "").trim().length > 0, `${key}.${lang} is empty`);
        assert.equal(text, (text ?? "").trim(), `${key}.${lang}: no leading or trailing spaces`);
      }
      assert.ok(!/[\u3400-\u9fff\uff08\uff09\uff0c\uff1a]/.test(entry.en ?? ""), `${key}.en holds Chinese characters`);
    }
  });

  it("has the same placeholders in English and Chinese", () => {
    for (const key of keys) {
      const entry = MESSAGES[key] ?? {};
      assert.deepEqual(placeholders(entry.zh ?? ""), placeholders(entry.en ?? ""), `${key}: placeholders differ`);
    }
  });

  it("holds every key the front end uses", () => {
    const used = new Map<string, string>();
    for (const { path, text } of sources) {
      for (const key of [...calledKeys(text), ...keyLiterals(text)]) used.set(key, relative(jsRoot, path));
    }
    assert.ok(used.size > 100, `found only ${used.size} keys in js/src`);
    const missing = [...used].filter(([key]) => !(key in MESSAGES)).map(([key, where]) => `${key} (${where})`);
    assert.deepEqual(missing, [], "keys used in js/src but not in messages.json");
  });

  it("has no key that nothing uses (front end or Python)", () => {
    const all = [...sources, ...python].map((f) => f.text).join("\n");
    const unused = keys.filter((key) => !all.includes(`"${key}"`));
    assert.deepEqual(unused, [], "keys in messages.json that neither js/src nor cnnviz_widgets uses");
  });

  it("is the only place of the Chinese texts: no Chinese characters in js/src", () => {
    for (const { path, text } of sources) {
      assert.ok(!/[\u3400-\u9fff]/.test(text), `${relative(jsRoot, path)} holds Chinese text: put it in messages.json`);
    }
  });
});

describe("t", () => {
  afterEach(() => setLang("en"));

  it("fills in {placeholders}, leaves unknown ones and takes numbers as they are", () => {
    assert.equal(interpolate("{a} of {b}", { a: 3, b: "x" }), "3 of x");
    assert.equal(interpolate("{a} and {missing}", { a: 1 }), "1 and {missing}");
    assert.equal(interpolate("no params {a}"), "no params {a}");
    assert.equal(t("zoom.position", { row: 3, col: 12 }), "row 3, col 12");
    assert.equal(translate("zh", "zoom.position", { row: 3, col: 12 }), "第 3 行，第 12 列");
    assert.equal(translate("zh", "pager.text", { page: 2, pages: 4, noun: "图", first: 256, last: 511, total: 1024 }),
      "第 2 / 4 页 · 图 256–511（共 1024）");
  });

  it("falls back to English for a text missing in a language, and to the key for an unknown key", () => {
    const table = MESSAGES as Record<string, Record<string, string>>;
    table["test.english_only"] = { en: "only {what} in English" };
    try {
      assert.equal(translate("zh", "test.english_only", { what: "this" }), "only this in English");
    } finally {
      delete table["test.english_only"];
    }
    assert.equal(translate("zh", "no.such_key"), "no.such_key");
    assert.equal(translate("en", "toString"), "toString", "no prototype lookups");
  });

  it("uses the module-level language set by setLang; a translator keeps its own", () => {
    assert.equal(getLang(), "en");
    assert.equal(t("tabs.features"), "Feature maps");
    const zh = translator("zh");
    const en = translator("en");
    assert.equal(setLang("zh"), "zh");
    assert.equal(t("tabs.features"), "特征图");
    assert.equal(en("tabs.features"), "Feature maps");
    setLang("en");
    assert.equal(zh("tabs.features"), "特征图");
    assert.equal(setLang("klingon"), "en");
  });

  it("reads language names as people write them", () => {
    assert.equal(langOf("zh"), "zh");
    assert.equal(langOf("zh-CN"), "zh");
    assert.equal(langOf("zh_CN.UTF-8"), "zh");
    assert.equal(langOf("EN"), "en");
    assert.equal(langOf("fr"), "en");
    assert.equal(langOf(null), "en");
    assert.equal(langOf(undefined), "en");
    assert.ok(isLang("zh") && isLang("en") && !isLang("zh-CN") && !isLang(3));
  });
});

describe("texts in the translator's language", () => {
  const zh = translator("zh");
  const en = translator("en");
  const idle = {
    requests: 0,
    bytesReceived: 0,
    lastRoundTripMs: null,
    pending: 1,
    cancellable: true,
    silent: true,
    progress: null,
    cancelling: false,
  };

  it("status line, computing notes, labels, figures, pages of filters", () => {
    assert.equal(statusLine(idle, zh)?.text, translate("zh", WAITING_TEXT));
    assert.equal(statusLine(idle, en)?.text, translate("en", WAITING_TEXT));
    assert.equal(statusLine({ ...idle, silent: false, cancelling: true }, zh)?.text, "正在取消…");
    assert.equal(computingText("GradCAM", "circle", "features.3", zh), "正在 features.3 层为 circle 计算 GradCAM…");
    assert.equal(computingText("EigenCAM", null, undefined, zh), "正在计算 EigenCAM（与类别无关）…");
    assert.equal(classText({ target: null, class_name: null, prob: null }, zh), "与类别无关");
    assert.equal(explainedText("GradCAM", { target: 2, class_name: null, prob: 0.5 }, "f", zh), "GradCAM · 类别 2 50.0% · f 层");
    assert.equal(new ClassNames(zh).name(7), "类别 7");
    assert.equal(figuresText({ deletion_auc: 0.25, average_drop: null }, { deletion_auc: "lower" }, zh), "删除 AUC 0.25（越低越好） · 平均下降 无");
    assert.equal(filterPageText(pageRange(48, 16, 1), 8, 6, zh), "第 2 / 3 页 · 滤波器 2–3（共 6 个）· 每个 8 个卷积核");
  });

  it("a saved page answers what it lacks in the page's language", async () => {
    const model = new StaticModel({ state: { lang: "zh" }, replies: {} });
    const got = new Promise<unknown>((done) => model.on("msg:custom", (msg) => done(msg)));
    model.send({ type: "request", id: 1, key: "features|0|x", kind: "features" });
    const msg = (await got) as { message: string };
    assert.equal(msg.message, translate("zh", "static.not_saved", { kind: "特征图" }));
  });

  it("every text with the params its placeholders ask for has no {braces} left", () => {
    for (const key of Object.keys(MESSAGES)) {
      for (const lang of LANGS) {
        const entry = MESSAGES[key] ?? {};
        const params: Params = Object.fromEntries(placeholders(entry[lang] ?? "").map((p) => [p, "x"]));
        assert.ok(!/\{[A-Za-z_]+\}/.test(translate(lang, key, params)), `${key}.${lang}`);
      }
    }
  });
});
