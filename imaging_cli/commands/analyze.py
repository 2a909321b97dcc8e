"""`imaging analyze FILE`: run the processor's pipeline on one local file, offline.

Same code as the deployed function from the SOP class filter on: render -> local analyzer
(Tesseract OCR, blank and exposure checks) -> rules -> FHIR R4 transaction bundle (validated).
Nothing is sent anywhere; the findings and the bundle are printed as one JSON document. With
`--sr OUT.dcm` the DICOM SR (TID 1500) the processor would store is written too (same code).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyze a DICOM file offline: findings, priority and the FHIR bundle",
        description="Run render -> local analyzer -> rules -> FHIR bundle on one DICOM file "
        "without any server and print a JSON document with the findings, the priority and the "
        "FHIR R4 transaction bundle the processor would send. Objects the pipeline skips "
        "(SR, SEG, RT, ...) or cannot render exit with status 2 and the reason on stderr.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="DICOM Part 10 file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--env",
        metavar="ENV",
        help="apply this environment's pipeline settings (rules, modalities, render): "
        "environments/ENV.yaml, or a path to an environment file",
    )
    source.add_argument(
        "--settings",
        metavar="FILE.json|JSON",
        help="pipeline settings as a JSON file, or inline JSON ('{\"rules\": [...]}'); the "
        "analyzer is always the local one. Default: the built-in settings.",
    )
    parser.add_argument(
        "--sr",
        type=Path,
        metavar="OUT.dcm",
        help="also write the DICOM SR (TID 1500) of the findings that the processor would "
        "store next to the image (the FHIR bundle then lists and references it)",
    )
    parser.set_defaults(func=run)


class SettingsError(Exception):
    """--env or --settings cannot be used; `str()` is the one-line reason."""


def environment_file(env: str) -> Path:
    """ENV as a path, else environments/ENV.yaml here, else in the checkout the CLI runs from."""
    given = Path(env)
    if given.suffix in (".yaml", ".yml") or given.is_file():
        return given
    for directory in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = directory / "environments" / f"{env}.yaml"
        if candidate.is_file():
            return candidate
    raise SettingsError(f"--env {env}: no environments/{env}.yaml here or in the checkout")


def _settings(args: argparse.Namespace) -> Any:
    from imaging_pipeline.settings import PipelineSettings
    from pydantic import ValidationError

    data: dict[str, Any] = {}
    if args.env:
        from stacks.config import ConfigError, load_environment

        try:
            env = load_environment(environment_file(args.env))
        except ConfigError as error:
            raise SettingsError(str(error)) from None
        data = env.config.pipeline.model_dump()
    elif args.settings:
        text = args.settings.strip()
        try:
            raw = text if text.startswith("{") else Path(text).read_text(encoding="utf-8")
            data = json.loads(raw)
        except OSError as error:
            raise SettingsError(f"--settings {text}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise SettingsError(f"--settings: not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise SettingsError("--settings: expected a JSON object of pipeline settings")
    try:
        return PipelineSettings.model_validate({**data, "analyzer": "local"})
    except ValidationError as error:
        from stacks.config_errors import describe_validation

        lines = describe_validation(Path("--settings"), error.errors(), PipelineSettings)
        raise SettingsError("\n".join(lines)) from None


def write_sr(
    path: Path, dataset: Any, image: Any, findings: Any, assessment: Any, identity: Any
) -> Any:
    """Writes the SR the processor would store; returns what FHIR lists and references."""
    from imaging_pipeline.sr.build import build_sr, fhir_reference, source_image
    from imaging_pipeline.sr.encode import part10_bytes

    sr = build_sr(dataset, source_image(image), findings, assessment, identity)
    path.write_bytes(part10_bytes(sr))  # the bytes the processor sends with STOW-RS
    return fhir_reference(sr, path.resolve().as_uri())  # no store here: the file is the SR


def run(args: argparse.Namespace) -> int:
    # Imported here so that other subcommands do not pay for the pipeline's dependencies.
    import pydicom
    from imaging_pipeline.analysis import make_analyzer
    from imaging_pipeline.errors import PermanentError
    from imaging_pipeline.fhir.mapping import (
        AnalyzerIdentity,
        build_transaction,
        instance_info,
        validate_bundle,
    )
    from imaging_pipeline.process import analyze_dataset
    from imaging_pipeline.render import RenderRejected
    from imaging_pipeline.render.decode import opener, read_dataset
    from imaging_pipeline.sop_filter import check_modality, check_sop_class
    from pydicom.errors import InvalidDicomError

    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"imaging analyze: {error}", file=sys.stderr)
        return 2
    try:
        # The renderer's reader first: it tells a truncated file from one that is not DICOM.
        read_dataset(opener(args.file))
    except RenderRejected as rejected:
        print(f"imaging analyze: {args.file}: {rejected}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"imaging analyze: {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        dataset = pydicom.dcmread(args.file)
        check_sop_class(dataset.get("SOPClassUID"))
        check_modality(dataset.get("Modality"), settings.modalities)
        analyzer = make_analyzer(settings)
        image, findings, assessment = analyze_dataset(dataset, settings, analyzer)
        identity = AnalyzerIdentity(analyzer.name, analyzer.version)
        structured_report = (
            write_sr(args.sr, dataset, image, findings, assessment, identity) if args.sr else None
        )
        bundle = build_transaction(
            instance_info(dataset),
            findings,
            assessment,
            identity,
            patient_system=settings.fhir.patient_identifier_system,
            structured_report=structured_report,
        )
        validate_bundle(bundle)
    except PermanentError as error:
        print(f"imaging analyze: {error.reason}: {error.detail}", file=sys.stderr)
        return 2
    except (InvalidDicomError, OSError, AttributeError) as error:
        print(f"imaging analyze: {args.file}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "file": str(args.file),
                "analyzer": {"name": identity.name, "version": identity.version},
                "priority": assessment.priority,
                "findings": [
                    {**f.as_dict(), "priority": assessment.priority_of(f)} for f in findings
                ],
                "rules": sorted({m.rule.name for m in assessment.matches}),
                **({"sr": str(args.sr)} if args.sr else {}),
                "bundle": bundle,
            },
            indent=2,
        )
    )
    return 0
