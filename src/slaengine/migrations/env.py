"""Alembic environment: migrations run on the connection slaengine hands over."""

from alembic import context

from slaengine.database import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through slaengine.database.upgrade(engine)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
