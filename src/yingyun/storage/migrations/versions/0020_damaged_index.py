"""blob_digests: an index on the scrub's finding, for the damaged objects the cloud asks its gateways for

Revision ID: 0020
Revises: 0019
"""
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_blob_digests_state", "blob_digests", ["state", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_blob_digests_state", table_name="blob_digests")
