"""The one small interface every CRM connector implements, batch-first.

A connector is constructed with its settings and a :class:`FieldMap`, then
used only through these methods. Each takes or returns many records at once so
that a connector can spend one API call per batch (Salesforce collections of
200, HubSpot batches of 100) instead of one per record.

Errors are typed: :class:`ConnectorError` carries the CRM, the HTTP status, the
object and the body, and ``retryable`` says whether trying again may succeed.
Jobs retry only retryable errors; the rest are recorded on the decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Protocol, runtime_checkable

from integration.domain.model import OpportunityRecord


@dataclass(frozen=True)
class FieldUpdate:
    """Set some output fields on one opportunity; ``changes`` uses logical names."""

    opportunity_id: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class TaskSpec:
    """A coaching task to create, associated with the opportunity.

    ``key`` is stable per (crm, opportunity, coaching rule) so a task is never
    created twice for the same reason.
    """

    key: str
    opportunity_id: str
    assignee_id: str
    subject: str
    body: str
    due_date: date
    priority: str = "Normal"


def task_marker(key: str) -> str:
    """The text each created task carries so the service can find it again by its key."""
    return f"[OnStrategy task {key}]"


@dataclass(frozen=True)
class TaskClose:
    """Complete a task the service created, with a comment saying why."""

    task_id: str
    comment: str


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one record in a batch write: ``ref`` is the opportunity id or task key."""

    ref: str
    ok: bool
    id: str = ""  # created record id (tasks)
    error: str = ""
    retryable: bool = False


@dataclass(frozen=True)
class OpportunityQuery:
    """Which opportunities a sweep needs; all criteria are combined with AND."""

    account_ids: Sequence[str] | None = None
    modified_since: str | None = None  # ISO timestamp
    open_only: bool = False
    closed_after: date | None = None  # with open_only: also closed ones on/after this date
    page_size: int = 200


@dataclass
class ConnectorError(Exception):
    """A CRM call failed. Subclasses name the meaning; ``retryable`` drives retries."""

    crm: str
    status: int | None = None
    object_id: str = ""
    body: str = ""
    retry_after: float | None = None  # seconds the CRM asked us to wait, when it said

    retryable: ClassVar[bool] = False

    def __str__(self) -> str:
        where = f" {self.object_id}" if self.object_id else ""
        return f"{self.crm}{where}: HTTP {self.status}: {self.body[:300]}"


class TransientError(ConnectorError):
    """5xx, timeouts, lock contention: worth retrying with backoff."""

    retryable: ClassVar[bool] = True


class RateLimited(TransientError):
    """The CRM said slow down (HTTP 429 or an exhausted daily quota)."""


class AuthError(ConnectorError):
    """Credentials are wrong or lack a permission; retrying will not help."""


class NotFound(ConnectorError):
    """The record no longer exists (deleted or merged away)."""


class RejectedError(ConnectorError):
    """The CRM refused the data (validation rule, bad field): fix config, not retry."""


@runtime_checkable
class Connector(Protocol):
    """What the pipeline needs from a CRM. Every method is batch-first."""

    name: str

    def read_opportunities(self, ids: Sequence[str]) -> list[OpportunityRecord]:
        """Fresh records for these ids; ids that no longer exist are left out."""

    def iter_opportunities(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        """Pages of records matching ``query``, streamed so memory stays flat."""

    def update_opportunities(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Write output fields; one result per update, failures do not stop the batch."""

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[WriteResult]:
        """Create coaching tasks; ``WriteResult.id`` holds the new task id."""

    def find_tasks(self, tasks: Sequence[TaskSpec]) -> dict[str, str]:
        """Task key -> id of a task already created for it (found by its marker on the deal).

        A create the CRM committed but never confirmed (a timeout) is found here
        and adopted instead of being created a second time.
        """

    def task_states(self, task_ids: Sequence[str]) -> dict[str, str]:
        """``open``, ``completed`` or ``deleted`` for each task id the service created."""

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Complete tasks with a comment saying why they are no longer needed."""

    def ensure_fields(self, tags: Sequence[str]) -> list[str]:
        """Create missing output fields (and picklist values); return what was created."""


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Split ``items`` into consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
