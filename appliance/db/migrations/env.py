"""Alembic's environment: run by :meth:`appliance.db.Database.migrate` on its connection."""

from alembic import context

from appliance.db._catalog_tables import ContentRow  # noqa: F401 (registers the catalog)
from appliance.db._tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Greffier's migrations run through Database.migrate(), on its connection.")
# render_as_batch: later migrations that alter a table work on SQLite too (copy and swap).
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
