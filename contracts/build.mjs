// Compiles every contracts/src/**/*.sol (src/testing/ holds contracts only tests deploy) with
// the pinned solc-js and writes, for each contract defined there (not for imported libraries,
// interfaces or abstract contracts):
//
//   <out>/<Contract>.abi.json  the ABI, pretty-printed with two spaces and a final newline
//   <out>/<Contract>.bin       the creation bytecode as lower-case hex, no 0x, no newline
//
// Usage: node build.mjs [outDir]   (outDir defaults to contracts/artifacts)
//
// Output is deterministic: source unit names are relative ("src/X.sol",
// "@openzeppelin/..."), so the metadata hash solc appends to the bytecode does not depend on
// where the checkout lives. Stale *.abi.json / *.bin files in outDir are removed.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const solc = require("solc");

const outDir = path.resolve(process.argv[2] ?? path.join(here, "artifacts"));

const srcDir = path.join(here, "src");
const sources = {};
for (const file of solidityFiles(srcDir)) {
  sources[`src/${file}`] = { content: fs.readFileSync(path.join(srcDir, file), "utf8") };
}
if (Object.keys(sources).length === 0) fail(`no .sol files in ${srcDir}`);

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

// Resolves imports by unit name: "@openzeppelin/..." from node_modules, "src/..." from here.
function findImports(unitName) {
  if (unitName.split("/").includes("..")) return { error: `refusing import path ${unitName}` };
  const file = unitName.startsWith("@")
    ? path.join(here, "node_modules", unitName)
    : path.join(here, unitName);
  try {
    return { contents: fs.readFileSync(file, "utf8") };
  } catch (err) {
    return { error: `cannot read ${unitName}: ${err.message}` };
  }
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

let failed = false;
for (const d of output.errors ?? []) {
  process.stderr.write(d.formattedMessage ?? `${d.severity}: ${d.message}\n`);
  if (d.severity === "error") failed = true;
}
if (failed) fail("compilation failed");

fs.mkdirSync(outDir, { recursive: true });
const written = new Set();
for (const unit of Object.keys(sources)) {
  for (const [name, contract] of Object.entries(output.contracts?.[unit] ?? {})) {
    const bin = contract.evm?.bytecode?.object ?? "";
    if (bin === "") continue; // interface or abstract contract: nothing to deploy
    if (written.has(`${name}.bin`)) fail(`contract name ${name} is defined twice`);
    write(`${name}.abi.json`, JSON.stringify(contract.abi, null, 2) + "\n");
    write(`${name}.bin`, bin);
  }
}
if (written.size === 0) fail("no deployable contracts in src/");

for (const file of fs.readdirSync(outDir)) {
  if ((file.endsWith(".abi.json") || file.endsWith(".bin")) && !written.has(file)) {
    fs.rmSync(path.join(outDir, file));
  }
}
console.log(`solc ${solc.version()}: wrote ${[...written].sort().join(", ")} to ${outDir}`);

// solidityFiles lists the .sol files under dir, recursively, as sorted "/"-separated paths
// relative to dir.
function solidityFiles(dir, prefix = "") {
  const out = [];
  for (const entry of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...solidityFiles(dir, rel));
    else if (entry.name.endsWith(".sol")) out.push(rel);
  }
  return out.sort();
}

function write(file, data) {
  fs.writeFileSync(path.join(outDir, file), data);
  written.add(file);
}

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(1);
}
