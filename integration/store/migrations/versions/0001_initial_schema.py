"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables in the order the foreign keys need (``writes`` after ``decisions``)."""
    _create_coaching_tables()
    _create_decisions()
    _create_event_and_watermark_tables()
    _create_writes()


def _create_coaching_tables() -> None:
    """Coaching slots per rep and the tasks; at most one live task per deal and rule."""
    op.create_table(
        "coaching_slots",
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("open_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "rep_id"),
    )
    op.create_table(
        "coaching_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("opportunity_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("assignee_id", sa.String(length=255), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("due_in_days", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("close_date", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coaching_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_coaching_rep", ["crm", "rep_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_coaching_tasks_task_id"), ["task_id"], unique=False)
        batch_op.create_index(
            "ux_coaching_live",
            ["crm", "opportunity_id", "rule"],
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'queued')"),
            postgresql_where=sa.text("status IN ('open', 'queued')"),
        )


def _create_decisions() -> None:
    """The audit trail: every decision, with the facts and versions that decided it."""
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("opportunity_id", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("fit", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fit_rule", sa.String(length=200), nullable=False),
        sa.Column("warning", sa.Text(), nullable=False),
        sa.Column("comp_eligible", sa.Boolean(), nullable=False),
        sa.Column("fired", sa.Text(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("ruleset_version", sa.String(length=40), nullable=False),
        sa.Column("target_list_version", sa.String(length=40), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("close_date", sa.String(length=10), nullable=False),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("is_won", sa.Boolean(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("account_name", sa.String(length=255), nullable=False),
        sa.Column("on_target_list", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("team", sa.String(length=255), nullable=False),
        sa.Column("manager_id", sa.String(length=255), nullable=False),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decisions_decided_at"), ["decided_at"], unique=False)
        batch_op.create_index("ix_decisions_opp", ["crm", "opportunity_id", "id"], unique=False)


def _create_event_and_watermark_tables() -> None:
    """Processed event keys (redeliveries are skipped) and where each sweep got to."""
    op.create_table(
        "events",
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", "key"),
    )
    op.create_table(
        "watermarks",
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", "name"),
    )


def _create_writes() -> None:
    """Every field value written (or that a dry run would have written), old and new."""
    op.create_table(
        "writes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("opportunity_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=False),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("writes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_writes_decision_id"), ["decision_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_writes_opportunity_id"), ["opportunity_id"], unique=False
        )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("writes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_writes_opportunity_id"))
        batch_op.drop_index(batch_op.f("ix_writes_decision_id"))

    op.drop_table("writes")
    op.drop_table("watermarks")
    op.drop_table("events")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_opp")
        batch_op.drop_index(batch_op.f("ix_decisions_decided_at"))

    op.drop_table("decisions")
    with op.batch_alter_table("coaching_tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_coaching_live",
            sqlite_where=sa.text("status IN ('open', 'queued')"),
            postgresql_where=sa.text("status IN ('open', 'queued')"),
        )
        batch_op.drop_index(batch_op.f("ix_coaching_tasks_task_id"))
        batch_op.drop_index("ix_coaching_rep")

    op.drop_table("coaching_tasks")
    op.drop_table("coaching_slots")
    # ### end Alembic commands ###
