"""Persistence: SQLAlchemy tables, repositories and Alembic migrations. SQLite by default."""
