"""The scheduler's outbox index holds only pending rows.

``ix_outbox_due (state, fire_at)`` is replaced by ``ix_outbox_pending
(tenant_id, fire_at) WHERE state = 'pending'``. Sent and cancelled rows, most of the
table over time, leave the index; and PostgreSQL no longer takes it for a
lookup by key: on a table not yet analyzed, its generic plan for cancelling
one row by key walked the (state, fire_at) index through every pending row
(bench/bench_http.py on PostgreSQL: 188 us a cancel on a fresh database,
growing with the table until autovacuum analyzed it).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

PENDING_ONLY = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["tenant_id", "fire_at"],
        postgresql_where=PENDING_ONLY,
        sqlite_where=PENDING_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "fire_at"])
