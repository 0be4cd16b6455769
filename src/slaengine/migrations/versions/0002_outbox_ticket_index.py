"""An index on the outbox by (tenant, ticket).

A ticket's pending rows are read whenever its clock is rebuilt (a restart,
a cache eviction, another ``serve`` process having written the ticket);
without this index that read scanned every pending row of the outbox.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_outbox_ticket", "outbox", ["tenant_id", "ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_ticket", table_name="outbox")
