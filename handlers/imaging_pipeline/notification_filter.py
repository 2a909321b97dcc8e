"""The Pub/Sub filter of the processor's push subscription, built in one place.

Messages that match no filter are acknowledged by Pub/Sub itself and never invoke the function:
the cheapest place to drop what the processor would skip anyway. The DICOM store's notifications
carry a `modality` attribute where the store sends attributes
(https://cloud.google.com/healthcare-api/docs/dicom-pubsub). Only negative terms are used
(`NOT attributes.modality = "CT"`), so a message without the attribute still passes and nothing
is lost; the processor's own checks (modality attribute, then SOP class after retrieval) remain
the authority.

Order of the exclusions: the SRs the processor writes back into the store (never optional: the
no-loop guarantee), then the modalities the environment routes to `none` (what routing saves),
then the other non-image modalities, as many as fit Pub/Sub's 256-byte limit. A filter cannot be
changed on an existing subscription (Terraform replaces it).
"""

from __future__ import annotations

from imaging_pipeline.settings import NON_IMAGE_MODALITIES, PipelineSettings

MAX_FILTER_BYTES = 256  # Pub/Sub's limit on a subscription filter
ATTRIBUTE = "modality"
# What the pipeline itself writes into the DICOM store (imaging_pipeline.sr).
OWN_OUTPUTS = ("SR",)
# Other non-image objects by how often they reach a store.
_NON_IMAGE_ORDER = ("SEG", "PR", "KO", "DOC", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD")


def excluded_modalities(pipeline: PipelineSettings | None = None) -> list[str]:
    """Own outputs first, then modalities routed to `none`, then the other non-image ones."""
    routes = pipeline.routes if pipeline is not None else {}
    routed_none = sorted(m for m, route in routes.items() if route.analyzer == "none")
    non_image = [m for m in _NON_IMAGE_ORDER if m in NON_IMAGE_MODALITIES]
    non_image += sorted(NON_IMAGE_MODALITIES - set(non_image) - set(OWN_OUTPUTS))
    return list(dict.fromkeys([*OWN_OUTPUTS, *routed_none, *non_image]))


def push_subscription_filter(
    pipeline: PipelineSettings | None = None, attribute: str = ATTRIBUTE
) -> str:
    """`NOT attributes.modality = "SR" AND NOT ...`: every exclusion that fits the limit."""
    expression = ""
    for modality in excluded_modalities(pipeline):
        term = f'NOT attributes.{attribute} = "{modality}"'
        candidate = f"{expression} AND {term}" if expression else term
        if len(candidate.encode()) <= MAX_FILTER_BYTES:
            expression = candidate
    return expression
