"""insight_judgements: the insights' judgements under the live rulebook, kept across processes

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insight_judgements",
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("opportunity_id", sa.String(length=64), nullable=False),
        sa.Column("rulebook", sa.String(length=100), nullable=False),
        sa.Column("stamp", sa.String(length=40), nullable=False),
        sa.Column("fit", sa.String(length=255), nullable=False),
        sa.Column("fit_rule", sa.String(length=200), nullable=False),
        sa.Column("comp_eligible", sa.Boolean(), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("products", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "opportunity_id"),
    )
    op.create_index("ix_insight_judgements_rulebook", "insight_judgements", ["rulebook"])


def downgrade() -> None:
    op.drop_index("ix_insight_judgements_rulebook", table_name="insight_judgements")
    op.drop_table("insight_judgements")
