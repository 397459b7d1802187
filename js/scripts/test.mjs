// Compile tests/*.test.ts with esbuild (each bundled with the modules it
// imports) and run them with node's own test runner. Exits non-zero when a
// test fails. Works offline: needs only the packages that `npm ci` installs.
//
//   node scripts/test.mjs [name-filter ...]
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const jsRoot = resolve(here, "..");
const testDir = join(jsRoot, "tests");
const outDir = join(jsRoot, "node_modules", ".cache", "cnnviz-tests");
const filters = process.argv.slice(2);

const entries = readdirSync(testDir)
  .filter((f) => f.endsWith(".test.ts"))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
  .map((f) => join(testDir, f));
if (entries.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
await esbuild.build({
  absWorkingDir: jsRoot,
  entryPoints: entries,
  outdir: outDir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node18",
  sourcemap: "inline",
  // Keep esbuild itself (used by the bundle test) and node built-ins external.
  packages: "external",
  logLevel: "warning",
});

const compiled = readdirSync(outDir)
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => join(outDir, f));
const run = spawnSync(process.execPath, ["--enable-source-maps", "--test", ...compiled], {
  stdio: "inherit",
  cwd: jsRoot,
  env: { ...process.env, CNNVIZ_JS_ROOT: jsRoot },
});
process.exit(run.status ?? 1);
