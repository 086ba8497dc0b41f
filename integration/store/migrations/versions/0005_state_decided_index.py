"""opportunity_state.decided_at index: the insights re-read only what changed

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_state_decided", "opportunity_state", ["decided_at"])


def downgrade() -> None:
    op.drop_index("ix_state_decided", table_name="opportunity_state")
