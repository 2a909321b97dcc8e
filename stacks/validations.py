"""Checks that need more than one field, another file or a table of what Google and DICOM accept.

The schema in `stacks/config.py` checks each value; these catch what is valid field by field but
fails later (at apply time, or silently at run time): each returns `Problem`s naming the key and
what is allowed, and `load_environment` reports them with the file, exit status 2.
"""

from __future__ import annotations

import difflib
import os
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from imaging_pipeline.settings import ANALYZER_FINDINGS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
# Set by the CI workflows: every environment synthesized there must keep its state in GCS.
REQUIRE_REMOTE_STATE = "IMAGING_REQUIRE_REMOTE_STATE"

# Modality (0008,0060) defined terms, DICOM PS3.3 C.7.3.1.1.1 (current and retired terms, since
# archives keep sending retired ones).
_CURRENT_MODALITIES = (
    "AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS ES FID GM HC "
    "HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT "
    "PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN "
    "RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC"
)
_RETIRED_MODALITIES = "AS CD CF CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF"
DICOM_MODALITIES = frozenset(f"{_CURRENT_MODALITIES} {_RETIRED_MODALITIES}".split())

# Cloud Run (which runs Cloud Functions gen2): whole vCPUs it accepts, and the least vCPU each
# memory size needs ("Configure memory limits" and "Configure CPU limits" in Cloud Run's docs).
WHOLE_CPUS = (1, 2, 4, 6, 8)
# Least vCPU per memory size (MiB); the sizes are the schema's MEMORY_MIB.
MIN_CPU_FOR_MEMORY = {
    128: 0.083,
    256: 0.167,
    512: 0.333,
    1024: 0.583,
    2048: 1.0,
    4096: 1.0,
    8192: 2.0,
    16384: 4.0,
    32768: 8.0,
}
MIN_MEMORY_FOR_CPU = {4: 2048, 6: 4096, 8: 4096}  # MiB


@dataclass(frozen=True)
class Problem:
    key: str  # dotted path in the environment file
    message: str  # what is wrong and what is allowed


class DuplicateKeyError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def load_yaml_unique(text: str) -> Any:
    """`yaml.safe_load`, refusing a key written twice in one mapping (PyYAML keeps the last
    one silently, so a second `region:` further down would win unnoticed)."""
    # One parse: the composed node is checked, then constructed (what safe_load does after
    # composing it), instead of parsing the text a second time.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        for problem in _duplicate_keys(node, ""):
            raise DuplicateKeyError(problem)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, where: str) -> Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = f"{where}.{key}" if where else key
            line = key_node.start_mark.line + 1
            if key in seen:
                yield Problem(
                    path,
                    f"written twice (lines {seen[key]} and {line}); each key may appear once "
                    "in a mapping",
                )
            seen.setdefault(key, line)
            yield from _duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{where}.{index}")


def problems(name: str, config: Any) -> list[Problem]:
    """Every cross-field problem of a schema-valid `EnvironmentConfig` named `name`."""
    found = [
        *_phi_safeguards(config),
        *_time_zone(config.time_zone),
        *_modalities(config.pipeline.modalities),
        *_alert_emails(config.alert_emails),
        *_analyzer_rules(config.pipeline),
        *_state_backend(name, config.state_backend),
        *_smoke_test(config),
    ]
    for function in ("processor", "ingest"):
        found += _sizing(f"functions.{function}", getattr(config.functions, function))
    return found


def _phi_safeguards(config: Any) -> Iterator[Problem]:
    if config.labels.data_classification != "phi":
        return
    for key in ("cmek", "deletion_protection"):
        if not getattr(config.security, key):
            yield Problem(
                f"security.{key}",
                "must be true in an environment with labels.data_classification 'phi' "
                "(patient data needs customer-managed keys and deletion protection)",
            )


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> Iterator[Problem]:
    if value in _zones():
        return
    close = difflib.get_close_matches(value, sorted(_zones()), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    yield Problem(
        "time_zone",
        f"{value!r} is not an IANA time zone name (such as 'UTC' or 'Europe/London'){hint}",
    )


def _modalities(values: tuple[str, ...]) -> Iterator[Problem]:
    unknown = [m for m in values if m not in DICOM_MODALITIES]
    if unknown:
        yield Problem(
            "pipeline.modalities",
            f"not DICOM modality codes: {', '.join(unknown)}; allowed: the defined terms of "
            "Modality (0008,0060) in DICOM PS3.3 C.7.3.1.1.1, such as CT, MR, CR, DX, US",
        )


def _alert_emails(emails: tuple[str, ...]) -> Iterator[Problem]:
    lowered = [e.lower() for e in emails]
    twice = sorted({e for e in lowered if lowered.count(e) > 1})
    if twice:
        yield Problem(
            "alert_emails",
            f"listed more than once: {', '.join(twice)} (each address gets one notification "
            "channel; list every address once)",
        )


def _analyzer_rules(pipeline: Any) -> Iterator[Problem]:
    # Every analyzer some modality gets: the default one and each route's.
    used = sorted({pipeline.analyzer, *(r.analyzer for r in pipeline.routes.values())} - {"none"})
    emitted = frozenset().union(*(ANALYZER_FINDINGS[a] for a in used))
    analyzers = " or ".join(repr(a) for a in used) or "no"
    for index, rule in enumerate(pipeline.rules):
        if rule.finding not in emitted:
            yield Problem(
                f"pipeline.rules.{index}.finding",
                f"rule {rule.name!r} can never match: the {analyzers} analyzer never "
                f"reports {rule.finding!r}; allowed with it: {', '.join(sorted(emitted)) or '-'}",
            )


def _sizing(key: str, sizing: Any) -> Iterator[Problem]:
    cpu, memory = float(sizing.cpu), sizing.memory_mib
    if cpu >= 1 and cpu not in WHOLE_CPUS:
        yield Problem(
            f"{key}.cpu",
            f"Cloud Run accepts {sizing.cpu} vCPU only as a fraction below 1; whole values "
            f"allowed: {', '.join(map(str, WHOLE_CPUS))}",
        )
        return
    needed = MIN_CPU_FOR_MEMORY.get(memory, 0.0)
    if cpu < needed:
        yield Problem(
            key,
            f"memory_mib {memory} needs cpu of at least {needed:g} on Cloud Run "
            f"(cpu is {sizing.cpu}); raise cpu or lower memory_mib",
        )
        return
    least = MIN_MEMORY_FOR_CPU.get(int(cpu), 0)
    if memory < least:
        yield Problem(
            key,
            f"cpu {sizing.cpu} needs memory_mib of at least {least} on Cloud Run "
            f"(memory_mib is {memory})",
        )


@cache
def ci_deployed_environments(workflow: Path = DEPLOY_WORKFLOW) -> frozenset[str]:
    """Environments the deploy workflow applies (its jobs' `environment` inputs)."""
    try:
        data = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    except OSError:
        return frozenset()
    found: set[str] = set()
    for job in (data or {}).get("jobs", {}).values():
        for holder in (job.get("with", {}), job):
            value = holder.get("environment")
            if isinstance(value, str) and "${{" not in value:
                found.add(value)
    return frozenset(found)


def _state_backend(name: str, backend: Any) -> Iterator[Problem]:
    if backend.type != "local":
        return
    if name in ci_deployed_environments():
        why = f"CI deploys {name!r} ({DEPLOY_WORKFLOW.relative_to(ROOT)})"
    elif os.environ.get(REQUIRE_REMOTE_STATE) == "1":
        why = f"{REQUIRE_REMOTE_STATE}=1 (set by the CI workflows)"
    else:
        return
    yield Problem(
        "state_backend.type",
        f"'local' state is lost with the runner and {why}; allowed: 'gcs' with the bucket the "
        "setup stack creates (see README, First deploy)",
    )


def _smoke_test(config: Any) -> Iterator[Problem]:
    if config.ci.smoke_test and config.labels.data_classification == "phi":
        yield Problem(
            "ci.smoke_test",
            "must be false in an environment with labels.data_classification 'phi' (the smoke "
            "test needs its deploy identity to read and write the stores)",
        )
