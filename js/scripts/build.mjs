// Bundle src/index.ts into ../cnnviz_widgets/static/widget.js: one
// self-contained ES module (es2020, minified). Run by `npm run build`, which
// hatch-jupyter-builder calls when the Python wheel is built.
//
//   node scripts/build.mjs            release build, no source map
//   node scripts/build.mjs --dev      unminified, inline source map
//   node scripts/build.mjs --watch    dev build, rebuilt on change
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const jsRoot = resolve(here, "..");
const outfile = resolve(jsRoot, "../cnnviz_widgets/static/widget.js");
const watch = process.argv.includes("--watch");
const dev = watch || process.argv.includes("--dev");

/**
 * The style sheet in src/styles.ts (`export const CSS = \`...\``) minified as CSS in the release
 * build: the bundle travels in every saved notebook's widget state.
 * @type {import("esbuild").Plugin}
 */
const minifyCss = {
  name: "minify-css",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]styles\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const match = /export const CSS = `([^`]*)`;/.exec(source);
      if (!match || match[1].includes("${")) throw new Error("styles.ts: CSS must be one plain template literal");
      const css = (await esbuild.transform(match[1], { loader: "css", minify: true })).code.trim();
      return { contents: source.replace(match[0], `export const CSS = ${JSON.stringify(css)};`), loader: "ts" };
    });
  },
};

/** @type {import("esbuild").BuildOptions} */
const options = {
  absWorkingDir: jsRoot,
  entryPoints: ["src/index.ts"],
  outfile,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  legalComments: "none",
  // The message table's Chinese as UTF-8, not \uXXXX escapes (half the bytes; the bundle travels
  // in every saved notebook). Module scripts are always read as UTF-8.
  charset: "utf8",
  logLevel: "warning",
  metafile: true,
  plugins: dev ? [] : [minifyCss],
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log(`watching src/, writing ${relative(process.cwd(), outfile)}`);
} else {
  const result = await esbuild.build(options);
  const external = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external));
  if (external.length > 0) {
    console.error(`widget.js must be self-contained, but imports: ${external.map((i) => i.path).join(", ")}`);
    process.exit(1);
  }
  const size = statSync(outfile).size;
  console.log(`built ${relative(process.cwd(), outfile)} (${(size / 1024).toFixed(1)} KiB${dev ? ", dev" : ""})`);
}
