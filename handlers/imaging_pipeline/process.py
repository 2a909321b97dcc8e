"""The processor: one DICOM store notification in, analysis, FHIR and alerts out.

    parse event -> store check -> action filter -> modality filter -> WADO-RS retrieve
      -> SOP class filter -> render -> analyze -> rules -> DICOM SR (STOW-RS)
      -> FHIR transaction -> critical alert

Permanent failures (bad input, unsupported objects) return an `Outcome`: the glue in
`process_entry` answers 200 and Pub/Sub drops the message. Transient failures raise: it answers
500, Pub/Sub retries with backoff and dead-letters after the configured attempts.

Heavy libraries (numpy, pydicom, PIL, dicomweb-client, google clients, fhir.resources) are
imported inside the functions that use them, so a cold start imports only this light module.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from imaging_pipeline import logs
from imaging_pipeline.adapters.dicomweb import WadoReader
from imaging_pipeline.adapters.fhir_client import FhirClient
from imaging_pipeline.adapters.http import PerThreadSession
from imaging_pipeline.analysis import AnalyzerRouter
from imaging_pipeline.analysis.base import Analyzer, Finding, SourceAnalyzer
from imaging_pipeline.critical_findings import Alert, publish_alert
from imaging_pipeline.errors import PermanentError, PipelineError, TransientError
from imaging_pipeline.events import InstanceEvent, check_store, message_id, parse_event
from imaging_pipeline.fhir.mapping import (
    ANALYZED_INSTANCE_SYSTEM,
    DICOM_UID_SYSTEM,
    AnalyzerIdentity,
    StructuredReport,
    analyzed_instance_value,
    build_transaction,
    instance_info,
    report_identifier_value,
    study_identifier_value,
    validate_bundle,
)
from imaging_pipeline.ports import DicomwebReader, FhirStore
from imaging_pipeline.rules import Assessment, assess
from imaging_pipeline.runtime_env import ProcessorConfig
from imaging_pipeline.sop_filter import check_modality, check_sop_class
from imaging_pipeline.telemetry import (
    IGNORE_REASONS,
    SKIP_REASONS,
    UNEXPECTED_ERROR,
    Event,
    transient_reason,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from imaging_pipeline.render import RenderedImage
    from imaging_pipeline.settings import PipelineSettings

logger = logging.getLogger("imaging_pipeline.process")
# highdicom logs several INFO lines per SR (which attributes it copies, from which SOP Instance
# UID): CPU on every event and identifiers in the logs. Its warnings and errors still come.
logging.getLogger("highdicom").setLevel(logging.WARNING)
# Every event ends with one log line whose `event` comes from the telemetry contract; the
# log-based metrics of modules/observability.py count them (labels `modality`, `reason`).
_EVENT_OF_STATUS = {
    "processed": Event.INSTANCE_PROCESSED,
    "skipped": Event.INSTANCE_SKIPPED,
    "ignored": Event.INSTANCE_SKIPPED,
    "failed": Event.INSTANCE_FAILED,
}

OutcomeStatus = Literal["processed", "skipped", "ignored", "failed"]


@dataclass
class Outcome:
    status: OutcomeStatus
    reason: str | None = None
    modality: str | None = None
    priority: str | None = None
    report: str | None = None
    findings: list[Finding] = field(default_factory=list)
    created: int = 0  # FHIR resources newly created (0 on a redelivery)
    alert_message_id: str | None = None


def analyze_dataset(
    dataset: Dataset, settings: PipelineSettings, analyzer: Analyzer
) -> tuple[RenderedImage, list[Finding], Assessment]:
    """Render -> analyze -> rules for one pydicom Dataset (shared with `imaging analyze`)."""
    from imaging_pipeline.render import RenderOptions, RenderRejected, render_dataset

    try:
        image = render_dataset(
            dataset, RenderOptions(max_size=settings.render.max_size, format=settings.render.format)
        )
    except RenderRejected as exc:
        raise PermanentError("unrenderable", f"{exc.reason.value}: {exc.detail}") from None
    findings = analyzer.analyze(image)
    return image, findings, assess(findings, settings.rules)


class Processor:
    """Holds the clients for the life of a function instance (connection reuse across events).

    One instance serves concurrent requests on threads: what is shared is immutable after
    construction (config, analyzers) or per thread (HTTP sessions)."""

    def __init__(
        self,
        config: ProcessorConfig,
        *,
        dicomweb: DicomwebReader | None = None,
        analyzer: Analyzer | None = None,
        fhir: FhirStore | None = None,
    ) -> None:
        self.config = config
        # Shared by the request threads: a WadoReader's sessions are per thread.
        self._dicomweb = dicomweb or WadoReader(config.dicomweb_url)
        # An injected analyzer (tests, tools) serves every modality; else the routes decide.
        self.analyzer = analyzer
        self.router = AnalyzerRouter(
            config.pipeline,
            vision_endpoint=config.vision_endpoint,
            vertex_api_base=config.vertex_endpoint,
        )
        self.fhir: FhirStore = fhir or FhirClient(config.fhir_base_url)
        self._stow_sessions = PerThreadSession(config.dicomweb_url)

    @property
    def dicomweb(self) -> DicomwebReader:
        return self._dicomweb

    def _skip_own_sr_series(self, event: InstanceEvent) -> None:
        """Our own SRs, known by their series UID (derived from the study and the analyzer's
        name), skip before retrieval: the store's legacy notification config sends no
        `modality` attribute for the subscription filter to drop them by."""
        from imaging_pipeline.sr.uids import sr_series_uid

        names = {self.analyzer.name} if self.analyzer is not None else self.router.names
        if any(event.series_uid == sr_series_uid(event.study_uid, n) for n in names):
            raise PermanentError("unsupported_sop_class", "our own DICOM SR series")

    def analyzer_for(self, modality: str | None) -> Analyzer:
        """The modality's analyzer; PermanentError('not_analyzed') when its route is `none`."""
        analyzer = self.analyzer or self.router.for_modality(modality)
        if analyzer is None:
            raise PermanentError("not_analyzed", f"modality {modality} is routed to none")
        return analyzer

    def handle(self, event: InstanceEvent) -> Outcome:
        """Process one parsed event; raises PermanentError or TransientError on failure."""
        from imaging_pipeline.adapters.dicomweb import retrieve_instance

        settings = self.config.pipeline
        check_store(event, self.config.dicom_store)
        if not event.is_new_instance:
            return Outcome("ignored", reason="not_a_new_instance")
        check_modality(event.modality_hint, settings.modalities)
        if event.modality_hint:
            self.analyzer_for(event.modality_hint)  # a `none` route skips before retrieval
        self._skip_own_sr_series(event)

        dataset = retrieve_instance(self.dicomweb, event)
        logs.register_dataset_phi(dataset)
        modality = str(dataset.get("Modality") or "").strip().upper() or None
        try:
            outcome = self._analyze_and_record(event, dataset)
        except PipelineError as exc:
            exc.modality = modality
            raise
        outcome.modality = modality
        return outcome

    def _analyze_and_record(self, event: InstanceEvent, dataset: Dataset) -> Outcome:
        settings = self.config.pipeline
        if str(dataset.get("SOPInstanceUID", "")) != event.instance_uid:
            raise PermanentError("invalid_dicom", "SOP Instance UID differs from the event")
        check_sop_class(dataset.get("SOPClassUID"))
        check_modality(dataset.get("Modality"), settings.modalities)
        analyzer = self.analyzer_for(str(dataset.get("Modality") or ""))

        image: RenderedImage | None = None
        if isinstance(analyzer, SourceAnalyzer) and analyzer.reads_source:
            # The model reads the instance itself: nothing to render here.
            findings = analyzer.analyze_source(self._instance_url(event))
            assessment = assess(findings, settings.rules)
        else:
            image, findings, assessment = analyze_dataset(dataset, settings, analyzer)
        info = instance_info(dataset)

        existing = self.fhir.search_by_identifier(
            "ImagingStudy", DICOM_UID_SYSTEM, study_identifier_value(info.study_uid)
        )
        identity = AnalyzerIdentity(analyzer.name, analyzer.version)
        structured_report = (
            self._store_sr(dataset, image, findings, assessment, identity, existing)
            if settings.structured_report
            else None
        )
        bundle = build_transaction(
            info,
            findings,
            assessment,
            identity,
            patient_system=settings.fhir.patient_identifier_system,
            existing_study=existing[0] if existing else None,
            issued=datetime.now(UTC).isoformat(timespec="seconds"),
            structured_report=structured_report,
        )
        validate_bundle(bundle)
        outcomes = self.fhir.transaction(bundle)
        if not existing and not outcomes[1].created:
            # Another instance of this study created it between our read and our write: the
            # study entry did not include this instance. Retry to merge (the rest is idempotent).
            raise TransientError("fhir", "study created concurrently; merge on redelivery")
        report = outcomes[-1].reference
        outcome = Outcome(
            "processed",
            priority=assessment.priority,
            report=report,
            findings=findings,
            created=sum(o.created for o in outcomes),
        )
        if assessment.critical:
            outcome.alert_message_id = publish_alert(
                self.config.alerts_topic,
                Alert(
                    report=report,
                    report_identifier=report_identifier_value(
                        info.instance_uid, identity.name, identity.version
                    ),
                    study_uid=info.study_uid,
                    series_uid=info.series_uid,
                    instance_uid=info.instance_uid,
                    modality=info.modality,
                    environment=self.config.environment,
                    matches=assessment.critical,
                ),
            )
        return outcome

    def _instance_url(self, event: InstanceEvent) -> str:
        return (
            f"{self.config.dicomweb_url}/studies/{event.study_uid}"
            f"/series/{event.series_uid}/instances/{event.instance_uid}"
        )

    def _store_sr(
        self,
        dataset: Any,
        image: RenderedImage | None,
        findings: list[Finding],
        assessment: Assessment,
        identity: AnalyzerIdentity,
        existing_studies: list[dict[str, Any]],
    ) -> StructuredReport | None:
        """Build the SR (TID 1500) and STOW-RS it into the source's study, before FHIR
        references it; a redelivery stores the same UIDs again ("already exists" is success)."""
        from imaging_pipeline.adapters.sr_store import store_sr
        from imaging_pipeline.sr.build import (
            build_sr,
            fhir_reference,
            source_geometry,
            source_image,
            sr_identity,
            wado_url,
        )

        ids = sr_identity(str(dataset.StudyInstanceUID), str(dataset.SOPInstanceUID), identity)
        predecessors = self._earlier_srs(dataset, identity.name, ids.series_uid, existing_studies)
        try:
            sr = build_sr(
                dataset,
                source_image(image) if image is not None else source_geometry(dataset),
                findings,
                assessment,
                identity,
                predecessors=predecessors,
            )
            store_sr(self._stow_sessions.get(), self.config.dicomweb_url, sr)
        except (PermanentError, ValueError, TypeError, AttributeError) as exc:
            # A source highdicom cannot turn into an SR (such as a vendor's private image class,
            # not in its IOD tables), or a store that refuses it: the SR is lost, but the FHIR
            # results and a critical finding's alert must still go out.
            # Transient STOW failures are raised (retry); these would fail on every retry.
            logs.log_event(
                logger,
                logging.WARNING,
                "structured report not stored",
                event=Event.STRUCTURED_REPORT_NOT_STORED,
                instance_uid=str(dataset.SOPInstanceUID),
                reason=getattr(exc, "reason", "sr_not_built"),
                detail=getattr(exc, "detail", type(exc).__name__),
            )
            return None
        return fhir_reference(sr, wado_url(self.config.dicomweb_url, sr))

    def _earlier_srs(
        self,
        dataset: Any,
        analyzer_name: str,
        sr_series_uid: str,
        existing_studies: list[dict[str, Any]],
    ) -> list[str]:
        """SOP Instance UIDs of the SRs earlier analyzer versions wrote for this instance.

        Only looked up when the study already lists this analyzer's SR series (otherwise there
        is none, and the common first analysis costs no extra request).
        """
        if not any(
            s.get("uid") == sr_series_uid for st in existing_studies for s in st.get("series", [])
        ):
            return []
        reports = self.fhir.search_by_identifier(
            "DiagnosticReport",
            ANALYZED_INSTANCE_SYSTEM,
            analyzed_instance_value(str(dataset.SOPInstanceUID), analyzer_name),
        )
        prefix = study_identifier_value("")
        return sorted(
            {
                i["value"].removeprefix(prefix)
                for r in reports
                for i in r.get("identifier", [])
                if i.get("system") == DICOM_UID_SYSTEM and i.get("value", "").startswith(prefix)
            }
        )


def _log_outcome(
    event: InstanceEvent | None,
    result: Outcome | None,
    started: float,
    level: int = logging.INFO,
    **extra: Any,
) -> None:
    fields: dict[str, Any] = {
        "event": _EVENT_OF_STATUS[result.status] if result else Event.INSTANCE_RETRY,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if event is not None:
        fields.update(
            study_uid=event.study_uid,
            series_uid=event.series_uid,
            instance_uid=event.instance_uid,
            modality=event.modality_hint,
        )
    if result is not None:
        if result.modality:
            fields["modality"] = result.modality
        fields.update(
            outcome=result.status,
            reason=result.reason,
            priority=result.priority,
            report=result.report,
            findings=[f.as_dict() for f in result.findings],
            fhir_created=result.created,
        )
    fields.update(extra)
    logs.log_event(
        logger,
        level,
        f"instance {fields.get('outcome', 'unknown')}",
        **{k: v for k, v in fields.items() if v is not None},
    )


def handle_event_data(
    processor: Processor, data: Any, trace: tuple[str, str] | None = None
) -> Outcome:
    """Classify and log the result of one event; raise only transient failures."""
    started = time.perf_counter()
    event: InstanceEvent | None = None
    log = functools.partial(_log_outcome, message_id=message_id(data))
    with logs.event_context(trace, processor.config.project_id):
        try:
            event = parse_event(data)
            outcome = processor.handle(event)
        except PermanentError as exc:
            status: OutcomeStatus = (
                "skipped"
                if exc.reason in SKIP_REASONS
                else "ignored"
                if exc.reason in IGNORE_REASONS
                else "failed"
            )
            outcome = Outcome(status, reason=exc.reason, modality=exc.modality)
            log(
                event,
                outcome,
                started,
                logging.INFO if status == "skipped" else logging.WARNING,
                detail=exc.detail,
            )
            return outcome
        except TransientError as exc:
            log(
                event,
                None,
                started,
                logging.ERROR,
                outcome="retry",
                reason=transient_reason(exc.dependency),
                detail=exc.detail,
                **({"modality": exc.modality} if exc.modality else {}),
            )
            raise
        except Exception as exc:
            # Unknown errors are retried (and dead-lettered) rather than acknowledged: losing
            # an instance silently is worse than a message in the dead-letter topic. The
            # traceback is logged here, scrubbed; what propagates to functions-framework (which
            # logs it again, outside our PHI scrubbing) carries the exception type only.
            logger.exception(
                "unexpected error",
                extra={
                    "fields": {
                        "event": Event.INSTANCE_RETRY,
                        "outcome": "retry",
                        "reason": UNEXPECTED_ERROR,
                        "message_id": message_id(data),
                        **({"instance_uid": event.instance_uid} if event else {}),
                    }
                },
            )
            raise TransientError("processor", f"unexpected {type(exc).__name__}") from None
        log(
            event,
            outcome,
            started,
            logging.WARNING if outcome.priority == "critical" else logging.INFO,
        )
        return outcome
