"""notes can be pinned

Revision ID: c3
Revises: b2
"""
from alembic import op
import sqlalchemy as sa

revision = "c3"
down_revision = "b2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notes") as batch:
        batch.add_column(
            sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("pinned")
