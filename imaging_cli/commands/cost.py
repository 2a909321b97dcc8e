"""`imaging cost ENV --images-per-day N`: monthly estimate from the environment's own config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="estimate an environment's monthly cost at a given image rate",
        description="Monthly cost estimate from the environment's configuration (per-modality "
        "analysis, function sizing, CMEK, log retention), the measured seconds per event and the "
        "list prices in imaging_cli/cost_data.yaml (source and date per price; free tiers and "
        "discounts left out). Warns when max_instances or the Vision quota caps throughput.",
    )
    parser.add_argument("environment", metavar="ENV", help="name in environments/ or a file")
    parser.add_argument(
        "--images-per-day", type=float, required=True, metavar="N", help="DICOM instances a day"
    )
    parser.add_argument(
        "--mix",
        metavar="M=SHARE,...",
        help="modality mix, e.g. CT=0.5,MR=0.3,DX=0.2 (default: cost_data.yaml's default_mix)",
    )
    parser.add_argument(
        "--compare-today",
        action="store_true",
        help="also price the configuration before routing (Vision label+object+text for every "
        "image, one event per instance)",
    )
    parser.set_defaults(func=run)


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in text.split(","):
        name, sep, share = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not MODALITY=SHARE")
        mix[name.strip().upper()] = float(share)
    return mix


def _environment_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return ROOT / "environments" / f"{name}.yaml"


def run(args: argparse.Namespace) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from imaging_cli.cost_model import Sizing, estimate, today_baseline
    from stacks.config import ConfigError, load_environment

    try:
        env = load_environment(_environment_path(args.environment))
    except ConfigError as error:
        print(f"imaging cost: {error}", file=sys.stderr)
        return 2
    try:
        mix = parse_mix(args.mix) if args.mix else None
    except ValueError as error:
        print(f"imaging cost: --mix: {error}", file=sys.stderr)
        return 2
    if args.images_per_day <= 0:
        print("imaging cost: --images-per-day must be positive", file=sys.stderr)
        return 2
    cfg = env.config
    fn = cfg.functions.processor
    sizing = Sizing(
        fn.memory_mib, float(fn.cpu), fn.min_instances, fn.max_instances, fn.concurrency
    )
    common = {
        "cmek": cfg.security.cmek,
        "log_days": cfg.retention.log_days,
        "images_per_day": args.images_per_day,
        "mix": mix,
    }
    result = estimate(cfg.pipeline, sizing, **common)
    print(f"{env.name}: {args.images_per_day:,.0f} images/day, monthly estimate (USD)")
    for item, usd in result.lines.items():
        print(f"  {item:38} {usd:12,.2f}")
    print(f"  {'total':38} {result.total:12,.2f}   ({result.per_1000_images:.3f} per 1,000 images)")
    print(
        f"instances at peak: {result.instances_at_peak:.1f} of max_instances "
        f"{result.max_instances} (concurrency {fn.concurrency}); Vision requests/min at peak: "
        f"{result.vision_requests_per_minute_at_peak:.0f} of quota "
        f"{result.vision_quota_per_minute:.0f}"
    )
    for endpoint, nodes in result.vertex_nodes.items():
        print(f"Vertex endpoint {endpoint}: {nodes} node(s)")
    if args.compare_today:
        before = Sizing(fn.memory_mib, float(fn.cpu), fn.min_instances, fn.max_instances, 1)
        baseline = estimate(today_baseline(cfg.pipeline), before, **common)
        ratio = result.per_1000_images / baseline.per_1000_images
        print(
            f"before routing: {baseline.total:,.2f} a month ({baseline.per_1000_images:.3f} per "
            f"1,000 images); this configuration costs {ratio:.2f} of it"
        )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
