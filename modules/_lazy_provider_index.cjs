// Preloaded into jsii's Node process (NODE_OPTIONS=--require, set by modules/_provider.py).
// The google provider's lib/index.js is 1,470 lines of `exports.x = require("./x");`, so the
// first `require` of the package costs ~1.1 s before any resource exists. We rewrite those lines,
// as the file is compiled, into getters that require a submodule on first access. jsii resolves
// a class by walking the package's exports (closure.storageBucket.StorageBucket), which runs
// exactly the getters it needs; the classes, and so the synthesized JSON, are unchanged.
"use strict";
const Module = require("node:module");

const INDEX = /[\\/]@cdktf[\\/]provider-google[\\/](?:.*[\\/])?lib[\\/]index\.js$/;
const EAGER = /^exports\.([A-Za-z_$][\w$]*) = require\(("\.\/[\w./-]+")\);$/gm;

const compile = Module.prototype._compile;
Module.prototype._compile = function lazyProviderIndex(content, filename) {
  if (INDEX.test(filename)) {
    content = content.replace(
      EAGER,
      (_, name, path) =>
        `Object.defineProperty(exports, "${name}", ` +
        `{ enumerable: true, configurable: true, get: () => require(${path}) });`,
    );
  }
  return compile.call(this, content, filename);
};
