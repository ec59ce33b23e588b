"""Alembic migrations of the store; ``conf_server.store.db.upgrade`` runs them at open."""
