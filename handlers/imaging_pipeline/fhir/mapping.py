"""Map one analyzed DICOM instance to one FHIR R4 transaction bundle.

Entries: the analyzer's Device, the ImagingStudy (conditional on the study UID identifier, with
this series and instance merged into any existing one), one Observation per finding and a
preliminary DiagnosticReport. Every entry is a conditional update (`PUT Type?identifier=...`) or
conditional create on a business identifier, so delivering the same event twice creates nothing
new. Entries refer to each other by `urn:uuid:` fullUrls; the FHIR server rewrites them to the
ids it created or matched. The patient is referenced by identifier (a logical reference), so no
Patient resource is created from DICOM data.

Validation uses fhir.resources' R4B models: R4B is R4's technical correction, and the resources
and fields used here (ImagingStudy, DiagnosticReport, Observation, Device, Bundle) are identical
in R4. fhir.resources' default (top-level) models are R5, which would accept R5-only fields.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.rules import Assessment

DICOM_UID_SYSTEM = "urn:dicom:uid"
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
SOP_CLASS_SYSTEM = "urn:ietf:rfc:3986"
LOINC_SYSTEM = "http://loinc.org"
REPORT_LOINC = ("18748-4", "Diagnostic imaging study")
REPORT_IDENTIFIER_SYSTEM = "urn:imaging-pipeline:report"
OBSERVATION_IDENTIFIER_SYSTEM = "urn:imaging-pipeline:finding"
DEVICE_IDENTIFIER_SYSTEM = "urn:imaging-pipeline:analyzer"
# The analyzed instance and the analyzer's name, without its version: finds the reports (and
# so the SRs) that earlier versions wrote for the same instance.
ANALYZED_INSTANCE_SYSTEM = "urn:imaging-pipeline:analyzed-instance"
SR_TITLE = "DICOM SR (TID 1500 Measurement Report)"
FINDING_CODE_SYSTEM = "urn:imaging-pipeline:finding-kind"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0074"
# Searchable triage facts of a report (the review app's worklist filters and sorts on them):
# the priority as conclusionCode, the modality as a second category (DICOM's code).
PRIORITY_SYSTEM = "urn:imaging-pipeline:priority"
# Observation components: where the finding is (normalised "x0 y0 x1 y1", DCM 111030 Image
# Region) and each rule that fired for it.
REGION_CODE = ("111030", "Image Region")
RULE_CODE_SYSTEM = "urn:imaging-pipeline:rule"
# Priority -> v3 ObservationInterpretation: critical findings are "critical abnormal".
INTERPRETATION = {
    "routine": ("N", "Normal"),
    "urgent": ("A", "Abnormal"),
    "critical": ("AA", "Critical abnormal"),
}
_NAMESPACE = uuid.UUID("5b0c8f0e-2f7d-4c59-9d55-8a3f3c9f1e21")  # fullUrls stable per identifier


@dataclass(frozen=True)
class InstanceInfo:
    """What the bundle needs from the DICOM header (the patient id goes to FHIR only)."""

    study_uid: str
    series_uid: str
    instance_uid: str
    sop_class_uid: str
    modality: str
    series_number: int | None = None
    instance_number: int | None = None
    series_description: str | None = None
    study_datetime: str | None = None  # FHIR dateTime
    content_datetime: str | None = None  # FHIR dateTime of acquisition/content
    patient_id: str | None = None
    patient_id_issuer: str | None = None


def dicom_datetime(
    date: str | None, time: str | None = None, offset: str | None = None
) -> str | None:
    """DICOM DA/TM (+ TimezoneOffsetFromUTC) to FHIR dateTime.

    FHIR requires a zone with a time; without an offset in the instance we do not guess one and
    keep the date only.
    """
    date = (date or "").strip()
    if len(date) != 8 or not date.isdigit():
        return None
    out = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    time, offset = (time or "").strip(), (offset or "").strip()
    if (
        offset
        and len(offset) == 5
        and offset[0] in "+-"
        and offset[1:].isdigit()
        and len(time) >= 2
        and time[:2].isdigit()
    ):
        digits = time.split(".")[0]
        hh, mm, ss = digits[:2], digits[2:4] or "00", digits[4:6] or "00"
        out += f"T{hh}:{mm}:{ss}{offset[:3]}:{offset[3:]}"
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def instance_info(dataset: Any) -> InstanceInfo:
    """Read the header fields from a pydicom Dataset."""

    def text(keyword: str) -> str | None:
        value = dataset.get(keyword)
        return str(value).strip() or None if value is not None else None

    offset = text("TimezoneOffsetFromUTC")
    content_date = text("ContentDate") or text("AcquisitionDate") or text("SeriesDate")
    content_time = text("ContentTime") or text("AcquisitionTime") or text("SeriesTime")
    return InstanceInfo(
        study_uid=str(dataset.StudyInstanceUID),
        series_uid=str(dataset.SeriesInstanceUID),
        instance_uid=str(dataset.SOPInstanceUID),
        sop_class_uid=str(dataset.SOPClassUID),
        modality=(text("Modality") or "OT").upper(),
        series_number=_int(dataset.get("SeriesNumber")),
        instance_number=_int(dataset.get("InstanceNumber")),
        series_description=text("SeriesDescription"),
        study_datetime=dicom_datetime(text("StudyDate"), text("StudyTime"), offset),
        content_datetime=dicom_datetime(content_date, content_time, offset),
        patient_id=text("PatientID"),
        patient_id_issuer=text("IssuerOfPatientID"),
    )


def _urn(system: str, value: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{system}|{value}')}"


def _identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def _search(system: str, value: str) -> str:
    # Percent-encoded: our values contain "+" (e.g. "1.0+tesseract-5.3.0"), which a query
    # string would otherwise decode to a space, so the match would fail and duplicate.
    return f"identifier={quote(system, safe=':/')}|{quote(value, safe=':/')}"


def study_identifier_value(study_uid: str) -> str:
    return f"urn:oid:{study_uid}"


def report_identifier_value(instance_uid: str, analyzer: str, version: str) -> str:
    return f"{instance_uid}/{analyzer}/{version}"


def _subject(info: InstanceInfo, patient_system: str) -> dict[str, Any]:
    if not info.patient_id:
        return {"display": "unidentified patient"}
    identifier: dict[str, Any] = _identifier(patient_system, info.patient_id)
    if info.patient_id_issuer:
        identifier["assigner"] = {"display": info.patient_id_issuer}
    return {"type": "Patient", "identifier": identifier}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def merge_imaging_study(
    existing: Mapping[str, Any] | None, info: InstanceInfo, subject: Mapping[str, Any]
) -> dict[str, Any]:
    """The ImagingStudy with this series and instance added (other series/instances kept)."""
    study: dict[str, Any] = (
        _with_instances(existing, list)
        if existing
        else {
            "resourceType": "ImagingStudy",
            "status": "available",
            "identifier": [_identifier(DICOM_UID_SYSTEM, study_identifier_value(info.study_uid))],
        }
    )
    for key in ("meta", "text"):
        study.pop(key, None)
    study.setdefault("subject", dict(subject))
    if info.study_datetime and "started" not in study:
        study["started"] = info.study_datetime
    series_list: list[dict[str, Any]] = study.setdefault("series", [])
    series = next((s for s in series_list if s.get("uid") == info.series_uid), None)
    if series is None:
        series = {"uid": info.series_uid, "modality": _coding(DCM_SYSTEM, info.modality)}
        if info.series_number is not None:
            series["number"] = info.series_number
        if info.series_description:
            series["description"] = info.series_description
        series_list.append(series)
    instances: list[dict[str, Any]] = series.setdefault("instance", [])
    if not any(i.get("uid") == info.instance_uid for i in instances):
        instance: dict[str, Any] = {
            "uid": info.instance_uid,
            "sopClass": _coding(SOP_CLASS_SYSTEM, f"urn:oid:{info.sop_class_uid}"),
        }
        if info.instance_number is not None:
            instance["number"] = info.instance_number
        instances.append(instance)
    series["numberOfInstances"] = len(instances)
    modalities = {s["modality"]["code"]: s["modality"] for s in series_list if "modality" in s}
    study["modality"] = [modalities[k] for k in sorted(modalities)]
    study["numberOfSeries"] = len(series_list)
    study["numberOfInstances"] = sum(len(s.get("instance", [])) for s in series_list)
    return study


def _with_instances(
    study: Mapping[str, Any], change: Callable[[list[Any]], list[Any]]
) -> dict[str, Any]:
    """A copy of the study down to each series' instance list, that list replaced by
    `change(list)`; the instances and everything else are shared. `merge_imaging_study` changes
    only what this copies: a deep copy of a large study (hundreds of instances) cost more than
    the rest of the merge."""
    copied = dict(study)
    series = copied.get("series")
    if isinstance(series, list):
        copied["series"] = [_series_with(one, change) for one in series]
    return copied


def _series_with(series: Any, change: Callable[[list[Any]], list[Any]]) -> Any:
    if not isinstance(series, Mapping):
        return series
    copied = dict(series)
    if isinstance(copied.get("instance"), list):
        copied["instance"] = change(copied["instance"])
    return copied


@dataclass(frozen=True)
class AnalyzerIdentity:
    name: str
    version: str


@dataclass(frozen=True)
class StructuredReport:
    """The DICOM SR stored for this analysis: listed in the ImagingStudy (its own series) and
    referenced by the DiagnosticReport (identifier and presentedForm)."""

    series_uid: str
    instance_uid: str
    sop_class_uid: str
    series_number: int
    instance_number: int
    series_description: str
    url: str  # WADO-RS URL of the instance


def analyzed_instance_value(instance_uid: str, analyzer: str) -> str:
    return f"{instance_uid}/{analyzer}"


def _sr_instance_info(info: InstanceInfo, sr: StructuredReport) -> InstanceInfo:
    return InstanceInfo(
        study_uid=info.study_uid,
        series_uid=sr.series_uid,
        instance_uid=sr.instance_uid,
        sop_class_uid=sr.sop_class_uid,
        modality="SR",
        series_number=sr.series_number,
        instance_number=sr.instance_number,
        series_description=sr.series_description,
    )


def _conclusion(assessment: Assessment, findings: Sequence[Finding]) -> str:
    if not findings:
        return f"Priority {assessment.priority}: no findings."
    parts = [f"{f.description} ({f.score:.2f})" for f in findings]
    rules = sorted({m.rule.name for m in assessment.matches})
    text = f"Priority {assessment.priority}: " + "; ".join(parts) + "."
    return text + (f" Rules: {', '.join(rules)}." if rules else "")


def build_transaction(
    info: InstanceInfo,
    findings: Sequence[Finding],
    assessment: Assessment,
    analyzer: AnalyzerIdentity,
    *,
    patient_system: str,
    existing_study: Mapping[str, Any] | None = None,
    issued: str | None = None,
    structured_report: StructuredReport | None = None,
) -> dict[str, Any]:
    """The transaction bundle for one instance (plain JSON, validated by `validate_bundle`)."""
    subject = _subject(info, patient_system)
    device_value = f"{analyzer.name}/{analyzer.version}"
    device_url = _urn(DEVICE_IDENTIFIER_SYSTEM, device_value)
    study_value = study_identifier_value(info.study_uid)
    study_url = _urn(DICOM_UID_SYSTEM, study_value)
    report_value = report_identifier_value(info.instance_uid, analyzer.name, analyzer.version)
    report_url = _urn(REPORT_IDENTIFIER_SYSTEM, report_value)

    device = {
        "resourceType": "Device",
        "identifier": [_identifier(DEVICE_IDENTIFIER_SYSTEM, device_value)],
        "status": "active",
        "deviceName": [{"name": analyzer.name, "type": "model-name"}],
        "version": [{"value": analyzer.version}],
    }
    study = merge_imaging_study(existing_study, info, subject)
    if structured_report is not None:
        study = merge_imaging_study(study, _sr_instance_info(info, structured_report), subject)
    entries: list[dict[str, Any]] = [
        _put(device_url, device, DEVICE_IDENTIFIER_SYSTEM, device_value),
        _study_entry(study_url, study, study_value, existing_study),
    ]
    effective = info.content_datetime or info.study_datetime
    observation_urls: list[str] = []
    for finding in findings:
        value = f"{report_value}/{finding.kind}/{finding.description}"
        url = _urn(OBSERVATION_IDENTIFIER_SYSTEM, value)
        code, display = INTERPRETATION[assessment.priority_of(finding)]
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "identifier": [_identifier(OBSERVATION_IDENTIFIER_SYSTEM, value)],
            "status": "preliminary",
            "category": [{"coding": [_coding(CATEGORY_SYSTEM, "imaging", "Imaging")]}],
            "code": {
                "coding": [_coding(FINDING_CODE_SYSTEM, finding.kind)],
                "text": finding.description,
            },
            "subject": subject,
            "valueQuantity": {
                "value": round(finding.score, 4),
                "unit": "score",
                "system": "http://unitsofmeasure.org",
                "code": "1",
            },
            "interpretation": [{"coding": [_coding(INTERPRETATION_SYSTEM, code, display)]}],
            "device": {"reference": device_url},
            "derivedFrom": [{"reference": study_url}],
        }
        components = _finding_components(finding, assessment)
        if components:
            observation["component"] = components
        if effective:
            observation["effectiveDateTime"] = effective
        entries.append(_put(url, observation, OBSERVATION_IDENTIFIER_SYSTEM, value))
        observation_urls.append(url)

    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": [
            _identifier(REPORT_IDENTIFIER_SYSTEM, report_value),
            _identifier(
                ANALYZED_INSTANCE_SYSTEM, analyzed_instance_value(info.instance_uid, analyzer.name)
            ),
        ],
        "status": "preliminary",
        "category": [
            {"coding": [_coding(DIAGNOSTIC_SERVICE_SYSTEM, "RAD", "Radiology")]},
            {"coding": [_coding(DCM_SYSTEM, info.modality)]},
        ],
        "code": {"coding": [_coding(LOINC_SYSTEM, *REPORT_LOINC)], "text": REPORT_LOINC[1]},
        "subject": subject,
        "imagingStudy": [{"reference": study_url}],
        "result": [{"reference": u} for u in observation_urls],
        "conclusion": _conclusion(assessment, findings),
        "conclusionCode": [
            {"coding": [_coding(PRIORITY_SYSTEM, assessment.priority, assessment.priority)]}
        ],
    }
    if effective:
        report["effectiveDateTime"] = effective
    if issued:
        report["issued"] = issued
    if not observation_urls:
        del report["result"]
    if structured_report is not None:
        sr = structured_report
        report["identifier"].append(
            _identifier(DICOM_UID_SYSTEM, study_identifier_value(sr.instance_uid))
        )
        report["presentedForm"] = [
            {"contentType": "application/dicom", "url": sr.url, "title": SR_TITLE}
        ]
    entries.append(_put(report_url, report, REPORT_IDENTIFIER_SYSTEM, report_value))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _finding_components(finding: Finding, assessment: Assessment) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = []
    if finding.box is not None:
        components.append(
            {
                "code": {"coding": [_coding(DCM_SYSTEM, *REGION_CODE)]},
                "valueString": " ".join(f"{v:.4f}" for v in finding.box),
            }
        )
    for rule in sorted({m.rule.name for m in assessment.matches if m.finding is finding}):
        components.append(
            {
                "code": {"coding": [_coding(RULE_CODE_SYSTEM, rule)], "text": "rule fired"},
                "valueString": rule,
            }
        )
    return components


def _study_entry(
    full_url: str, study: dict[str, Any], value: str, existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The study is read, merged and written back, guarded against concurrent writers.

    Instances of one study are processed in parallel. A new study is a conditional create
    (`ifNoneExist`): if another instance created it first, the server returns that one
    unchanged (status 200, see `study_was_created`) and the caller retries to merge. An
    existing study is updated by id with `ifMatch` on the version read, so a concurrent update
    makes the server answer 412, which is transient: the redelivery merges on fresh data.
    """
    if existing is None or "id" not in existing:
        request = {
            "method": "POST",
            "url": "ImagingStudy",
            "ifNoneExist": _search(DICOM_UID_SYSTEM, value),
        }
    else:
        request = {"method": "PUT", "url": f"ImagingStudy/{existing['id']}"}
        version = existing.get("meta", {}).get("versionId")
        if version:
            request["ifMatch"] = f'W/"{version}"'
    return {"fullUrl": full_url, "resource": study, "request": request}


def _put(full_url: str, resource: dict[str, Any], system: str, value: str) -> dict[str, Any]:
    kind = resource["resourceType"]
    request = {"method": "PUT", "url": f"{kind}?{_search(system, value)}"}
    return {"fullUrl": full_url, "resource": resource, "request": request}


def validate_bundle(bundle: Mapping[str, Any]) -> None:
    """Validate the bundle, and with it every resource, with the R4B models; never send an
    invalid one. Each entry's resource is validated as its own resource type first, and the
    Bundle then with those models in place (a third less CPU than the Bundle's own dispatch on
    `resourceType`, which validates the same); errors name `entry.N.resource.<field>` either
    way."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    entries = bundle.get("entry")
    fields: set[str] = set()
    models: list[Any] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        model_class = _resource_class(resource)
        if model_class is None:
            models.append(entry)  # the Bundle's validation says what is wrong with it
            continue
        if isinstance(resource, Mapping):
            resource = _with_part_models(model_class.__name__, resource)
        try:
            model = model_class.model_validate(resource)
        except (ValidationError, ValueError) as exc:
            fields |= _error_fields(exc, ("entry", index, "resource"))
            models.append(entry)
        else:
            models.append({**entry, "resource": model})
    try:
        checked = {**bundle, "entry": models} if isinstance(entries, list) else bundle
        get_fhir_model_class("Bundle").model_validate(checked)
    except (ValidationError, KeyError, ValueError) as exc:
        fields |= _error_fields(exc, ())
    if fields:
        raise PermanentError("invalid_fhir", f"fields: {', '.join(sorted(fields))}")


def _with_part_models(type_name: str, resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """The resource with each complex element (an object, or a list of objects) that validated
    before in the same field of the same resource type as its model. An event's resources
    repeat most elements of the events before (codes, categories, the subject, the device, the
    study's identifiers): 20 of 28 on the bench's mix, validation 0.93 -> 0.76 ms. An element
    that does not validate stays as it is, for the resource's validation to name (the same
    paths). ImagingStudy.series grows with every event of its series: its instances are
    reused one by one instead."""
    if type_name == "ImagingStudy":
        resource = _with_instance_models(resource)
    parts = dict(resource)
    for alias, value in resource.items():
        if alias == "series" and type_name == "ImagingStudy":
            continue
        if isinstance(value, dict) or (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        ):
            parts[alias] = _part_model(type_name, alias, value)
    return parts


def _part_model(type_name: str, alias: str, value: Any) -> Any:
    try:
        key = _JSON_KEY.encode(value)
    except (TypeError, ValueError):  # not plain JSON: validated with the resource
        return value
    model = _validated_part(type_name, alias, key)
    return value if model is None else model


@functools.lru_cache(maxsize=4096)
def _validated_part(type_name: str, alias: str, key: str) -> Any:
    """The model(s) of one element of a resource, by the resource type, the element's name and
    its JSON; None when invalid or not an element of that type. Models are never changed after
    validation, so threads can share them."""
    adapter = _element_adapter(type_name, alias)
    if adapter is None:
        return None
    try:
        return adapter.validate_python(json.loads(key))
    except ValueError:  # pydantic's ValidationError included
        return None


@functools.lru_cache(maxsize=512)
def _element_adapter(type_name: str, alias: str) -> Any:
    """A validator of one element as the resource's own validation checks it: the field's type
    (complex types are models with their own configuration); None for a field with
    constraints of its own, or no such field."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import TypeAdapter

    for name, field in get_fhir_model_class(type_name).model_fields.items():
        if (field.alias or name) == alias:
            if field.metadata or field.annotation is None:
                return None
            return TypeAdapter(field.annotation)
    return None


def _with_instance_models(study: Mapping[str, Any]) -> Mapping[str, Any]:
    """The study with each series instance that validated before as its model. A study is read,
    merged and written back on every event of its series, so each event would otherwise
    validate every instance listed so far again (a 500-instance series: 16 ms an event, growing
    with the series). An instance that does not validate stays as it is, for the study's
    validation to name (the same paths)."""
    return _with_instances(study, lambda instances: [_instance_model(i) for i in instances])


def _instance_model(instance: Any) -> Any:
    if not isinstance(instance, Mapping):
        return instance
    try:
        key = _JSON_KEY.encode(instance)
    except (TypeError, ValueError):  # not plain JSON: validated with the study
        return instance
    return _validated_instance(key) or instance


# One encoder (json.dumps with options builds one a call). Keys keep the dict's order: the same
# element in another order is only a cache miss, and sorting doubled the cost.
_JSON_KEY = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


@functools.lru_cache(maxsize=4096)
def _validated_instance(key: str) -> Any:
    """The R4B model of one ImagingStudy.series.instance, by its JSON; None when invalid.
    Models are never changed after validation, so threads can share them."""
    from fhir.resources.R4B.imagingstudy import ImagingStudySeriesInstance

    try:
        return ImagingStudySeriesInstance.model_validate(json.loads(key))
    except ValueError:  # pydantic's ValidationError included
        return None


def _resource_class(resource: object) -> Any:
    """The R4B model of a resource's `resourceType`, or None (not a resource, unknown type)."""
    from fhir.resources.R4B import get_fhir_model_class

    if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
        return None
    try:
        return get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError):
        return None


def _error_fields(exc: Exception, prefix: tuple[object, ...]) -> set[str]:
    """The field paths of a validation error, never its values (they can be PHI)."""
    errors = getattr(exc, "errors", None)
    found = {".".join(map(str, (*prefix, *e["loc"]))) for e in errors()} if errors else set()
    return found or {type(exc).__name__}
