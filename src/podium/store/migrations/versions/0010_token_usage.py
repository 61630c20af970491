"""token metering per API token (issue 14)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_usage",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "endpoint_id", "caller", "hour"),
    )
    with op.batch_alter_table("token_usage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_token_usage_endpoint_id"), ["endpoint_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_token_usage_hour"), ["hour"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("token_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_usage_hour"))
        batch_op.drop_index(batch_op.f("ix_token_usage_endpoint_id"))
    op.drop_table("token_usage")
