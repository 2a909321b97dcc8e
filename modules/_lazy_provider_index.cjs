// Preloaded into jsii's Node process (NODE_OPTIONS=--require, set by modules/_provider.py).
// A prebuilt provider's lib/index.js (@cdktn/provider-google, -google-beta, -time) is one line
// `exports.x = __importStar(require("./x/index"));` per submodule (about 1,800 for google, 2,000
// for google-beta), so the first `require` of the package costs over a second before any
// resource exists. We rewrite those lines, as the file is compiled, into getters that require a
// submodule on first access. jsii resolves a class by walking the package's exports
// (closure.storageBucket.StorageBucket), which runs exactly the getters it needs; the classes,
// and so the synthesized JSON, are unchanged.
// (The older cdktf providers wrote `exports.x = require("./x");`: both forms are handled.)
//
// Second, the submodules a synth needs (about 45 of google's, requiring and running 5 MB of
// JavaScript) are those the last synth needed. The getters note each submodule the synth uses,
// and at exit the names go to a small JSON file next to the code cache (IMAGING_NODE_CODE_CACHE,
// set by _provider.py; empty: no file), by package name and version. When the next synth loads
// the package, its index requires the noted submodules at once: the same modules, required
// earlier, during the `load` that modules/_jsii_preload.py sends while Python is still importing,
// instead of one by one while Python waits. A submodule required only that way is not noted, so
// one the stacks stopped using drops out after one synth; a bad or missing file only means
// nothing is required early.
"use strict";
const Module = require("node:module");
const fs = require("node:fs");
const path = require("node:path");

const INDEX = /[\\/]@cdktn[\\/]provider-[\w-]+[\\/](?:.*[\\/])?lib[\\/]index\.js$/;
const EAGER =
  /^exports\.([A-Za-z_$][\w$]*) = (__importStar\()?require\(("\.\/[\w./-]+")\)\)?;$/gm;
const DIR = process.env.IMAGING_NODE_CODE_CACHE;
const USED_FILE = DIR ? path.join(DIR, "provider-submodules.json") : undefined;

let noted; // the file's {"name@version": [submodule, ...]}, read on first need
const used = new Map(); // "name@version" -> Set of submodules this synth used
let warming = false;

function notedBefore() {
  if (noted === undefined) {
    noted = {};
    try {
      const parsed = JSON.parse(fs.readFileSync(USED_FILE, "utf8"));
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
        noted = parsed;
      }
    } catch {
      // none yet, or unreadable: nothing is required early
    }
  }
  return noted;
}

function packageKey(index) {
  // "name@version" of the package whose lib/index.js INDEX is, or undefined.
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(index, "..", "..", "package.json"), "utf8"));
    return typeof meta.name === "string" && typeof meta.version === "string"
      ? `${meta.name}@${meta.version}`
      : undefined;
  } catch {
    return undefined;
  }
}

function noteUse(key, name) {
  if (!warming) {
    let names = used.get(key);
    if (names === undefined) {
      names = new Set();
      used.set(key, names);
    }
    names.add(name);
  }
}

function requireNoted(key, exports) {
  const names = notedBefore()[key];
  if (!Array.isArray(names)) {
    return;
  }
  warming = true;
  try {
    for (const name of names) {
      if (typeof name === "string" && Object.prototype.hasOwnProperty.call(exports, name)) {
        try {
          void exports[name];
        } catch {
          // required again, and reported, where the synth uses it
        }
      }
    }
  } finally {
    warming = false;
  }
}

function writeUsed() {
  const next = { ...notedBefore() };
  let changed = false;
  for (const [key, names] of used) {
    const sorted = [...names].sort();
    if (JSON.stringify(next[key]) !== JSON.stringify(sorted)) {
      next[key] = sorted;
      changed = true;
    }
  }
  if (!changed) {
    return;
  }
  const tmp = `${USED_FILE}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(DIR, { recursive: true });
    fs.writeFileSync(tmp, `${JSON.stringify(next, null, 1)}\n`);
    fs.renameSync(tmp, USED_FILE); // atomic: concurrent synths read a whole file or the old one
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing left to clean
    }
  }
}

if (USED_FILE !== undefined) {
  globalThis.__imagingSubmoduleUsed = noteUse;
  globalThis.__imagingRequireNoted = requireNoted;
  process.on("exit", writeUsed);
}

function beforeSourceMap(content, code) {
  // CONTENT with CODE as a line of its own at the end, but before a last `//# sourceMappingURL=`
  // line: that comment must stay last (_node_code_cache.cjs drops it when it is inline).
  const at = content.lastIndexOf("\n//# sourceMappingURL=");
  const end = at === -1 ? -1 : content.indexOf("\n", at + 1);
  return at !== -1 && (end === -1 || content.slice(end).trim() === "")
    ? `${content.slice(0, at + 1)}${code}\n${content.slice(at + 1)}`
    : `${content}\n${code}\n`;
}

const compile = Module.prototype._compile;
Module.prototype._compile = function lazyProviderIndex(content, filename) {
  if (INDEX.test(filename)) {
    const key = USED_FILE !== undefined ? packageKey(filename) : undefined;
    const note = key !== undefined ? `__imagingSubmoduleUsed(${JSON.stringify(key)}, ` : "";
    let rewritten = 0;
    content = content.replace(EAGER, (_, name, importStar, path) => {
      rewritten += 1;
      const load = importStar ? `__importStar(require(${path}))` : `require(${path})`;
      const get = note ? `(${note}"${name}"), ${load})` : load;
      return (
        `Object.defineProperty(exports, "${name}", ` +
        `{ enumerable: true, configurable: true, get: () => ${get} });`
      );
    });
    if (key !== undefined && rewritten > 0) {
      content = beforeSourceMap(content, `__imagingRequireNoted(${JSON.stringify(key)}, exports);`);
    }
  }
  return compile.call(this, content, filename);
};
