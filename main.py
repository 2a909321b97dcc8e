"""CDK Terrain app entry point: `cdktn synth` runs it, and so can `python main.py [ENV ...]`."""

import atexit
import gc
import os
import sys
from pathlib import Path

# The synth process on the fast path: not the naive baseline of bench/synth (which stays what a
# user would write), not a process that merely imports this file.
FAST = __name__ == "__main__" and os.environ.get("IMAGING_SYNTH_NAIVE") != "1"

if FAST:
    # A synth is one short process that builds the construct tree, writes it and exits.
    # Python's cyclic garbage collector ran about 200 times in it (0.05 s of CPU on a quiet
    # machine, several times that on a busy one) to free some 2,300 objects, which the exit
    # frees anyway; peak RSS is the same without it.
    gc.disable()

# The function's package (handlers/imaging_pipeline) owns the pipeline settings schema that
# the environment files embed; make it importable without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parent / "handlers"))

import modules  # noqa: E402, F401  (first: sets up lazy provider loading before jsii starts)
from modules import _jsii_preload, _jsii_type_hints  # noqa: E402

if __name__ == "__main__":
    # Node starts and loads the assemblies while Python imports the stacks (_jsii_preload.py);
    # IMAGING_JSII_PRELOAD=0 turns that off. The thread stops before the process exits.
    preload = None
    if FAST and os.environ.get("IMAGING_JSII_PRELOAD") != "0":
        preload = _jsii_preload.start()
    if FAST:
        _jsii_type_hints.install()  # before the bindings are imported (_jsii_type_hints.py)
    try:
        # The configuration's imports (pydantic, the settings schema, YAML) need no Node: first,
        # while Node starts and loads constructs and cdktn, which the stacks' imports wait for.
        import stacks.config  # noqa: F401
        from stacks.app import main

        code = main()
    finally:
        if preload is not None:
            preload.stop()
    if FAST:
        # Done: the stacks are written (by Node, before main() returns). Tearing down the
        # interpreter (every module, every class of the bindings) took another 170 ms; the exit
        # handlers (jsii's: Node exits, its temporary directory goes) and the flush of stdout are
        # all that exit does that matters here.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
