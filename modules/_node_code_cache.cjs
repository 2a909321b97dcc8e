// Preloaded into jsii's Node process first (NODE_OPTIONS=--require, set by modules/_provider.py),
// before _jsii_single_process.cjs and _lazy_provider_index.cjs, so it compiles what they hand
// on: the kernel and provider indexes as they rewrote them.
//
// Every synth compiles about 14 MB of JavaScript from scratch: jsii's kernel, cdktn, constructs
// and the provider submodules used (compute-url-map's structs alone are 2.7 MB), and then
// compiles lazily each function it runs. V8 can serialize that work into a code cache and reuse
// it; Node's own cache (NODE_COMPILE_CACHE, module.enableCompileCache) cannot help here: it keys
// entries by file path, and jsii loads the kernel from a fresh temporary directory and every
// package through symlinks in another one on each start, so it never hits and grows by 12 MB a
// synth. Here each CommonJS module is compiled as Node compiles it (the same wrapper function,
// called with the same five arguments), with a V8 code cache keyed by the SHA-256 of its source
// (plus the Node version and architecture): the same source compiles to the same functions, so
// the cache changes how fast the synthesized JSON comes, never what it is.
//
// At exit, each module that had no usable cache entry gets one, made after the synth ran so it
// holds the lazily compiled functions too. An entry starts with the CRC-32 of its data: a
// truncated or corrupt file, or one V8 rejects (another V8 or other flags), is ignored and
// rewritten, and any error on the way compiles as Node would. Entries are written to a temporary
// name and renamed, so concurrent synths read a whole entry or none.
//
// Modules compiled this way lose their last line when it is an inline source map
// (`//# sourceMappingURL=data:...`, read only with --enable-source-maps, and kept then): a comment,
// but 9 of the 14 MB of JavaScript a synth compiled, all of it hashed and kept in memory, and V8
// stores the URL in its code cache too.
//
// IMAGING_NODE_CODE_CACHE is the directory (_provider.py defaults it to .tools/node-code-cache);
// empty turns all this off (Node compiles every module itself). The directory can be deleted at
// any time.
"use strict";
const Module = require("node:module");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const zlib = require("node:zlib");

const FORMAT = "imaging-node-code-cache/1";
const DIR = process.env.IMAGING_NODE_CODE_CACHE;
const HEADER = 4; // CRC-32 of the data, little-endian

function entryFile(source) {
  const key = crypto
    .createHash("sha256")
    .update(`${FORMAT}\0${process.version}\0${process.arch}\0`)
    .update(source)
    .digest("hex");
  return path.join(DIR, `${key}.bin`);
}

function readEntry(file) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return undefined; // no entry yet
  }
  if (bytes.length <= HEADER) {
    return undefined;
  }
  const data = bytes.subarray(HEADER);
  return zlib.crc32(data) === bytes.readUInt32LE(0) ? data : undefined;
}

function writeEntry(file, data) {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(zlib.crc32(data), 0);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([header, data]));
    fs.renameSync(tmp, file);
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing left to clean
    }
  }
}

function makeRequire(mod) {
  // What Node's loader gives a CommonJS module as `require` (lib/internal/modules/helpers.js).
  const require = function require(id) {
    return mod.require(id);
  };
  function resolve(request, options) {
    return Module._resolveFilename(request, mod, false, options);
  }
  resolve.paths = (request) => Module._resolveLookupPaths(request, mod);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}

const pending = []; // [entry file, script] to write at exit
const WRAPPER = Module.wrapper;
const INLINE_MAP = "\n//# sourceMappingURL=data:";

function withoutInlineSourceMap(content) {
  // CONTENT without a last line `//# sourceMappingURL=data:...` (the base64 of a TypeScript
  // source map, which only --enable-source-maps reads): 70% of the provider packages' bytes,
  // and 9 of the 14 MB a synth compiled, hashed and kept in memory.
  if (process.sourceMapsEnabled) {
    return content;
  }
  const at = content.lastIndexOf(INLINE_MAP);
  if (at === -1) {
    return content;
  }
  const end = content.indexOf("\n", at + 1);
  return end === -1 || content.slice(end).trim() === "" ? content.slice(0, at + 1) : content;
}

function compileCached(content, filename) {
  // The module's wrapper function, from the code cache when there is a valid entry; undefined
  // when V8 will not compile it as a classic script (an ES module: Node handles that itself).
  const source = WRAPPER[0] + withoutInlineSourceMap(content) + WRAPPER[1];
  const file = entryFile(source);
  const cachedData = readEntry(file);
  let script;
  try {
    script = new vm.Script(source, {
      filename,
      columnOffset: -WRAPPER[0].length, // columns in stack traces as Node reports them
      cachedData,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
  } catch {
    return undefined;
  }
  if (cachedData === undefined || script.cachedDataRejected) {
    pending.push([file, script]);
  }
  return script.runInThisContext({ displayErrors: true });
}

function writePending() {
  if (pending.length === 0) {
    return;
  }
  try {
    fs.mkdirSync(DIR, { recursive: true });
  } catch {
    return; // a read-only place only costs the compiling again next time
  }
  for (const [file, script] of pending.splice(0)) {
    try {
      writeEntry(file, script.createCachedData());
    } catch {
      // this module compiles from source next time too
    }
  }
}

// NODE_OPTIONS reaches every Node started from the synth's environment (the cdktn CLI's too):
// only jsii's process, the one started as bin/jsii-runtime.js, compiles through the cache.
const JSII_RUNTIME = /[\\/]bin[\\/]jsii-runtime\.js$/;

if (
  DIR &&
  JSII_RUNTIME.test(process.argv[1] ?? "") &&
  typeof zlib.crc32 === "function" &&
  vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER !== undefined
) {
  const compile = Module.prototype._compile;
  Module.prototype._compile = function nodeCodeCache(content, filename, format) {
    if (format === undefined || format === "commonjs") {
      const wrapper = compileCached(content, filename);
      if (wrapper !== undefined) {
        const dirname = path.dirname(filename);
        const require = makeRequire(this);
        return Reflect.apply(wrapper, this.exports, [
          this.exports,
          require,
          this,
          filename,
          dirname,
        ]);
      }
    }
    return compile.call(this, content, filename, format);
  };
  process.on("exit", writePending);
}
