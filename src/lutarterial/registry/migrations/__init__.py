"""Alembic migrations of the registry schema, shipped in the package (see ``registry.db.upgrade``)."""
