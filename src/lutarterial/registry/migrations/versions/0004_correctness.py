"""issue 10: site protocol configuration, CTCAE baseline setting.

Revision ID: 0004
Revises: 0003

(The chain 0003-0009 was laid out in advance, one revision per issue, so that parallel work
never forks the migration history; a revision with nothing to do stays a no-op.)
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
