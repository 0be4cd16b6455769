"""The initial schema: tenants, tokens, events, tickets, outbox, ruleset reloads.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_index("ix_events_ticket", "events", ["tenant_id", "ticket_id"])
    op.create_table(
        "tickets",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(200), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ruleset", sa.String(300), nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("statuses", sa.Text, nullable=False),
        sa.Column("next_due_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_tickets_due", "tickets", ["tenant_id", "next_due_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("fire_at", TZ, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
        sa.UniqueConstraint("tenant_id", "key", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "fire_at"])
    op.create_table(
        "ruleset_reloads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("revisions", sa.Text, nullable=False),
        sa.Column("errors", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for table in ("ruleset_reloads", "outbox", "tickets", "events", "api_tokens", "tenants"):
        op.drop_table(table)
