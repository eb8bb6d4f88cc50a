// Builds the console into service/console/, the static files the gateway serves at /ui.
//
//   npm ci && npm run build     copy src/ and the vendored chart library, write manifest.json
//   npm run check               rebuild in a temporary folder and compare with service/console/
//
// The sources are plain ES modules, served as they are: the build copies them, adds uPlot's
// built ESM file, stylesheet and licence from node_modules (the version package-lock.json pins)
// and writes service/console/manifest.json with the SHA-256 of every source and every built
// file. tests/service/test_console.py checks the committed files against that manifest without
// Node.js or the network.

import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SRC = join(here, "src");
const OUT = join(here, "..", "service", "console");
const VENDOR = {
  uplot: {
    "vendor/uplot/uPlot.esm.js": "dist/uPlot.esm.js",
    "vendor/uplot/uPlot.min.css": "dist/uPlot.min.css",
    "vendor/uplot/LICENSE": "LICENSE",
  },
};

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Every file under `root`, as sorted "/"-separated relative paths. */
function files(root) {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(root, path).split(sep).join("/"));
    }
  };
  walk(root);
  return found.sort();
}

function build(out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  cpSync(SRC, out, { recursive: true });
  const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
  const vendor = {};
  for (const [pkg, copies] of Object.entries(VENDOR)) {
    const locked = lock.packages[`node_modules/${pkg}`];
    const installed = JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"), "utf8"));
    if (!locked || installed.version !== locked.version) {
      throw new Error(`node_modules/${pkg} is ${installed.version}, package-lock.json pins ${locked?.version}: run npm ci`);
    }
    vendor[pkg] = { version: locked.version, integrity: locked.integrity, license: locked.license, files: {} };
    for (const [target, from] of Object.entries(copies)) {
      mkdirSync(dirname(join(out, target)), { recursive: true });
      cpSync(join(here, "node_modules", pkg, from), join(out, target));
      vendor[pkg].files[target] = `node_modules/${pkg}/${from}`;
    }
  }
  const manifest = {
    about: "Written by console/build.mjs (npm run build); checked by tests/service/test_console.py.",
    sources: Object.fromEntries(files(SRC).map((f) => [f, sha256(join(SRC, f))])),
    vendor,
    files: Object.fromEntries(files(out).map((f) => [f, sha256(join(out, f))])),
  };
  writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
}

if (process.argv.includes("--check")) {
  const scratch = mkdtempSync(join(tmpdir(), "pureai-console-"));
  try {
    build(scratch);
    const want = files(scratch);
    const have = files(OUT);
    const differ = [...new Set([...want, ...have])].filter(
      (f) => !want.includes(f) || !have.includes(f) || sha256(join(scratch, f)) !== sha256(join(OUT, f)),
    );
    if (differ.length) {
      console.error(`service/console/ is out of date (run npm run build): ${differ.join(", ")}`);
      process.exit(1);
    }
    console.log(`service/console/ matches console/src/ (${have.length} files)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else {
  build(OUT);
  console.log(`built ${relative(process.cwd(), OUT) || "."}: ${files(OUT).length} files`);
}
