"""The funnel: one row per invitation with each stage's first time (GET /v1/stats/funnel).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
STAGES = ["delivered_at", "opened_at", "accepted_at", "ended"]


def upgrade() -> None:
    op.create_table(
        "funnel",
        sa.Column("invitation_id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("campaign", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        sa.Column("opened_at", TIMESTAMP, nullable=True),
        sa.Column("accepted_at", TIMESTAMP, nullable=True),
        sa.Column("time_to_accept_s", sa.Float(), nullable=True),
        sa.Column("ended", sa.String(), nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("invitation_id", name=op.f("pk_funnel")),
    )
    for key in ("source", "campaign"):
        op.create_index(f"ix_funnel_{key}_counts", "funnel", [key, "created_at", *STAGES])
        op.create_index(f"ix_funnel_{key}_wait", "funnel", [key, "time_to_accept_s", "created_at"])


def downgrade() -> None:
    for key in ("source", "campaign"):
        op.drop_index(f"ix_funnel_{key}_wait", table_name="funnel")
        op.drop_index(f"ix_funnel_{key}_counts", table_name="funnel")
    op.drop_table("funnel")
