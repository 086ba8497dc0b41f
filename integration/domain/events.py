"""Change events: what a webhook hands to the queue, whatever the source.

A webhook view verifies and parses a delivery into :class:`ChangeEvent` objects
and passes them all to :meth:`Intake.submit`, which returns only once every event
is durably queued (or raises :class:`QueueUnavailable`, and the view answers
503 so the CRM retries). Deciding anything is the worker's job, not the view's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ChangeEvent:
    """One reported change.

    ``key`` identifies the delivery for de-duplication: redeliveries carry the
    same key. ``kind`` is ``opportunity`` (re-evaluate that record), ``account``
    (re-evaluate the account's opportunities: a target-list or firmographic
    change) or ``deleted`` (forget the record).
    """

    crm: str
    kind: str
    object_id: str
    key: str
    changed_fields: tuple[str, ...] = ()
    occurred_at: str = ""  # ISO timestamp, "" when unknown
    source: str = ""  # e.g. "hubspot:deal.propertyChange"
    extra: dict[str, str] = field(default_factory=dict)


KINDS = ("opportunity", "account", "deleted")

#: The largest webhook body accepted; larger ones are answered 413 unread (contract: 1 MiB).
MAX_WEBHOOK_BODY = 1024 * 1024


class QueueUnavailable(Exception):
    """The queue could not take the work; the caller must not acknowledge."""


class Intake(Protocol):
    """Takes parsed events and queues their work durably."""

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        """Queue the work for ``events``; return how many were new (not redeliveries)."""
