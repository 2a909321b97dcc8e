"""`imaging demo`: registered here, implemented in the dev tooling package (imaging_dev.demo)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    from imaging_dev.demo import register as register_demo

    register_demo(subparsers)
