"""Rendering against the renderers a radiology engineer would compare with, same files, one run.

    .venv/bin/python -m bench.render [--repeat N] [--pairs N] [--check]

Methods, each rendering the displayed frame to at most 1024 pixels, JPEG quality 90:
- ours: imaging_pipeline.render;
- idiomatic: the pydicom pipeline most code uses (`pixel_array`, `apply_modality_lut`,
  `apply_voi_lut`, MONOCHROME1 inverted, Pillow Lanczos, JPEG quality 90);
- dcmj2pnm (Debian dcmtk): one process per image; its per-image work is its CPU time on the
  file minus its CPU time on an 8x8 image (its own start-up and dictionary load), the two run
  alternately `--pairs` times and the differences averaged. Its start-up (~20-30 ms) varies by
  several ms from run to run, more than its work on a small file, so one start-up subtracted
  from a few runs is noise; the mean of many alternated differences is not (its standard error
  is printed with the result);
- Orthanc's `/instances/{id}/frames/{f}/rendered` (the CPU time of Orthanc's process per image;
  reported, no goal).

Times are CPU milliseconds (user + system; in-process methods the median of `--repeat` runs):
steadier than wall time on a shared machine, and each method renders on one thread, so CPU time
is its latency.

Groups (image classes): pydicom's bundled pixel files, generated 512x512 int16 CT slices, a
generated 3000x3000 12-bit radiograph. Reported per group and method: time per image, output
bytes per image, agreement with ours (Pearson correlation of the grey levels at our size) and
how many files the method rendered. Goals: ours >= 1.5x the idiomatic pipeline on every group,
and >= 1.5x dcmj2pnm's per-image work on the files both render, with agreement >= 0.98 where
both apply the same window. `--check` exits 1 when a goal is missed. The radiograph's peak RSS
(< 512 MiB, issue 4) is still measured in a fresh process.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from bench._measure import measure, median

ROOT = Path(__file__).resolve().parent.parent
MAX_SIZE = 1024
QUALITY = 90
IDIOMATIC_GOAL = 1.5
DCMTK_GOAL = 1.5
AGREEMENT_GOAL = 0.98
RSS_GOAL_MB = 512.0
Renderer = Callable[[bytes], bytes]


# --- methods ------------------------------------------------------------------------------


def ours_render(data: bytes) -> bytes:
    from imaging_pipeline.render import render_bytes

    return render_bytes(data).data


def _fit(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_SIZE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def idiomatic_render(data: bytes) -> bytes:
    """What most pydicom code does: documented helpers, float maths, Pillow for the rest."""
    ds = pydicom.dcmread(io.BytesIO(data))
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[frames // 2]
    if int(ds.get("SamplesPerPixel", 1)) == 1:
        arr = apply_voi_lut(apply_modality_lut(arr, ds), ds).astype(np.float64)
        low, high = float(arr.min()), float(arr.max())
        arr = (arr - low) / max(high - low, 1e-9) * 255.0
        if ds.PhotometricInterpretation == "MONOCHROME1":
            arr = 255.0 - arr
        image = Image.fromarray(arr.astype(np.uint8))
    else:
        image = Image.fromarray(arr.astype(np.uint8))  # pydicom 3 converts YBR to RGB
    image = image.resize(_fit(*image.size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()


def dcmj2pnm_command(data: bytes, path: Path, out: Path) -> list[str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    command = ["dcmj2pnm", "--quiet", "+oj", "+Jq", str(QUALITY), "+F", str(frames // 2 + 1)]
    if int(ds.get("SamplesPerPixel", 1)) == 1:
        command += ["+Wi", "1"] if "WindowCenter" in ds else ["+Wm"]
    if max(int(ds.Rows), int(ds.Columns)) > MAX_SIZE:
        long_side = "+Sxv" if int(ds.Columns) >= int(ds.Rows) else "+Syv"
        command += [long_side, str(MAX_SIZE)]
    return [*command, str(path), str(out)]


# --- corpus -------------------------------------------------------------------------------


def _dataset(pixels: np.ndarray, sop_class: str, **attributes: object) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=16)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct_slice(seed: int, size: int = 512) -> bytes:
    """A CT-like int16 slice with a soft-tissue window, as scanners write them."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[(x / 0.42) ** 2 + (y / 0.33) ** 2 < 1] = 30.0
    hu[((x - 0.1) / 0.12) ** 2 + (y / 0.09) ** 2 < 1] = 60.0 + 10 * seed
    hu[(x**2 + (y - 0.2) ** 2) < 0.003] = 900.0
    hu += rng.normal(0, 12, hu.shape).astype(np.float32)
    stored = np.rint(hu + 1024).astype(np.int16)
    return _dataset(
        stored,
        CTImageStorage,
        Modality="CT",
        RescaleIntercept=-1024,
        RescaleSlope=1,
        WindowCenter=40,
        WindowWidth=400,
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
        Modality="DX",
        WindowCenter=2200,
        WindowWidth=2400,
        PresentationLUTShape="INVERSE",
    )
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PhotometricInterpretation, ds.BitsStored, ds.HighBit = "MONOCHROME1", 12, 11
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def tiny() -> bytes:
    return _dataset(np.zeros((8, 8), np.uint16), CTImageStorage, Modality="CT")


def pydicom_corpus() -> list[bytes]:
    """Bundled files that ours and the idiomatic pipeline both render (others reject some)."""
    root = Path(str(pydicom.data.get_testdata_file("CT_small.dcm"))).parent
    corpus = []
    for path in sorted(root.glob("*.dcm")):
        data = path.read_bytes()
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            if "SOPInstanceUID" not in ds or "Rows" not in ds:
                continue
            ours_render(data)
            idiomatic_render(data)
        except Exception:  # noqa: S112 (rejected or crashing inputs are not timed)
            continue
        corpus.append(data)
    return corpus


# --- measurement --------------------------------------------------------------------------


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)  # per image
    variances: list[float] = field(default_factory=list)  # of each image's mean (dcmj2pnm)
    sizes: list[int] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    outputs: list[bytes | None] = field(default_factory=list)

    @property
    def rendered(self) -> int:
        return sum(1 for o in self.outputs if o is not None)


def grey(image_bytes: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    image = Image.open(io.BytesIO(image_bytes)).convert("L")
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float64)


def correlation(ours: bytes, theirs: bytes) -> float:
    reference = grey(ours)
    other = grey(theirs, (reference.shape[1], reference.shape[0]))
    if reference.std() == 0 or other.std() == 0:
        return 1.0 if np.array_equal(reference, other) else 0.0
    return float(np.corrcoef(reference.ravel(), other.ravel())[0, 1])


# Times are CPU seconds (user + system) spent on the image: on a shared machine they are far
# steadier than wall time, and every method renders on one thread, so they are its latency.


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_in_process(render: Renderer, data: bytes, repeat: int) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(repeat):
        start = time.process_time()
        out = render(data)
        times.append(time.process_time() - start)
    return median(times), out


def reference_command(tmp: Path) -> list[str]:
    """dcmj2pnm on the 8x8 image in `tmp`: its start-up and dictionary load, little else."""
    reference = tiny()
    (tmp / "ref.dcm").write_bytes(reference)
    return dcmj2pnm_command(reference, tmp / "ref.dcm", tmp / "ref.jpg")


def time_dcmj2pnm(
    data: bytes, tmp: Path, pairs: int, reference: list[str]
) -> tuple[list[float], list[float], bytes | None]:
    """dcmj2pnm on the file and `reference`, alternately `pairs` times: the CPU differences
    (per-image work) and the reference's CPU (start-up); no output if it failed. Alternating
    makes the machine's drift hit both sides of each difference alike."""
    path, out = tmp / "in.dcm", tmp / "out.jpg"
    path.write_bytes(data)
    command = dcmj2pnm_command(data, path, out)
    differences, startups = [], []
    for _ in range(pairs):
        startups.append(_cpu_of(reference))
        out.unlink(missing_ok=True)
        seconds = _cpu_of(command)
        if seconds != seconds or not out.exists():
            return [], startups, None
        differences.append(seconds - startups[-1])
    return differences, startups, out.read_bytes()


def _cpu_of(command: list[str]) -> float:
    """CPU seconds of one run of `command`; NaN if it failed."""
    start = _children_cpu()
    done = subprocess.run(command, capture_output=True, check=False)
    return _children_cpu() - start if done.returncode == 0 else float("nan")


class OrthancRenderer:
    """Orthanc's /rendered for instances uploaded once (HTTP round trip included)."""

    def __init__(self) -> None:
        from imaging_dev.servers.orthanc import OrthancServer

        self.server = OrthancServer()
        self.server.__enter__()
        import requests

        self.session = requests.Session()
        self.session.headers["Accept-Encoding"] = "identity"

    def upload(self, data: bytes) -> str | None:
        response = self.session.post(f"{self.server.url}/instances", data=data, timeout=60)
        if response.status_code != 200:
            return None
        return str(response.json()["ID"])

    def render(self, instance: str, frame: int, size: tuple[int, int]) -> bytes | None:
        response = self.session.get(
            f"{self.server.url}/instances/{instance}/frames/{frame}/rendered",
            params={"quality": QUALITY, "width": size[0], "height": size[1], "smooth": 1},
            headers={"Accept": "image/jpeg"},
            timeout=60,
        )
        return response.content if response.status_code == 200 else None

    def cpu_seconds(self) -> float:
        assert self.server.pid is not None
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.server.__exit__(None, None, None)


def run_group(
    corpus: list[bytes],
    args: argparse.Namespace,
    tmp: Path,
    orthanc: OrthancRenderer | None,
    reference: list[str],
    startups: list[float],
) -> dict[str, Result]:
    results = {name: Result() for name in ("ours", "idiomatic", "dcmj2pnm", "orthanc")}
    for data in corpus:
        # Alternate methods per file so that machine noise hits all of them alike.
        seconds, ours = time_in_process(ours_render, data, args.repeat)
        results["ours"].seconds.append(seconds)
        results["ours"].sizes.append(len(ours))
        results["ours"].outputs.append(ours)
        results["ours"].agreement.append(1.0)
        seconds, theirs = time_in_process(idiomatic_render, data, args.repeat)
        _add(results["idiomatic"], seconds, theirs, ours)
        differences, startup, out = time_dcmj2pnm(data, tmp, args.pairs, reference)
        startups.extend(startup)
        _add(results["dcmj2pnm"], statistics.fmean(differences or [0.0]), out, ours)
        if out is not None:
            variance = statistics.variance(differences) / len(differences)
            results["dcmj2pnm"].variances.append(variance)
        if orthanc is not None:
            _add_orthanc(results["orthanc"], orthanc, data, ours, args.repeat)
    return results


def _add(result: Result, seconds: float, out: bytes | None, ours: bytes) -> None:
    result.outputs.append(out)
    if out is None:
        result.seconds.append(float("nan"))
        return
    result.seconds.append(seconds)
    result.sizes.append(len(out))
    result.agreement.append(correlation(ours, out))


def _add_orthanc(
    result: Result, orthanc: OrthancRenderer, data: bytes, ours: bytes, repeat: int
) -> None:
    instance = orthanc.upload(data)
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    frame = int(ds.get("NumberOfFrames", 1) or 1) // 2
    size = Image.open(io.BytesIO(ours)).size
    if instance is None:
        _add(result, 0.0, None, ours)
        return
    out = None
    start = orthanc.cpu_seconds()
    for _ in range(repeat):
        out = orthanc.render(instance, frame, size)
    # Orthanc's own CPU (clock ticks of its process): total over the repeats, per image.
    _add(result, (orthanc.cpu_seconds() - start) / repeat, out, ours)


def child(path: Path) -> None:
    """Run in a fresh process: read one file and render it with ours ('none': read only)."""
    ours_render(path.read_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per file, in-process")
    parser.add_argument(
        "--pairs", type=int, default=20, help="alternated dcmj2pnm runs (file, 8x8) per file"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--no-orthanc", action="store_true", help="skip Orthanc's /rendered")
    parser.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pydicom's warnings about odd test files are not results
    if args.child:
        child(Path(args.child))
        return 0
    if shutil.which("dcmj2pnm") is None:
        print("dcmj2pnm not found: run scripts/bootstrap.sh (Debian package dcmtk)")
        return 2

    groups = {
        "pydicom files": pydicom_corpus(),
        "CT 512x512 int16": [ct_slice(seed) for seed in range(8)],
        "radiograph 3000x3000": [radiograph()],
    }
    orthanc = None if args.no_orthanc else OrthancRenderer()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp_name:
            tmp = Path(tmp_name)
            for corpus in groups.values():  # warm every method once
                ours_render(corpus[0])
                idiomatic_render(corpus[0])
            reference = reference_command(tmp)
            startups: list[float] = []
            results = {
                group: run_group(corpus, args, tmp, orthanc, reference, startups)
                for group, corpus in groups.items()
            }
    finally:
        if orthanc is not None:
            orthanc.close()

    spread = statistics.quantiles(startups, n=10)
    print(
        f"dcmj2pnm start-up (8x8 image, {len(startups)} runs alternated with the files): median "
        f"{statistics.median(startups) * 1000:.1f} ms, 10-90% {spread[0] * 1000:.1f}-"
        f"{spread[-1] * 1000:.1f} ms"
    )
    print(
        f"{'group':22} {'method':10} {'n':>4} {'ms/image':>9} {'vs ours':>8} "
        f"{'B/image':>9} {'agreement':>10}"
    )
    goals: dict[str, bool] = {}
    both_ours, both_dcmtk, dcmtk_variance = 0.0, 0.0, 0.0
    for group, by_method in results.items():
        ours = by_method["ours"]
        for method, result in by_method.items():
            if method == "orthanc" and orthanc is None:
                continue
            done = [s for s in result.seconds if s == s]  # drop NaN (not rendered)
            if not done:
                print(f"{group:22} {method:10} {0:4d} {'-':>9}")
                continue
            ms = 1000 * float(np.mean(done))
            # Speed-up over the files this method rendered, against ours on the same files.
            ours_same = 1000 * float(
                np.mean([o for o, s in zip(ours.seconds, result.seconds, strict=True) if s == s])
            )
            ratio = ms / ours_same if ours_same else float("inf")
            print(
                f"{group:22} {method:10} {result.rendered:4d} {ms:9.2f} {ratio:7.2f}x "
                f"{float(np.mean(result.sizes)):9.0f} {float(np.mean(result.agreement)):10.4f}"
            )
            if method == "idiomatic":
                goals[f"{group}: ours >= {IDIOMATIC_GOAL}x idiomatic"] = ratio >= IDIOMATIC_GOAL
            if method == "dcmj2pnm":
                both_dcmtk += sum(done)
                dcmtk_variance += sum(result.variances)
                both_ours += sum(
                    o for o, s in zip(ours.seconds, result.seconds, strict=True) if s == s
                )
    overall = both_dcmtk / both_ours if both_ours else 0.0
    # Two standard errors of dcmj2pnm's summed per-image work (ours is timed in-process, whose
    # error is far smaller than a difference of two process runs).
    margin = 2 * dcmtk_variance**0.5 / both_ours if both_ours else 0.0
    print(
        f"dcmj2pnm per-image work vs ours, files both render: {overall:.2f}x "
        f"({overall - margin:.2f}-{overall + margin:.2f}x at two standard errors)"
    )
    goals[f"ours >= {DCMTK_GOAL}x dcmj2pnm per-image work"] = overall >= DCMTK_GOAL
    ct_agreement = float(np.mean(results["CT 512x512 int16"]["dcmj2pnm"].agreement or [0.0]))
    goals[f"CT agreement with dcmj2pnm >= {AGREEMENT_GOAL}"] = ct_agreement >= AGREEMENT_GOAL

    with tempfile.TemporaryDirectory(prefix="bench-render-rss-") as tmp_name:
        path = Path(tmp_name) / "radiograph.dcm"
        path.write_bytes(groups["radiograph 3000x3000"][0])
        rss = measure([sys.executable, "-m", "bench.render", "--child", str(path)], cwd=ROOT)
    print(f"peak RSS of a fresh process rendering the radiograph: {rss.peak_rss_mb:.0f} MiB")
    goals[f"radiograph peak RSS < {RSS_GOAL_MB:.0f} MiB"] = rss.peak_rss_mb < RSS_GOAL_MB
    for goal, met in goals.items():
        print(f"{'PASS' if met else 'FAIL'}  {goal}")
    return 1 if args.check and not all(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
