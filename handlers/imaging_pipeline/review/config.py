"""The review app's runtime configuration, read once from its environment.

- `FHIR_BASE_URL`, `DICOMWEB_URL`, `ENVIRONMENT`, `LOG_LEVEL`: as for the processor.
- `AUTH_MODE`: `iap` (default; every request must carry a valid IAP JWT) or `local` (no
  authentication, only for the local demo: the pages show a banner saying so).
- `IAP_AUDIENCE`: the expected `aud` of the IAP JWT, `/projects/NUMBER/global/backendServices/ID`
  (required in `iap` mode). `IAP_CERTS_URL` overrides Google's public keys (tests only).
- `EVENTS_TOPIC`, `DEAD_LETTER_SUBSCRIPTION`: `projects/P/topics/T`,
  `projects/P/subscriptions/S` for the operations page and replay.
- Optional: `VIEWER_URL` (a DICOMweb viewer link, `{study_uid}` is replaced),
  `OUTCOME_LOG` (a file of the processor's JSON log lines: the local source of the operations
  counts; in Google Cloud they come from the log-based metrics, `MONITORING_PROJECT`),
  `METRIC_PREFIX` (the log-based metrics' prefix, as modules/observability.py names them),
  `WORKLIST_REFRESH_S` (how stale the worklist may get before a background refresh, default 5).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from imaging_pipeline.runtime_env import ConfigurationError, http_url, log_level, require

# IAP's signing keys as a JSON map of key id -> PEM public key.
IAP_CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"
REQUIRED = (
    "FHIR_BASE_URL",
    "DICOMWEB_URL",
    "ENVIRONMENT",
    "LOG_LEVEL",
    "EVENTS_TOPIC",
    "DEAD_LETTER_SUBSCRIPTION",
)
_TOPIC = re.compile(r"projects/[a-z][a-z0-9-]{4,29}/topics/[A-Za-z][\w.~%+-]{2,254}")
_SUBSCRIPTION = re.compile(r"projects/[a-z][a-z0-9-]{4,29}/subscriptions/[A-Za-z][\w.~%+-]{2,254}")
_AUDIENCE = re.compile(r"/projects/\d+/(global/backendServices|apps)/[\w.-]+")

AuthMode = Literal["iap", "local"]


@dataclass(frozen=True)
class ReviewConfig:
    fhir_base_url: str
    dicomweb_url: str
    environment: str
    log_level: str
    events_topic: str
    dead_letter_subscription: str
    auth_mode: AuthMode = "iap"
    iap_audience: str = ""
    iap_certs_url: str = IAP_CERTS_URL
    viewer_url: str = ""
    outcome_log: str = ""
    monitoring_project: str = ""
    metric_prefix: str = "imaging"
    worklist_refresh_s: float = 5.0

    @property
    def local(self) -> bool:
        return self.auth_mode == "local"


def load_review_config(environ: Mapping[str, str] | None = None) -> ReviewConfig:
    env = os.environ if environ is None else environ
    require(env, REQUIRED)
    mode = env.get("AUTH_MODE", "iap").strip() or "iap"
    if mode not in ("iap", "local"):
        raise ConfigurationError(f"AUTH_MODE must be 'iap' or 'local', got {mode!r}")
    audience = env.get("IAP_AUDIENCE", "").strip()
    if mode == "iap" and not _AUDIENCE.fullmatch(audience):
        raise ConfigurationError(
            "IAP_AUDIENCE must look like /projects/NUMBER/global/backendServices/ID "
            f"when AUTH_MODE is iap, got {audience!r}"
        )
    topic = env["EVENTS_TOPIC"].strip()
    if not _TOPIC.fullmatch(topic):
        raise ConfigurationError(f"EVENTS_TOPIC must look like projects/P/topics/T, got {topic!r}")
    subscription = env["DEAD_LETTER_SUBSCRIPTION"].strip()
    if not _SUBSCRIPTION.fullmatch(subscription):
        raise ConfigurationError(
            "DEAD_LETTER_SUBSCRIPTION must look like projects/P/subscriptions/S, "
            f"got {subscription!r}"
        )
    viewer = env.get("VIEWER_URL", "").strip()
    if viewer and ("{study_uid}" not in viewer or not viewer.startswith("https://")):
        raise ConfigurationError(
            "VIEWER_URL must be an https:// URL containing {study_uid}, got " + repr(viewer)
        )
    certs = env.get("IAP_CERTS_URL", "").strip()
    refresh = env.get("WORKLIST_REFRESH_S", "5").strip() or "5"
    try:
        refresh_s = float(refresh)
    except ValueError:
        refresh_s = -1.0
    if not 0 <= refresh_s <= 3600:
        raise ConfigurationError(f"WORKLIST_REFRESH_S must be 0..3600 seconds, got {refresh!r}")
    return ReviewConfig(
        fhir_base_url=http_url("FHIR_BASE_URL", env["FHIR_BASE_URL"]),
        dicomweb_url=http_url("DICOMWEB_URL", env["DICOMWEB_URL"]),
        environment=env["ENVIRONMENT"].strip(),
        log_level=log_level(env),
        events_topic=topic,
        dead_letter_subscription=subscription,
        auth_mode="local" if mode == "local" else "iap",
        iap_audience=audience,
        iap_certs_url=http_url("IAP_CERTS_URL", certs) if certs else IAP_CERTS_URL,
        viewer_url=viewer,
        outcome_log=env.get("OUTCOME_LOG", "").strip(),
        monitoring_project=env.get("MONITORING_PROJECT", "").strip(),
        metric_prefix=env.get("METRIC_PREFIX", "imaging").strip() or "imaging",
        worklist_refresh_s=refresh_s,
    )
