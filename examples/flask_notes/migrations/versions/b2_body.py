"""notes get a body

Revision ID: b2
Revises: a1
"""
from alembic import op
import sqlalchemy as sa

revision = "b2"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("body", sa.Text, nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("body")
