"""The push subscription's filter: our own SRs always dropped, then what routing never analyzes."""

from __future__ import annotations

from imaging_pipeline.notification_filter import MAX_FILTER_BYTES, push_subscription_filter
from imaging_pipeline.settings import PipelineSettings


def test_our_srs_come_first_whatever_else_is_excluded() -> None:
    expression = push_subscription_filter()
    assert expression.startswith('NOT attributes.modality = "SR" AND ')
    assert len(expression.encode()) <= MAX_FILTER_BYTES


def test_none_routes_come_next_then_non_image_modalities_within_the_limit() -> None:
    many = ("CT", "MR", "NM", "PT", "MG", "XA", "RF", "OT", "XC")
    settings = PipelineSettings.model_validate({"routes": {m: {"analyzer": "none"} for m in many}})
    expression = push_subscription_filter(settings)
    assert expression.startswith(
        'NOT attributes.modality = "SR" AND NOT attributes.modality = "CT" AND '
        'NOT attributes.modality = "MG"'
    )
    assert len(expression.encode()) <= MAX_FILTER_BYTES
    assert 'NOT attributes.modality = "XC"' not in expression  # did not fit: left to the processor


def test_only_negative_terms_so_messages_without_attributes_still_pass() -> None:
    terms = push_subscription_filter(PipelineSettings()).split(" AND ")
    assert terms and all(t.startswith("NOT attributes.modality = ") for t in terms)


def test_what_pubsub_delivers_under_the_filter() -> None:
    from tests.support.pubsub_filter import matches

    prod_like = PipelineSettings.model_validate({"routes": {"CT": {"analyzer": "none"}}})
    expression = push_subscription_filter(prod_like)
    assert not matches(expression, {"modality": "SR", "action": "StoreInstances"})
    assert not matches(expression, {"modality": "CT"})  # routed to none: never invoked
    assert matches(expression, {"modality": "DX"})
    assert matches(expression, {})  # a store that sends no attributes: the processor decides
