"""The push subscription's filter: drops the SRs' own notifications, keeps everything else."""

from __future__ import annotations

import pytest
from imaging_pipeline.notification_filter import push_subscription_filter


def test_the_default_filter_excludes_our_srs() -> None:
    assert push_subscription_filter() == 'NOT attributes.modality = "SR"'


def test_more_exclusions_are_one_not_over_an_or() -> None:
    assert push_subscription_filter(["SR", "SEG", "SR"]) == (
        'NOT (attributes.modality = "SR" OR attributes.modality = "SEG")'
    )
    assert push_subscription_filter([]) == ""


def test_filters_longer_than_pubsub_allows_are_refused() -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        push_subscription_filter([f"M{i:02d}" for i in range(12)])
