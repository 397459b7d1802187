// Bundle src/index.ts into ../cnnviz_widgets/static/widget.js: one
// self-contained ES module (es2020, minified). Run by `npm run build`, which
// hatch-jupyter-builder calls when the Python wheel is built.
//
//   node scripts/build.mjs            release build, no source map
//   node scripts/build.mjs --dev      unminified, inline source map
//   node scripts/build.mjs --watch    dev build, rebuilt on change
import { statSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const jsRoot = resolve(here, "..");
const outfile = resolve(jsRoot, "../cnnviz_widgets/static/widget.js");
const watch = process.argv.includes("--watch");
const dev = watch || process.argv.includes("--dev");

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
  logLevel: "warning",
  metafile: true,
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
