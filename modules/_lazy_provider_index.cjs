// Preloaded into jsii's Node process (NODE_OPTIONS=--require, set by modules/_provider.py).
// A prebuilt provider's lib/index.js (@cdktn/provider-google, -google-beta, -time) is one line
// `exports.x = __importStar(require("./x/index"));` per submodule (about 1,800 for google, 2,000
// for google-beta), so the first `require` of the package costs over a second before any
// resource exists. We rewrite those lines, as the file is compiled, into getters that require a
// submodule on first access. jsii resolves a class by walking the package's exports
// (closure.storageBucket.StorageBucket), which runs exactly the getters it needs; the classes,
// and so the synthesized JSON, are unchanged.
// (The older cdktf providers wrote `exports.x = require("./x");`: both forms are handled.)
"use strict";
const Module = require("node:module");

const INDEX = /[\\/]@cdktn[\\/]provider-[\w-]+[\\/](?:.*[\\/])?lib[\\/]index\.js$/;
const EAGER =
  /^exports\.([A-Za-z_$][\w$]*) = (__importStar\()?require\(("\.\/[\w./-]+")\)\)?;$/gm;

const compile = Module.prototype._compile;
Module.prototype._compile = function lazyProviderIndex(content, filename) {
  if (INDEX.test(filename)) {
    content = content.replace(EAGER, (_, name, importStar, path) => {
      const load = importStar ? `__importStar(require(${path}))` : `require(${path})`;
      return (
        `Object.defineProperty(exports, "${name}", ` +
        `{ enumerable: true, configurable: true, get: () => ${load} });`
      );
    });
  }
  return compile.call(this, content, filename);
};
