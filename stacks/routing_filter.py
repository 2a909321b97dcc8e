"""The processor subscription's filter: modalities that are never analyzed never invoke it.

The DICOM store's `notification_configs` publish a `modality` attribute with each instance
(https://cloud.google.com/healthcare-api/docs/dicom-pubsub); the legacy `notification_config`
publishes no attributes. Only negative terms are used (`NOT attributes.modality = "CT"`), so a
message without the attribute still passes: the filter is safe with either configuration, and
the processor's own checks remain the authority. Pub/Sub limits a filter to 256 bytes: the
modalities routed to `none` come first (they are what routing saves), then the non-image
modalities, our own SR outputs first, as many as fit.
"""

from __future__ import annotations

from imaging_pipeline.settings import NON_IMAGE_MODALITIES, PipelineSettings

MAX_FILTER_BYTES = 256  # Pub/Sub's limit on a subscription filter
ATTRIBUTE = "modality"
# Non-image objects by how often they reach a store (SR: also what the pipeline writes back).
_NON_IMAGE_ORDER = ("SR", "SEG", "PR", "KO", "DOC", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD")


def excluded_modalities(pipeline: PipelineSettings) -> list[str]:
    """Modalities never analyzed: routed to `none` first, then the non-image ones."""
    routed_none = sorted(m for m, route in pipeline.routes.items() if route.analyzer == "none")
    non_image = [m for m in _NON_IMAGE_ORDER if m in NON_IMAGE_MODALITIES]
    non_image += sorted(NON_IMAGE_MODALITIES - set(non_image))
    return routed_none + non_image


def subscription_filter(pipeline: PipelineSettings, attribute: str = ATTRIBUTE) -> str | None:
    """The filter expression, or None when there is nothing to exclude."""
    expression = ""
    for modality in excluded_modalities(pipeline):
        term = f'NOT attributes.{attribute} = "{modality}"'
        candidate = f"{expression} AND {term}" if expression else term
        if len(candidate.encode()) <= MAX_FILTER_BYTES:
            expression = candidate
    return expression or None
