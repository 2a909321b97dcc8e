"""CDKTF app entry point (`cdktf synth` runs it; so can `python main.py [ENVIRONMENT ...]`)."""

import os
import sys
from pathlib import Path

# jsii warns on every run that Node 20 is past end of life; the synth output does not depend on it.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# The function's package (handlers/imaging_pipeline) owns the pipeline settings schema that
# the environment files embed; make it importable without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parent / "handlers"))

import modules  # noqa: F401  (first: sets up lazy provider loading before jsii starts)
from stacks.app import main

if __name__ == "__main__":
    sys.exit(main())
