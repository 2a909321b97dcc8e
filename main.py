"""CDK Terrain app entry point: `cdktn synth` runs it, and so can `python main.py [ENV ...]`."""

import sys
from pathlib import Path

# The function's package (handlers/imaging_pipeline) owns the pipeline settings schema that
# the environment files embed; make it importable without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parent / "handlers"))

import modules  # noqa: F401  (first: sets up lazy provider loading before jsii starts)
from stacks.app import main

if __name__ == "__main__":
    sys.exit(main())
