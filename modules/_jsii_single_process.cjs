// Preloaded into jsii's Node process (NODE_OPTIONS=--require, set by modules/_provider.py), next
// to _lazy_provider_index.cjs.
//
// jsii's Python runtime starts `node bin/jsii-runtime.js`, which only relays: it spawns a second
// Node, `lib/program.js` (the kernel), passes every request and response between its own
// stdin/stdout and the kernel's fd 3, and turns the kernel's stdout/stderr into
// {"stdout"|"stderr": base64} lines on its stderr, which the Python side decodes. That relay
// costs a whole Node process (about 55 MB of the fast synth's peak RSS) and two extra hops per
// jsii call. Here the relay's process runs the kernel itself instead: when the main module is
// bin/jsii-runtime.js, we compile ../lib/program.js in its place with its channel moved from fd 3
// to stdin/stdout (the pipes the Python side already talks on) and its stdout rewrapped into the
// same {"stdout": base64} lines on stderr. The kernel, its requests and the synthesized JSON are
// unchanged; only the process boundary in between goes.
//
// The relay started the kernel with --preserve-symlinks (jsii links each package from its package
// cache into the kernel's node_modules); _provider.py puts that flag in NODE_OPTIONS, and the
// kernel reads process.execArgv to decide between symlinking and copying, so it is added there
// too. If program.js is not where or what we expect (another jsii version), nothing changes.
//
// Second, jsii's package cache is keyed by the SHA-256 of each package tarball, which the kernel
// recomputes on every start: 92 MB read and hashed per synth for google and google-beta alone
// (about 0.1 s of CPU and 20 MB of garbage). Since the kernel source is ours to compile, its
// digestFile goes through a memo keyed by the tarball's path, size, mtime and inode (a
// reinstalled wheel changes them, and the kernel re-verifies the digest whenever it extracts);
// the memo is a small JSON file next to the other caches (IMAGING_JSII_DIGESTS to move it).
//
// Third, two costs of the kernel's own code (each rewrite applies only where the text is exactly
// the expected one, so another jsii version just runs unchanged):
// - Its runtime index (LazyTypes) reads the type definition of a provider class from a JSONL
//   file of every type, but reads the whole file to parse one line: 35 MB for google and 39 MB
//   for google-beta, kept in memory for the whole synth. We read the line's byte range instead
//   (the offsets come from the same index), so the JSON parsed is the same bytes.
// - To find a type's row in that index, LazyTypes decodes all 27,000 names of google (30,000 of
//   google-beta) into strings and a Map the first time. A binary search over a table of where
//   each name starts in the index bytes does instead: a match is the exact name, so the row is
//   right whatever the order; when the search finds nothing, the kernel's own Map answers.
// - computeSerializationType asserted its argument with a message built beforehand by
//   util.inspect, on every call; the message is now built only when the assertion fails.
"use strict";
const Module = require("node:module");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { Writable } = require("node:stream");

const DIGEST = "p.digestFile=function digestFile(e,...p){return readFileChunks(e,()=>{},...p)}";
const MEMO_DIGEST =
  "p.digestFile=function digestFile(e,...p){" +
  "return globalThis.__imagingDigestMemo(e,p,()=>readFileChunks(e,()=>{},...p))}";

function digestMemoFile() {
  if (process.env.IMAGING_JSII_DIGESTS) {
    return process.env.IMAGING_JSII_DIGESTS;
  }
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(cache, "imaging-pipeline-jsii-digests.json");
}

function digestMemo(file, extra, compute) {
  let key;
  try {
    const st = fs.statSync(file, { bigint: true });
    key = JSON.stringify([fs.realpathSync(file), `${st.size}`, `${st.mtimeNs}`, `${st.ino}`, extra]);
  } catch {
    return compute();
  }
  const memoFile = digestMemoFile();
  let memo = {};
  try {
    memo = JSON.parse(fs.readFileSync(memoFile, "utf8"));
  } catch {
    memo = {};
  }
  const known = memo[key];
  if (typeof known === "string" && /^[0-9a-f]{64}$/.test(known)) {
    return Buffer.from(known, "hex");
  }
  const digest = compute();
  try {
    memo[key] = digest.toString("hex");
    const tmp = `${memoFile}.${process.pid}.tmp`;
    fs.mkdirSync(path.dirname(memoFile), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(memo));
    fs.renameSync(tmp, memoFile); // atomic: concurrent synths read a whole memo or none
  } catch {
    // a read-only cache only costs the hashing again next time
  }
  return digest;
}

// LazyTypes.get, jsii 1.142: reads the whole defs file (once, then keeps it) to slice one line.
const DEFS_WHOLE =
  'const _=re(this,Z,null!==(p=se(this,Z,"f"))&&void 0!==p?p:(0,ae.readFileSync)(se(this,V,"f")),"f"),' +
  'F=se(this,g,"f").readUInt32LE(se(this,B,"f")+4*f),N=se(this,g,"f").readUInt32LE(se(this,B,"f")+4*(f+1)),' +
  'K=JSON.parse(_.toString("utf-8",F,N));';
const DEFS_RANGE =
  'const F=se(this,g,"f").readUInt32LE(se(this,B,"f")+4*f),N=se(this,g,"f").readUInt32LE(se(this,B,"f")+4*(f+1)),' +
  'K=JSON.parse(globalThis.__imagingReadRange(se(this,V,"f"),F,N));';
const EAGER_MESSAGE =
  "(0,B.default)(null!=e,`Kernel error: expected type information, got ${(0,K.inspect)(e)}`)";
const LAZY_MESSAGE =
  "null!=e||(0,B.default)(!1,`Kernel error: expected type information, got ${(0,K.inspect)(e)}`)";

// LazyTypes.rowOf, jsii 1.142: builds a Map of every name on first use.
const ROW_BY_MAP = 'Q=function _LazyTypes_rowOf(e){if(null==se(this,G,"f")){';
const ROW_BY_SEARCH =
  'Q=function _LazyTypes_rowOf(e){' +
  'const r=globalThis.__imagingRowOf(this,se(this,g,"f"),se(this,_,"f"),se(this,F,"f"),se(this,K,"f"),e);' +
  'if(void 0!==r)return r;if(null==se(this,G,"f")){';

const openFiles = new Map();

function readRange(file, start, end) {
  // Bytes [start, end) of FILE as UTF-8 text; the descriptor stays open for the next type.
  let fd = openFiles.get(file);
  if (fd === undefined) {
    fd = fs.openSync(file, "r");
    openFiles.set(file, fd);
  }
  const bytes = Buffer.allocUnsafe(end - start);
  for (let done = 0; done < bytes.length; ) {
    const n = fs.readSync(fd, bytes, done, bytes.length - done, start + done);
    if (n === 0) {
      throw new Error(`${file}: ends at byte ${start + done}, expected ${end}`);
    }
    done += n;
  }
  return bytes.toString("utf-8");
}

const nameStarts = new WeakMap();

function lineStarts(index, start, length, count) {
  // Where each of the COUNT newline-separated names in index[start, start + length) starts,
  // plus one past the end; null when the bytes do not hold COUNT names.
  const starts = new Uint32Array(count + 1);
  const end = start + length;
  let row = 0;
  starts[row++] = start;
  for (let p = start; p < end; p++) {
    if (index[p] === 10) {
      if (row >= count) {
        return null;
      }
      starts[row++] = p + 1;
    }
  }
  if (row !== count) {
    return null;
  }
  starts[count] = end + 1;
  return starts;
}

function rowOf(types, index, start, length, count, fqn) {
  // The row whose name is exactly FQN, or undefined (then the kernel looks it up its own way).
  let starts = nameStarts.get(types);
  if (starts === undefined) {
    starts = lineStarts(index, start, length, count);
    nameStarts.set(types, starts);
  }
  if (starts === null) {
    return undefined;
  }
  const key = Buffer.from(fqn, "utf-8");
  let low = 0;
  let high = count - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const order = index.compare(key, 0, key.length, starts[mid], starts[mid + 1] - 1);
    if (order === 0) {
      return mid;
    }
    if (order < 0) {
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return undefined;
}

const KERNEL_PATCHES = [
  { from: DIGEST, to: MEMO_DIGEST, install: () => (globalThis.__imagingDigestMemo = digestMemo) },
  { from: DEFS_WHOLE, to: DEFS_RANGE, install: () => (globalThis.__imagingReadRange = readRange) },
  { from: ROW_BY_MAP, to: ROW_BY_SEARCH, install: () => (globalThis.__imagingRowOf = rowOf) },
  { from: EAGER_MESSAGE, to: LAZY_MESSAGE, install: () => {} },
];

const RUNTIME = /[\\/]bin[\\/]jsii-runtime\.js$/;
const CHANNEL = "readFD:3,writeFD:3";
const HOST_PIPES = "readFD:0,writeFD:1";
const PRESERVE = "--preserve-symlinks";

function kernelSource(runtime) {
  const program = path.resolve(path.dirname(runtime), "..", "lib", "program.js");
  let text;
  try {
    text = fs.readFileSync(program, "utf8");
  } catch {
    return undefined;
  }
  // Exactly one channel to move, and module resolution must already preserve symlinks.
  if (text.split(CHANNEL).length !== 2 || !`${process.env.NODE_OPTIONS}`.includes(PRESERVE)) {
    return undefined;
  }
  text = text.replace(CHANNEL, HOST_PIPES);
  for (const patch of KERNEL_PATCHES) {
    const parts = text.split(patch.from);
    if (parts.length === 2) {
      patch.install();
      text = parts.join(patch.to);
    }
  }
  return { program, text };
}

function wrapStdout() {
  // fd 1 now carries the jsii protocol: anything the kernel or a library prints goes to the
  // Python side as the relay sent it, a {"stdout": base64} line on stderr.
  const stdout = new Writable({
    write(chunk, encoding, callback) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding);
      fs.writeSync(2, `${JSON.stringify({ stdout: bytes.toString("base64") })}\n`);
      callback();
    },
  });
  stdout.isTTY = false;
  Object.defineProperty(process, "stdout", {
    configurable: true,
    enumerable: true,
    get: () => stdout,
  });
}

const compile = Module.prototype._compile;
Module.prototype._compile = function jsiiSingleProcess(content, filename) {
  if (this.id === "." && RUNTIME.test(filename)) {
    const kernel = kernelSource(filename);
    if (kernel !== undefined) {
      if (!process.execArgv.includes(PRESERVE)) {
        process.execArgv.push(PRESERVE);
      }
      wrapStdout();
      this.filename = kernel.program;
      this.paths = Module._nodeModulePaths(path.dirname(kernel.program));
      return compile.call(this, kernel.text, kernel.program);
    }
  }
  return compile.call(this, content, filename);
};

// For tests/infra/test_node_preloads.py: every rewrite must still match the jsii kernel installed.
module.exports = { CHANNEL, KERNEL_PATCHES };
