"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-03 20:24:27.768691
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("collection_id", sa.String(length=255), nullable=False),
        sa.Column("face_model_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_collections")),
        sa.UniqueConstraint(
            "account_id",
            "region",
            "collection_id",
            name=op.f("uq_collections_account_id_region_collection_id"),
        ),
    )
    op.create_table(
        "face_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "collection_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "face_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_face_changes")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id",
            "region",
            "operation",
            "token",
            name=op.f("pk_idempotency_records"),
        ),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"),
            ["created_at"],
            unique=False,
        )

    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "collection_tags",
        sa.Column(
            "collection_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_pk"],
            ["collections.pk"],
            name=op.f("fk_collection_tags_collection_pk_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_pk", "key", name=op.f("pk_collection_tags")
        ),
    )
    op.create_table(
        "users",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "collection_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_pk"],
            ["collections.pk"],
            name=op.f("fk_users_collection_pk_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_users")),
        sa.UniqueConstraint(
            "collection_pk", "user_id", name=op.f("uq_users_collection_pk_user_id")
        ),
    )
    op.create_table(
        "faces",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "collection_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("face_id", sa.String(length=36), nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("external_image_id", sa.String(length=255), nullable=True),
        sa.Column(
            "user_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("box_width", sa.Double(), nullable=False),
        sa.Column("box_height", sa.Double(), nullable=False),
        sa.Column("box_left", sa.Double(), nullable=False),
        sa.Column("box_top", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_pk"],
            ["collections.pk"],
            name=op.f("fk_faces_collection_pk_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_pk"],
            ["users.pk"],
            name=op.f("fk_faces_user_pk_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_faces")),
        sa.UniqueConstraint(
            "collection_pk", "face_id", name=op.f("uq_faces_collection_pk_face_id")
        ),
    )
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_faces_collection_pk_image_id"),
            ["collection_pk", "image_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_faces_user_pk"), ["user_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faces_user_pk"))
        batch_op.drop_index(batch_op.f("ix_faces_collection_pk_image_id"))

    op.drop_table("faces")
    op.drop_table("users")
    op.drop_table("collection_tags")
    op.drop_table("settings")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))

    op.drop_table("idempotency_records")
    op.drop_table("face_changes")
    op.drop_table("collections")
