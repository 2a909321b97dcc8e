"""The review app's routes (Flask): worklist, study page, review, operations, replay.

Pages are server-rendered; htmx swaps fragments (worklist filters and paging, the review panel,
the replay result). Every request is authenticated first (auth.py); every response is logged as
one JSON line with the route, the path (ids and UIDs only, never names), status and duration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, redirect, render_template, request, url_for

from imaging_pipeline import logs
from imaging_pipeline.adapters import dead_letters
from imaging_pipeline.errors import PermanentError, TransientError
from imaging_pipeline.review.auth import IAP_HEADER, LOCAL_IDENTITY, IapVerifier, Unauthorized
from imaging_pipeline.review.config import ReviewConfig
from imaging_pipeline.review.fhir_store import NotFoundError, ReviewFhir
from imaging_pipeline.review.images import CT_PRESETS, DicomSource
from imaging_pipeline.review.operations import (
    LogFileOutcomes,
    MonitoringOutcomes,
    NoOutcomes,
    OutcomeSource,
    now_utc,
)
from imaging_pipeline.review.review import ReviewConflictError, submit_review
from imaging_pipeline.review.study import load_study
from imaging_pipeline.review.worklist import (
    MODALITIES,
    PRIORITIES,
    WorklistIndex,
    WorklistQuery,
)

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("imaging_pipeline.review")
ACCESS_EVENT = "http_request"
UID = r"[0-9.]{1,64}"
DEAD_LETTER_PAGE = 200
SECURITY_HEADERS = {
    # Every asset is ours (no CDN): a hospital network may block third parties, and a CSP
    # of 'self' keeps injected markup inert.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Services:
    fhir: ReviewFhir
    dicom: DicomSource
    outcomes: OutcomeSource
    index: WorklistIndex
    subscriber: Any = None
    publisher: Any = None

    def pubsub(self) -> tuple[Any, Any]:
        if self.subscriber is None:
            self.subscriber = dead_letters.subscriber_client()
            self.publisher = dead_letters.publisher_client()
        return self.subscriber, self.publisher


def default_services(config: ReviewConfig) -> Services:
    outcomes: OutcomeSource
    if config.outcome_log:
        outcomes = LogFileOutcomes(config.outcome_log)
    elif config.monitoring_project:
        outcomes = MonitoringOutcomes(config.monitoring_project, config.metric_prefix)
    else:
        outcomes = NoOutcomes()
    fhir = ReviewFhir(config.fhir_base_url)
    index = WorklistIndex(fhir, refresh_s=config.worklist_refresh_s)
    return Services(fhir, DicomSource(config.dicomweb_url), outcomes, index)


def _valid_uid(value: str) -> str:
    if not (0 < len(value) <= 64 and all(c.isdigit() or c == "." for c in value)):
        abort(404)
    return value


def create_app(config: ReviewConfig, services: Services | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        # Not /static: functions-framework's own Flask app claims that path before ours runs.
        static_url_path="/assets",
    )
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    svc = services or default_services(config)
    verifier = None if config.local else IapVerifier(config.iap_audience, config.iap_certs_url)

    @app.before_request
    def authenticate() -> Response | None:
        g.started = time.perf_counter()
        if verifier is None:
            g.identity = LOCAL_IDENTITY
            return None
        try:
            g.identity = verifier.verify(request.headers.get(IAP_HEADER))
        except Unauthorized as exc:
            g.auth_failure = str(exc)
            return Response("401 Unauthorized\n", status=401, mimetype="text/plain")
        return None

    @app.before_request
    def same_origin_posts() -> Response | None:
        # IAP authenticates with a cookie, so a cross-site form could ride on it: state changes
        # need htmx's header, which another site cannot set without CORS (we allow none).
        if request.method == "POST" and request.headers.get("HX-Request") != "true":
            return Response("403 Forbidden: use the page's controls\n", 403, mimetype="text/plain")
        return None

    @app.after_request
    def finish(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html" or request.path.startswith(("/image/", "/sr/")):
            response.headers["Cache-Control"] = "no-store"  # patient data stays off disks
        started = getattr(g, "started", time.perf_counter())
        fields: dict[str, Any] = {
            "event": ACCESS_EVENT,
            "method": request.method,
            "route": request.endpoint,
            "path": request.path,  # ids and UIDs only: names never appear in our URLs
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if getattr(g, "auth_failure", None):
            fields["auth_failure"] = g.auth_failure
        logs.log_event(logger, logging.INFO, "request", **fields)
        return response

    @app.errorhandler(TransientError)
    def unavailable(exc: TransientError) -> tuple[str, int]:
        return render_template("error.html", message=f"{exc.dependency} is unavailable"), 503

    @app.errorhandler(NotFoundError)
    def not_found(exc: NotFoundError) -> tuple[str, int]:
        return render_template("error.html", message="No such report."), 404

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"config": config, "identity": g.get("identity", LOCAL_IDENTITY)}

    @app.get("/")
    def home() -> Any:
        return redirect(url_for("worklist"))

    @app.get("/worklist")
    def worklist() -> str:
        query = WorklistQuery.from_args(request.args)
        data = svc.index.page(query)
        template = "_worklist.html" if request.headers.get("HX-Request") else "worklist.html"
        return render_template(template, wl=data, priorities=PRIORITIES, modalities=MODALITIES)

    @app.get("/reports/<report_id>")
    def study(report_id: str) -> str:
        view = load_study(svc.fhir, _report_id(report_id))
        header = None
        srs: list[tuple[str, str]] = []
        if view.study_uid and view.series_uid:
            if g.identity.authenticated:
                header = svc.dicom.header(view.study_uid, view.series_uid, view.instance_uid)
            srs = svc.dicom.structured_reports(view.study_uid)
        preset = request.args.get("preset", "default")
        return render_template(
            "study.html",
            view=view,
            header=header,
            srs=srs,
            presets=list(CT_PRESETS) if view.row.modality == "CT" else [],
            preset=preset if preset in CT_PRESETS else "default",
            viewer=config.viewer_url.replace("{study_uid}", view.study_uid)
            if config.viewer_url and view.study_uid
            else "",
        )

    @app.get("/image/<study_uid>/<series_uid>/<instance_uid>")
    def image(study_uid: str, series_uid: str, instance_uid: str) -> Response:
        study, series, instance = (_valid_uid(u) for u in (study_uid, series_uid, instance_uid))
        preset = request.args.get("preset", "default")
        try:
            data, media_type = svc.dicom.rendered(
                study, series, instance, preset if preset in CT_PRESETS else "default"
            )
        except PermanentError:
            abort(404)
        return Response(data, mimetype=media_type)

    @app.get("/sr/<study_uid>/<series_uid>/<instance_uid>")
    def structured_report(study_uid: str, series_uid: str, instance_uid: str) -> Response:
        study, series, instance = (_valid_uid(u) for u in (study_uid, series_uid, instance_uid))
        return Response(
            svc.dicom.retrieve_part10(study, series, instance),
            mimetype="application/dicom",
            headers={"Content-Disposition": f'attachment; filename="{instance}.dcm"'},
        )

    @app.post("/reports/<report_id>/review")
    def review(report_id: str) -> tuple[str, int]:
        report_id = _report_id(report_id)
        decision = request.form.get("decision", "")
        comment = request.form.get("comment", "")
        if decision not in ("accept", "reject"):
            return render_template("error.html", message="Choose accept or reject."), 400
        reviewer = g.identity.email
        try:
            result = submit_review(
                svc.fhir,
                report_id,
                seen_version=request.form.get("version", ""),
                decision="accept" if decision == "accept" else "reject",
                reviewer=reviewer,
                comment=comment,
                recorded=datetime.now(UTC).isoformat(timespec="seconds"),
            )
        except ReviewConflictError as conflict:
            svc.index.put(conflict.current)
            view = load_study(svc.fhir, report_id)
            return (
                render_template(
                    "_review.html",
                    view=view,
                    conflict=conflict.message(),
                    comment=comment,
                    saved=None,
                ),
                409,
            )
        svc.index.put(result.report)
        view = load_study(svc.fhir, report_id)
        return render_template("_review.html", view=view, saved=result.saved, comment=""), 200

    @app.get("/operations")
    def operations() -> str:
        subscriber, _ = svc.pubsub()
        letters = dead_letters.list_dead_letters(
            subscriber, config.dead_letter_subscription, limit=DEAD_LETTER_PAGE
        )
        reasons = svc.outcomes.first_failure(letter.instance_uid for letter in letters)
        return render_template(
            "operations.html",
            counts=svc.outcomes.counts(now_utc()),
            letters=letters,
            reasons=reasons,
            limit=DEAD_LETTER_PAGE,
        )

    @app.post("/operations/replay")
    def replay() -> str:
        subscriber, publisher = svc.pubsub()
        selected = request.form.getlist("message_id")
        replay_all = request.form.get("all") == "1"
        if not selected and not replay_all:
            return render_template("_replay.html", report=None, nothing=True)
        report = dead_letters.replay(
            subscriber,
            publisher,
            config.dead_letter_subscription,
            config.events_topic,
            only=None if replay_all else selected,
        )
        logs.log_event(
            logger,
            logging.INFO,
            "dead letters replayed",
            event="dead_letters_replayed",
            replayed=len(report.replayed),
            failed=len(report.failed),
        )
        return render_template("_replay.html", report=report, nothing=False)

    return app


def _report_id(value: str) -> str:
    # FHIR ids: [A-Za-z0-9-.]{1,64}
    if not (0 < len(value) <= 64 and all(c.isalnum() or c in "-." for c in value)):
        abort(404)
    return value
