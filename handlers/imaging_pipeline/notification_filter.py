"""The Pub/Sub subscription filter of the processor's push subscription, built in one place.

Messages that match no filter are acknowledged by Pub/Sub itself and never invoke the function:
the cheapest place to drop the notifications of the SRs the processor writes (their `modality`
attribute is `SR`). A message without the attribute (stores whose notifications carry none)
still matches, so nothing is lost; the processor's own checks (modality attribute, then SOP
class after retrieval) remain the second and third line. Extend `EXCLUDED_MODALITIES` or add
clauses here (e.g. per-modality routing), never elsewhere: Pub/Sub filters are limited to 256
bytes and cannot be changed on an existing subscription (Terraform replaces it).
"""

from __future__ import annotations

from collections.abc import Iterable

# What the pipeline writes into the DICOM store itself (imaging_pipeline.sr).
EXCLUDED_MODALITIES = ("SR",)
MAX_FILTER_BYTES = 256


def push_subscription_filter(excluded_modalities: Iterable[str] = EXCLUDED_MODALITIES) -> str:
    """`NOT attributes.modality = "SR"` (and further exclusions with OR inside the NOT)."""
    clauses = [f'attributes.modality = "{m}"' for m in dict.fromkeys(excluded_modalities)]
    if not clauses:
        return ""
    joined = clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"
    expression = f"NOT {joined}"
    if len(expression.encode()) > MAX_FILTER_BYTES:
        raise ValueError(f"Pub/Sub filter longer than {MAX_FILTER_BYTES} bytes: {expression}")
    return expression
