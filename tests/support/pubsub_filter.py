"""Pub/Sub's subscription filter, for the subset of its grammar the stack uses.

Google's Pub/Sub emulator accepts and stores a subscription's `filter` but delivers every message
regardless (tried with pull and push subscriptions), so tests evaluate the stack's filter here,
against the attributes a message really carried. Supported: terms `attributes.KEY = "VALUE"`,
optionally preceded by `NOT`, joined by `AND` (https://cloud.google.com/pubsub/docs/subscription-message-filter).
Anything else raises, so a new construct in the stack's filter cannot pass unevaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TERM = re.compile(r'^(NOT )?attributes\.([A-Za-z0-9_-]+) = "([^"]*)"$')


def matches(expression: str, attributes: Mapping[str, str]) -> bool:
    """True when Pub/Sub would deliver a message with `attributes` to the subscription."""
    if not expression:
        return True
    for term in expression.split(" AND "):
        parsed = _TERM.match(term)
        if parsed is None:
            raise ValueError(f"filter term outside the supported subset: {term!r}")
        negated, key, value = parsed.groups()
        if (attributes.get(key) == value) == bool(negated):
            return False
    return True
