"""coaching: a 'starting' state, creation attempts, bounded queues, recounted slots

Revision ID: 0003
Revises: 0002

A task being created in the CRM is 'starting' (it holds a slot and stays live);
``attempts`` counts creations tried, so a task whose creation may have committed
is looked up by its marker before it is created again. Queues longer than the
default bound (3 per rep) are trimmed, least important first, and every slot
counter is rebuilt from the rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

QUEUE_PER_REP = 3


def upgrade() -> None:
    with op.batch_alter_table("coaching_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    _live_index("status IN ('open', 'starting', 'queued')")
    op.execute(
        sa.text(
            "UPDATE coaching_tasks SET status = 'dropped', note = 'beyond the queue bound'"
            " WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER ("
            " PARTITION BY crm, rep_id ORDER BY score DESC, close_date, id) AS n"
            " FROM coaching_tasks WHERE status = 'queued') ranked WHERE n > :bound)"
        ).bindparams(bound=QUEUE_PER_REP)
    )
    op.execute(
        "UPDATE coaching_slots SET open_count = (SELECT count(*) FROM coaching_tasks t"
        " WHERE t.crm = coaching_slots.crm AND t.rep_id = coaching_slots.rep_id"
        " AND t.status IN ('open', 'starting'))"
    )


def downgrade() -> None:
    op.execute("UPDATE coaching_tasks SET status = 'queued' WHERE status = 'starting'")
    _live_index("status IN ('open', 'queued')")
    with op.batch_alter_table("coaching_tasks", schema=None) as batch_op:
        batch_op.drop_column("attempts")


def _live_index(where: str) -> None:
    op.drop_index("ux_coaching_live", table_name="coaching_tasks")
    op.create_index(
        "ux_coaching_live",
        "coaching_tasks",
        ["crm", "opportunity_id", "rule"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
