"""endpoint revisions and rollouts (issue 13)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoint_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False, server_default=""),
        sa.Column("strategy", sa.String(length=16), nullable=False, server_default="rolling"),
        sa.Column("state", sa.String(length=16), nullable=False, server_default="rolling"),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("rolled_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("latency_s", sa.Float(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ux_endpoint_revisions_endpoint_number", "endpoint_revisions", ["endpoint_id", "number"], unique=True
    )
    # Endpoints that exist already: their current spec is their first known revision, fully rolled out.
    op.execute(
        "INSERT INTO endpoint_revisions (endpoint_id, number, spec_json, changes, strategy, state, reason,"
        " created_at, rolled_at, finished_at)"
        " SELECT id, generation, spec_json, '', 'rolling', 'active', '', updated_at, updated_at, updated_at"
        " FROM endpoints"
    )


def downgrade() -> None:
    op.drop_index("ux_endpoint_revisions_endpoint_number", table_name="endpoint_revisions")
    op.drop_table("endpoint_revisions")
