"""`imaging render FILE`: render one DICOM file the way the pipeline does and describe it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

ImageFormat = Literal["jpeg", "png"]
_SUFFIXES: dict[ImageFormat, str] = {"jpeg": ".jpg", "png": ".png"}
# The output's extension decides its format; --format only fills in the default name.
_FORMAT_OF_SUFFIX: dict[str, ImageFormat] = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


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
        help="output image; its extension (.png, .jpg, .jpeg) sets the format "
        "(default: FILE's name with .jpg/.png, in the current directory)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=1024,
        metavar="N",
        help="longest output side in pixels (default 1024)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(_SUFFIXES),
        default=None,
        help="image format when -o is not given (default jpeg); with -o, must match its extension",
    )
    parser.add_argument(
        "--frame",
        type=int,
        default=None,
        metavar="K",
        help="0-based frame to render (default: the middle one)",
    )
    parser.set_defaults(func=run)


def output_and_format(
    file: Path, output: Path | None, fmt: ImageFormat | None
) -> tuple[Path, ImageFormat]:
    """Where to write and in which format; ValueError for a contradiction or an unknown type,
    or an output directory that does not exist (checked before the work, not after)."""
    if output is None:
        chosen: ImageFormat = fmt or "jpeg"
        return Path(file.name).with_suffix(_SUFFIXES[chosen]), chosen
    by_suffix = _FORMAT_OF_SUFFIX.get(output.suffix.lower())
    if by_suffix is None:
        raise ValueError(
            f"-o {output}: cannot tell the format from {output.suffix or 'no extension'!r}; "
            "use .png, .jpg or .jpeg"
        )
    if fmt is not None and fmt != by_suffix:
        raise ValueError(f"-o {output} is {by_suffix.upper()} but --format says {fmt}")
    if output.is_dir():
        raise ValueError(f"-o {output} is a directory; give a file name")
    if not output.parent.is_dir():
        raise ValueError(f"-o {output}: directory {output.parent} does not exist")
    return output, by_suffix


def run(args: argparse.Namespace) -> int:
    # Imported here so that other subcommands do not pay for numpy, pydicom and Pillow.
    from imaging_pipeline.render import RenderOptions, RenderRejected, render_file

    try:
        output, image_format = output_and_format(args.file, args.output, args.format)
    except ValueError as error:
        print(f"imaging render: {error}", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"imaging render: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        options = RenderOptions(max_size=args.max_size, format=image_format, frame=args.frame)
        image = render_file(args.file, options)
    except RenderRejected as rejected:
        print(f"imaging render: rejected: {rejected}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"imaging render: {error}", file=sys.stderr)
        return 2
    try:
        output.write_bytes(image.data)
    except OSError as error:
        print(f"imaging render: cannot write {output}: {error.strerror}", file=sys.stderr)
        return 2
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
