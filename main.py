"""CDK Terrain app entry point: `cdktn synth` runs it, and so can `python main.py [ENV ...]`."""

import gc
import os
import sys
from pathlib import Path

if __name__ == "__main__" and os.environ.get("IMAGING_SYNTH_NAIVE") != "1":
    # A synth is one short process that builds the construct tree, writes it and exits.
    # Python's cyclic garbage collector ran about 200 times in it (0.05 s of CPU on a quiet
    # machine, several times that on a busy one) to free some 2,300 objects, which the exit
    # frees anyway; peak RSS is the same without it. The naive baseline keeps the default.
    gc.disable()

# The function's package (handlers/imaging_pipeline) owns the pipeline settings schema that
# the environment files embed; make it importable without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parent / "handlers"))

import modules  # noqa: F401  (first: sets up lazy provider loading before jsii starts)
from stacks.app import main

if __name__ == "__main__":
    sys.exit(main())
