"""access keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=32), nullable=False),
        sa.Column("session_token_sha256", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )


def downgrade() -> None:
    op.drop_table("access_keys")
