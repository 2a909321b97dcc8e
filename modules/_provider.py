"""Load only the parts of the prebuilt providers that the stacks use.

jsii's Node process is where the cost is: loading a provider's assembly `require`s its
`lib/index.js`, which requires every submodule (about 1,800 for google, 2,000 for google-beta):
over 40 s of a naive synth on a busy 2-core machine, and most of its 850 MB.
`_lazy_provider_index.cjs`, preloaded into that process through NODE_OPTIONS, turns those requires
into getters; `_jsii_single_process.cjs` runs jsii's kernel in the Node process jsii starts
instead of behind a relay in a second one (a whole Node less: about 55 MB of peak RSS).
NODE_OPTIONS must be set before the jsii kernel starts (at the first `import cdktn`), which is
why `modules` is imported first in main.py.

On the Python side, cdktf's provider roots imported every submodule (hashicorp/terraform-cdk#3753);
the cdktn roots resolve submodules on first access (PEP 562) but still load the assembly at import.
Registering each root as a bare namespace keeps imports to the submodules used, whichever binding
generation a fork pins. The classes are the same objects either way, so the synthesized JSON is
byte-identical (tests/infra/test_fast_synth.py).

Set IMAGING_SYNTH_NAIVE=1 to import the providers the ordinary way (the baseline of bench/synth).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

# The prebuilt providers in pyproject's `infra` extra; one a fork has removed is skipped.
PACKAGES = ("cdktn_provider_google", "cdktn_provider_google_beta", "cdktn_provider_time")
NODE_PRELOAD = Path(__file__).resolve().with_name("_lazy_provider_index.cjs")
# Runs jsii's kernel in the process its runtime starts instead of a second Node behind a relay.
NODE_SINGLE_PROCESS = Path(__file__).resolve().with_name("_jsii_single_process.cjs")
# Compiles the JavaScript of jsii's Node process with a V8 code cache, keyed by its source.
NODE_CODE_CACHE = Path(__file__).resolve().with_name("_node_code_cache.cjs")
# scripts/bootstrap.sh installs Node 22 here when the machine's own is too old for jsii.
PROJECT_NODE = Path(__file__).resolve().parents[1] / ".tools" / "node" / "bin" / "node"
# Where the code cache and the notes of the provider submodules used live, unless
# IMAGING_NODE_CODE_CACHE says otherwise (empty: neither).
CODE_CACHE_DIR = Path(__file__).resolve().parents[1] / ".tools" / "node-code-cache"


def use_project_node() -> None:
    """Points jsii at bootstrap's Node (when there is one), so `python main.py` run by hand uses
    the same supported Node as `make synth`; jsii reads JSII_NODE when its process starts."""
    if "JSII_NODE" not in os.environ and PROJECT_NODE.is_file():
        os.environ["JSII_NODE"] = str(PROJECT_NODE)


def lazy_root(package: str) -> bool:
    """Registers PACKAGE's root as a bare namespace; False when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        return False
    root = types.ModuleType(package, "Lazy root of a prebuilt provider (see modules/_provider.py).")
    root.__path__ = list(spec.submodule_search_locations)
    root.__spec__ = spec
    root.__file__ = spec.origin
    root.__package__ = package
    sys.modules[package] = root
    return True


def install_lazy_provider() -> bool:
    """Registers the lazy package roots; returns False when the naive path is requested or a
    provider is already imported (then nothing changes)."""
    use_project_node()
    if os.environ.get("IMAGING_SYNTH_NAIVE") == "1" or any(p in sys.modules for p in PACKAGES):
        return False
    if not lazy_root(PACKAGES[0]):
        raise ModuleNotFoundError(
            f"{PACKAGES[0]} is not installed; run `make setup` (scripts/bootstrap.sh)"
        )
    for package in PACKAGES[1:]:
        lazy_root(package)
    if "jsii" not in sys.modules:  # the Node process is not running yet, so it will see this
        # cdktn captures a full JavaScript stack trace for every token and resource it creates,
        # only to print it if that token later fails to resolve: about a tenth of the fast
        # synth's Node time. Set CDKTN_DISABLE_CREATION_STACK=0 to get them back when debugging.
        os.environ.setdefault("CDKTN_DISABLE_CREATION_STACK", "1")
        # Both only change how soon the same JavaScript is compiled and run (see the .cjs).
        os.environ.setdefault("IMAGING_NODE_CODE_CACHE", str(CODE_CACHE_DIR))
        options = os.environ.get("NODE_OPTIONS", "")
        # --preserve-symlinks is what jsii's relay starts its kernel with (see the .cjs). The
        # code cache comes first: it compiles what the other two rewrote.
        for flag in (
            "--preserve-symlinks",
            f'--require "{NODE_CODE_CACHE}"',
            f'--require "{NODE_SINGLE_PROCESS}"',
            f'--require "{NODE_PRELOAD}"',
        ):
            if flag not in options:
                options = f"{options} {flag}".strip()
        os.environ["NODE_OPTIONS"] = options
    return True
