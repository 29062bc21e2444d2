"""Initial tables: invitations, account_links, outbox, webhook_receipts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("external_ref", sa.String(), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("app_metadata", JSON, nullable=False),
        sa.Column("request_hash", sa.String(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("reissued_from", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_invitations_external_ref")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_invitations_idempotency_key")),
    )
    op.create_table(
        "account_links",
        sa.Column("invitation_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("accepted_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_account_links_invitation_id_invitations"),
        ),
        sa.PrimaryKeyConstraint("invitation_id", name=op.f("pk_account_links")),
    )
    op.create_index(op.f("ix_account_links_user_id"), "account_links", ["user_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("invitation_id", sa.String(), nullable=False),
        sa.Column("to", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(), nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("kind IN ('invite', 'reminder')", name=op.f("ck_outbox_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_invitation_id"), "outbox", ["invitation_id"])
    op.create_table(
        "webhook_receipts",
        sa.Column("webhook_id", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_webhook_receipts")),
    )
    op.create_index(op.f("ix_webhook_receipts_expires_at"), "webhook_receipts", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_receipts_expires_at"), table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
    op.drop_index(op.f("ix_outbox_invitation_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_account_links_user_id"), table_name="account_links")
    op.drop_table("account_links")
    op.drop_table("invitations")
