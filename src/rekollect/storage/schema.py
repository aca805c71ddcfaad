"""Table definitions, shared by the queries and the migrations' consistency test.

Portable SQL only: the same schema runs on SQLite and PostgreSQL. Times are epoch
seconds (double precision); embeddings are little-endian float32 bytes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
Serial = BigInteger().with_variant(Integer(), "sqlite")

collections = Table(
    "collections",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(64), nullable=False),
    Column("collection_id", String(255), nullable=False),
    Column("face_model_version", String(32), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("account_id", "region", "collection_id"),
)

collection_tags = Table(
    "collection_tags",
    metadata,
    Column(
        "collection_pk",
        Serial,
        ForeignKey("collections.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    Column(
        "collection_pk",
        Serial,
        ForeignKey("collections.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("collection_pk", "user_id"),
)

faces = Table(
    "faces",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    Column(
        "collection_pk",
        Serial,
        ForeignKey("collections.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("face_id", String(36), nullable=False),
    Column("image_id", String(36), nullable=False),
    Column("external_image_id", String(255)),
    Column("user_pk", Serial, ForeignKey("users.pk", ondelete="SET NULL")),
    Column("box_width", Double, nullable=False),
    Column("box_height", Double, nullable=False),
    Column("box_left", Double, nullable=False),
    Column("box_top", Double, nullable=False),
    Column("confidence", Double, nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("embedding_dim", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("collection_pk", "face_id"),
    Index(None, "user_pk"),
    Index(None, "collection_pk", "image_id"),
)

# Every face added or removed, in order, so that a vector index kept in memory by any
# process can catch up with writes made by another one.
face_changes = Table(
    "face_changes",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("collection_pk", Serial, nullable=False),
    Column("face_pk", Serial),
    Column("change", String(16), nullable=False),
    Column("changed_at", Double, nullable=False),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(64), primary_key=True),
    Column("operation", String(64), primary_key=True),
    Column("token", String(64), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Index(None, "created_at"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Access keys of `rekollect keys`. The secret is sealed (AES-GCM) with a master key
# kept outside the store, named by `master_key_id`; a temporary key keeps only the
# SHA-256 of its session token. `policy` is a JSON document, or NULL for full access
# to the key's account.
access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("master_key_id", String(32), nullable=False),
    Column("session_token_sha256", String(64)),
    Column("expires_at", Double),
    Column("policy", Text),
    Column("created_at", Double, nullable=False),
)

# A small JPEG crop of each face IndexFaces stored, when the server keeps them
# (`serve --no-thumbnails` does not): the console shows them, and a collection can be
# embedded again from them by another engine. Deleted with its face.
face_thumbnails = Table(
    "face_thumbnails",
    metadata,
    Column(
        "face_pk",
        Serial,
        ForeignKey("faces.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("jpeg", LargeBinary, nullable=False),
)
