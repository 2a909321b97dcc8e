"""Rendering: the seed recipe (min-max stretch in float64, RGB PNG) against imaging_pipeline.render.

    .venv/bin/python -m bench.render [--repeat N] [--check]

One run, one corpus, both methods alternately (so machine noise hits both): pydicom's bundled
pixel files, generated 512x512 int16 CT slices and a generated 3000x3000 16-bit radiograph.
Prints images per second and mean output bytes per group, and the peak RSS of a fresh process
rendering one CT slice and the radiograph (and of one that only imports and reads it: the floor).
Goals (issue 4): >= 20x the seed's throughput on 512x512 CT, <= half its output bytes, and the
radiograph rendered with peak RSS < 512 MiB. `--check` exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from bench._measure import measure, median

ROOT = Path(__file__).resolve().parent.parent
SPEEDUP_GOAL = 20.0
BYTES_GOAL = 0.5
RSS_GOAL_MB = 512.0
Renderer = Callable[[bytes], bytes]


def seed_render(data: bytes) -> bytes:
    """The seed recipe: decode everything, stretch min..max in float64, save an RGB PNG."""
    ds = pydicom.dcmread(io.BytesIO(data))
    arr = ds.pixel_array.astype(np.float64)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[len(arr) // 2]
    arr = (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-9) * 255.0
    image = Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def ours_render(data: bytes) -> bytes:
    from imaging_pipeline.render import render_bytes

    return render_bytes(data).data


METHODS: dict[str, Renderer] = {"seed": seed_render, "ours": ours_render}


def _dataset(pixels: np.ndarray, sop_class: str, **attributes: object) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=16)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct_slice(seed: int, size: int = 512) -> bytes:
    """A CT-like int16 slice (HU + 1024): body, organs, bone, noise, padding outside the FOV.
    Even seeds carry a soft-tissue window like scanners write; odd ones none (robust path)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[(x / 0.42) ** 2 + (y / 0.33) ** 2 < 1] = 30.0
    hu[((x - 0.1) / 0.12) ** 2 + (y / 0.09) ** 2 < 1] = 60.0 + 10 * seed
    hu[(x**2 + (y - 0.2) ** 2) < 0.003] = 900.0
    hu += rng.normal(0, 12, hu.shape).astype(np.float32)
    stored = np.rint(hu + 1024).astype(np.int16)
    stored[x**2 + y**2 > 0.25] = -2000
    window = {"WindowCenter": 40, "WindowWidth": 400} if seed % 2 == 0 else {}
    return _dataset(
        stored,
        CTImageStorage,
        RescaleIntercept=-1024,
        RescaleSlope=1,
        PixelPaddingValue=-2000,
        **window,
    )


def radiograph(size: int = 3000) -> bytes:
    """A 3000x3000 12-bit-in-16 projection radiograph (MONOCHROME1, as many DX are)."""
    rng = np.random.default_rng(42)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    signal = 3000.0 - 1500.0 * np.exp(-((x / 0.3) ** 2 + (y / 0.4) ** 2)).astype(np.float32)
    signal -= 800.0 * (np.abs(np.sin(24 * y)) * (np.abs(x) < 0.25)).astype(np.float32)
    signal += rng.normal(0, 20, signal.shape).astype(np.float32)
    pixels = np.clip(signal, 0, 4095).astype(np.uint16)
    data = _dataset(
        pixels,
        DigitalXRayImageStorageForPresentation,
        WindowCenter=2200,
        WindowWidth=2400,
        PresentationLUTShape="INVERSE",
    )
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PhotometricInterpretation, ds.BitsStored, ds.HighBit = "MONOCHROME1", 12, 11
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def pydicom_corpus() -> list[bytes]:
    """Bundled files both methods can render (the seed fails on some; ours rejects others)."""
    root = Path(str(pydicom.data.get_testdata_file("CT_small.dcm"))).parent
    corpus = []
    for path in sorted(root.glob("*.dcm")):
        data = path.read_bytes()
        try:
            seed_render(data)
            ours_render(data)
        except Exception:  # noqa: S112 (rejected or crashing inputs are not timed)
            continue
        corpus.append(data)
    return corpus


def timed(render: Renderer, corpus: list[bytes]) -> tuple[float, int]:
    """(seconds, output bytes) for one pass over the corpus."""
    start, size = time.perf_counter(), 0
    for data in corpus:
        size += len(render(data))
    return time.perf_counter() - start, size


def child(method: str, path: Path) -> None:
    """Run in a fresh process: read one file and render it (method 'none': read only)."""
    data = path.read_bytes()
    if method != "none":
        METHODS[method](data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="passes per method (default 3)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pydicom's warnings about odd test files are not results
    if args.child:
        import imaging_pipeline.render.api  # noqa: F401 (same imports in every child: a fair floor)

        child(args.child[0], Path(args.child[1]))
        return 0

    groups = {
        "pydicom files": pydicom_corpus(),
        "CT 512x512 int16": [ct_slice(seed) for seed in range(8)],
        "radiograph 3000x3000": [radiograph()],
    }
    for corpus in groups.values():  # warm both (imports, codec initialisation)
        for render in METHODS.values():
            timed(render, corpus[:1])
    results: dict[tuple[str, str], tuple[float, int]] = {}
    for group, corpus in groups.items():
        times: dict[str, list[float]] = {name: [] for name in METHODS}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, render in METHODS.items():
                seconds, sizes[name] = timed(render, corpus)
                times[name].append(seconds)
        for name in METHODS:
            results[group, name] = (len(corpus) / median(times[name]), sizes[name] // len(corpus))

    print(
        f"{'group':24} {'n':>3} {'seed img/s':>11} {'ours img/s':>11} {'speedup':>8} "
        f"{'seed B/img':>11} {'ours B/img':>11} {'bytes':>6}"
    )
    for group, corpus in groups.items():
        (seed_rate, seed_bytes), (ours_rate, ours_bytes) = (
            results[group, "seed"],
            results[group, "ours"],
        )
        print(
            f"{group:24} {len(corpus):3d} {seed_rate:11.1f} {ours_rate:11.1f} "
            f"{ours_rate / seed_rate:7.1f}x {seed_bytes:11d} {ours_bytes:11d} "
            f"{ours_bytes / seed_bytes:6.2f}"
        )

    rss: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        for group in ("CT 512x512 int16", "radiograph 3000x3000"):
            path = Path(tmp) / "instance.dcm"
            path.write_bytes(groups[group][0])
            for method in ("none", "seed", "ours"):
                command = [sys.executable, "-m", "bench.render", "--child", method, str(path)]
                rss[group, method] = measure(command, cwd=ROOT).peak_rss_mb
    print("peak RSS of a fresh process rendering one instance (floor: imports + reading it):")
    for group in ("CT 512x512 int16", "radiograph 3000x3000"):
        seed_mb, ours_mb, floor_mb = (rss[group, m] for m in ("seed", "ours", "none"))
        print(
            f"  {group:22} seed {seed_mb:5.0f} MiB   ours {ours_mb:5.0f} MiB"
            f"   floor {floor_mb:5.0f} MiB"
        )

    ct_seed, ct_ours = results["CT 512x512 int16", "seed"], results["CT 512x512 int16", "ours"]
    goals = {
        f"CT throughput >= {SPEEDUP_GOAL:.0f}x seed": ct_ours[0] / ct_seed[0] >= SPEEDUP_GOAL,
        f"CT output bytes <= {BYTES_GOAL} x seed": ct_ours[1] <= BYTES_GOAL * ct_seed[1],
        f"radiograph peak RSS < {RSS_GOAL_MB:.0f} MiB": rss["radiograph 3000x3000", "ours"]
        < RSS_GOAL_MB,
    }
    for goal, met in goals.items():
        print(f"{'PASS' if met else 'FAIL'}  {goal}")
    return 1 if args.check and not all(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
