"""face thumbnails

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_thumbnails",
        sa.Column(
            "face_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("jpeg", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["face_pk"],
            ["faces.pk"],
            name=op.f("fk_face_thumbnails_face_pk_faces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("face_pk", name=op.f("pk_face_thumbnails")),
    )


def downgrade() -> None:
    op.drop_table("face_thumbnails")
