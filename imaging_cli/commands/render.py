"""`imaging render FILE`: render one DICOM file the way the pipeline does and describe it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

_SUFFIXES = {"jpeg": ".jpg", "png": ".png"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a DICOM file to JPEG/PNG as the pipeline would",
        description="Render one DICOM instance (modality, VOI, presentation, colour, one frame, "
        "bounded size), write the image and print one JSON line describing it. Input that "
        "cannot or should not be rendered exits with status 2 and the reason on stderr.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="DICOM Part 10 file")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="output image (default: FILE's name with .jpg/.png, in the current directory)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=1024,
        metavar="N",
        help="longest output side in pixels (default 1024)",
    )
    parser.add_argument("--format", choices=sorted(_SUFFIXES), default="jpeg")
    parser.add_argument(
        "--frame",
        type=int,
        default=None,
        metavar="K",
        help="0-based frame to render (default: the middle one)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that other subcommands do not pay for numpy, pydicom and Pillow.
    from imaging_pipeline.render import RenderOptions, RenderRejected, render_file

    try:
        options = RenderOptions(max_size=args.max_size, format=args.format, frame=args.frame)
        image = render_file(args.file, options)
    except RenderRejected as rejected:
        print(f"imaging render: rejected: {rejected}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"imaging render: {error}", file=sys.stderr)
        return 2
    output: Path = args.output or Path(args.file.name).with_suffix(_SUFFIXES[args.format])
    output.write_bytes(image.data)
    summary = {
        "file": str(args.file),
        "output": str(output),
        "rows": image.rows,
        "columns": image.columns,
        "frames": image.frames,
        "frame": image.frame,
        "photometric_interpretation": image.photometric,
        "window": None
        if image.window is None
        else {"center": image.window[0], "width": image.window[1]},
        "width": image.width,
        "height": image.height,
        "media_type": image.media_type,
        "bytes": len(image.data),
    }
    print(json.dumps(summary))
    return 0
