"""Load only the parts of the prebuilt google provider that the stacks use.

`import cdktf_cdktf_provider_google.<anything>` first runs the package root, which imports all
~1,470 submodules (about 16 s and 1.3 GB per process; hashicorp/terraform-cdk#3753). Every
submodule only needs the jsii assembly (`._jsii`), so we register the package root as a bare
namespace before the first import; submodules then load on demand. The classes are the same
objects either way, so the synthesized JSON is byte-identical (tests/infra/test_fast_synth.py).

Set IMAGING_SYNTH_NAIVE=1 to import the provider the ordinary way (the baseline of bench/synth).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

PACKAGE = "cdktf_cdktf_provider_google"


def install_lazy_provider() -> bool:
    """Registers the lazy package root; returns False when the naive path is requested or the
    provider is already imported (then nothing changes)."""
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
    return True
