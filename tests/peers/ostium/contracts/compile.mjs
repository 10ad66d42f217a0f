// Compiles MockOstium.sol with npm's solc (solcjs, offline) into artifacts.json: the ABI and
// bytecode of each contract, with the source's sha256 so a test notices a stale build.
// Run: node compile.mjs /path/to/node_modules (where `npm install solc@0.8.30` put it).
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(process.argv[2] ?? here, "noop.js"));
const solc = require("solc");
const source = readFileSync(join(here, "MockOstium.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "MockOstium.sol": { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    viaIR: true,
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors ?? []).filter((e) => e.severity === "error");
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const contracts = {};
for (const [name, c] of Object.entries(out.contracts["MockOstium.sol"])) {
  contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}
const artifacts = {
  compiler: solc.version(),
  source_sha256: createHash("sha256").update(source).digest("hex"),
  contracts,
};
writeFileSync(join(here, "artifacts.json"), JSON.stringify(artifacts, null, 1) + "\n");
console.log("compiled", Object.keys(contracts).join(", "), "with", solc.version());
