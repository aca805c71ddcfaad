"""The store: collections, users, faces, tags, idempotency records and the change log.

SQLAlchemy Core over SQLite (embedded default, WAL mode) or any database SQLAlchemy
reaches; the schema is created and upgraded by Alembic migrations only. Nothing here
knows the wire format.
"""

from rekollect.storage.database import Database, open_database

__all__ = ["Database", "open_database"]
