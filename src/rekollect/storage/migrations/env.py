"""Alembic environment: always runs on the connection handed in by rekollect."""

from alembic import context

from rekollect.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
