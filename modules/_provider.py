"""Load only the parts of the prebuilt google provider that the stacks use.

`import cdktf_cdktf_provider_google.<anything>` first runs the package root, which imports all
~1,470 submodules (about 16 s and 1.3 GB per process; hashicorp/terraform-cdk#3753). Every
submodule only needs the jsii assembly (`._jsii`), so we register the package root as a bare
namespace before the first import; submodules then load on demand. The classes are the same
objects either way, so the synthesized JSON is byte-identical (tests/infra/test_fast_synth.py).

The Node side of jsii has the same problem: the provider's `lib/index.js` requires every
submodule. `_lazy_provider_index.cjs`, preloaded into jsii's Node process through NODE_OPTIONS,
turns those requires into getters. NODE_OPTIONS must be set before the jsii kernel starts (at the
first `import cdktf`), which is why `modules` is imported first in main.py.

Set IMAGING_SYNTH_NAIVE=1 to import the provider the ordinary way (the baseline of bench/synth).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

PACKAGE = "cdktf_cdktf_provider_google"
NODE_PRELOAD = Path(__file__).resolve().with_name("_lazy_provider_index.cjs")


def install_lazy_provider() -> bool:
    """Registers the lazy package root; returns False when the naive path is requested or the
    provider is already imported (then nothing changes)."""
    # jsii's Node process warns on every start that Node 20 is past end of life; the output does
    # not depend on it. Like NODE_OPTIONS below, this must be set before that process starts.
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if PACKAGE in sys.modules:
        return False
    if os.environ.get("IMAGING_SYNTH_NAIVE") == "1":
        importlib.import_module(PACKAGE)
        return False
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(
            f"{PACKAGE} is not installed; run `make setup` (scripts/bootstrap.sh)"
        )
    root = types.ModuleType(
        PACKAGE, "Lazy root of the prebuilt google provider (see modules/_provider.py)."
    )
    root.__path__ = list(spec.submodule_search_locations)
    root.__spec__ = spec
    root.__file__ = spec.origin
    root.__package__ = PACKAGE
    sys.modules[PACKAGE] = root
    if "jsii" not in sys.modules:  # the Node process is not running yet, so it will see this
        preload = f'--require "{NODE_PRELOAD}"'
        options = os.environ.get("NODE_OPTIONS", "")
        if preload not in options:
            os.environ["NODE_OPTIONS"] = f"{options} {preload}".strip()
    return True
