"""Alembic environment: migrations run on a connection the store hands over, never from a URL.

``conf_server.store.db.upgrade`` opens the engine itself (async, any supported database),
then runs Alembic synchronously inside ``AsyncConnection.run_sync`` with that connection in
``config.attributes["connection"]``. Keeping one code path means tests migrate exactly as the
server does. Offline (SQL script) mode is not supported: upgrades are applied online.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from conf_server.store.errors import StoreError
from conf_server.store.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise StoreError("offline migrations are not supported; the store upgrades at open")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise StoreError("run migrations through conf_server.store.db.upgrade")
    _run(connection)


_main()
