"""Tables of the store: the audit trail and the state the workers share.

The schema is created and upgraded by Alembic (``integration/migrations``);
these declarations are its single source. Duplicates are impossible by
construction where it matters: one row per processed event key, and at most one
live (open or queued) coaching task per opportunity and coaching rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LIVE_TASK = text("status IN ('open', 'starting', 'queued')")


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    """Every decision, with the facts that mattered and the versions that decided it."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_opp", "crm", "opportunity_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crm: Mapped[str] = mapped_column(String(20))
    opportunity_id: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    trigger: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(200), default="")
    fit: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    fit_rule: Mapped[str] = mapped_column(String(200))
    warning: Mapped[str] = mapped_column(Text, default="")
    comp_eligible: Mapped[bool] = mapped_column(Boolean)
    fired: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    errors: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    ruleset_version: Mapped[str] = mapped_column(String(40))
    target_list_version: Mapped[str] = mapped_column(String(40), default="")
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(255), default="")
    amount: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(100), default="")
    probability: Mapped[int] = mapped_column(Integer, default=0)
    close_date: Mapped[str] = mapped_column(String(10), default="")
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    account_id: Mapped[str] = mapped_column(String(64), default="")
    account_name: Mapped[str] = mapped_column(String(255), default="")
    on_target_list: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[str] = mapped_column(String(64), default="")
    owner_name: Mapped[str] = mapped_column(String(255), default="")
    team: Mapped[str] = mapped_column(String(255), default="")
    manager_id: Mapped[str] = mapped_column(String(255), default="")
    changed: Mapped[bool] = mapped_column(Boolean, default=False)


class WriteRow(Base):
    """Every field value the service wrote (or would have, in a dry run), old and new."""

    __tablename__ = "writes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    crm: Mapped[str] = mapped_column(String(20))
    opportunity_id: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[str] = mapped_column(Text, default="")
    new_value: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))  # ok | failed
    error: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """Processed event keys: a redelivered webhook is recognised and skipped."""

    __tablename__ = "events"

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(64), default="")
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StateRow(Base):
    """Each opportunity's current state: its latest facts, live decision and CRM values.

    One row per opportunity, replaced with every decision taken on it (and deleted
    when the opportunity is). Rules preview and the insights read this table alone:
    no CRM call and no replay of the decision history, so their cost does not grow
    with the history. ``facts`` are the facts as read from the CRM (before the target
    list and the managers file are applied), so a draft rulebook can be judged on
    them; ``crm_values`` are the output fields as the CRM holds them after the
    decision's writes (a frozen deal keeps what it has).
    """

    __tablename__ = "opportunity_state"
    __table_args__ = (
        Index("ix_state_team", "crm", "team"),
        Index("ix_state_owner", "crm", "owner_id"),
        Index("ix_state_closed", "is_closed", "close_date"),
        Index("ix_state_decided", "decided_at"),
    )

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    facts: Mapped[str] = mapped_column(Text)  # JSON of Facts.to_dict()
    crm_values: Mapped[str] = mapped_column(Text, default="{}")  # JSON, logical names
    fit: Mapped[str] = mapped_column(String(255))
    fit_rule: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    warning: Mapped[str] = mapped_column(Text, default="")
    warnings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of rule names
    coaching: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of rule names
    comp_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    ruleset_version: Mapped[str] = mapped_column(String(40), default="")
    target_list_version: Mapped[str] = mapped_column(String(40), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    amount: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(100), default="")
    probability: Mapped[int] = mapped_column(Integer, default=0)
    close_date: Mapped[str] = mapped_column(String(10), default="")
    created_date: Mapped[str] = mapped_column(String(10), default="")
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    account_id: Mapped[str] = mapped_column(String(64), default="")
    account_name: Mapped[str] = mapped_column(String(255), default="")
    industry: Mapped[str] = mapped_column(String(255), default="")
    on_target_list: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[str] = mapped_column(String(64), default="")
    owner_name: Mapped[str] = mapped_column(String(255), default="")
    team: Mapped[str] = mapped_column(String(255), default="")
    manager_id: Mapped[str] = mapped_column(String(255), default="")
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RuleVersionRow(Base):
    """A published rulebook: every file's content, who published it, when and why.

    One row per publication (a rollback is a new row with an earlier content), so
    the newest row is the live version and every process finds it with one
    indexed read of the highest id.
    """

    __tablename__ = "rule_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(40), index=True)  # hash of every file
    files: Mapped[str] = mapped_column(Text)  # JSON {name: {"text"|"base64": content}}
    hashes: Mapped[str] = mapped_column(Text, default="{}")  # JSON {name: sha256}
    target_list_version: Mapped[str] = mapped_column(String(40), default="")
    published_by: Mapped[str] = mapped_column(String(255), default="")
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")


class TaskRow(Base):
    """A coaching task the service created (or queued, waiting for a free slot)."""

    __tablename__ = "coaching_tasks"
    __table_args__ = (
        Index(
            "ux_coaching_live",
            "crm",
            "opportunity_id",
            "rule",
            unique=True,
            sqlite_where=LIVE_TASK,
            postgresql_where=LIVE_TASK,
        ),
        Index("ix_coaching_rep", "crm", "rep_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crm: Mapped[str] = mapped_column(String(20))
    opportunity_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(200))
    rep_id: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    # queued -> starting (a slot taken, being created in the CRM) -> open -> completed |
    # closed | deleted; queued -> dropped (beyond the queue bound) | closed; failed.
    status: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    due_in_days: Mapped[int] = mapped_column(Integer, default=3)
    priority: Mapped[str] = mapped_column(String(10), default="Normal")
    score: Mapped[float] = mapped_column(Float, default=0.0)
    close_date: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SlotRow(Base):
    """Open coaching tasks per rep; reserved with one conditional UPDATE (atomic)."""

    __tablename__ = "coaching_slots"

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    rep_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    open_count: Mapped[int] = mapped_column(Integer, default=0)


class WatermarkRow(Base):
    """Where a sweep got to: the last modification seen, or a resumable cursor."""

    __tablename__ = "watermarks"

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AppKeyRow(Base):
    """Keys the service makes for itself (the session-signing secret), shared by every
    process and host through the store; the first process to start writes it."""

    __tablename__ = "app_keys"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JudgementRow(Base):
    """The insights' judgement of one opportunity under one live rulebook.

    A cache the store keeps so a new process (each ``onstrategy report``) need not
    read every opportunity's facts or judge again the deals decided under older
    rules: valid while ``rulebook`` is the live one and ``stamp`` is the state row's
    ``decided_at``.
    """

    __tablename__ = "insight_judgements"

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rulebook: Mapped[str] = mapped_column(String(100), index=True)
    stamp: Mapped[str] = mapped_column(String(40))
    fit: Mapped[str] = mapped_column(String(255), default="")
    fit_rule: Mapped[str] = mapped_column(String(200), default="")
    comp_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    warned: Mapped[bool] = mapped_column(Boolean, default=False)
    products: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
