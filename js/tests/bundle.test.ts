/**
 * The widget entry bundles into one self-contained ES module whose default
 * export is anywidget's { render } object, and importing it touches no DOM
 * (node has none).
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import * as esbuild from "esbuild";

const jsRoot = process.env.CNNVIZ_JS_ROOT ?? process.cwd();

describe("widget bundle", () => {
  it("is one ES module with no imports and an anywidget default export", async () => {
    const result = await esbuild.build({
      absWorkingDir: jsRoot,
      entryPoints: [resolve(jsRoot, "src/index.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2020",
      minify: true,
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const outputs = Object.values(result.metafile.outputs);
    assert.equal(outputs.length, 1);
    assert.deepEqual(outputs[0]?.imports, []);
    assert.deepEqual(outputs[0]?.exports, ["default"]);
    const code = result.outputFiles[0]?.text ?? "";
    assert.ok(!/\bimport\s*\(/.test(code), "no dynamic imports");
    const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`)) as {
      default: { render?: unknown };
    };
    assert.equal(typeof mod.default.render, "function");
  });
});
