"""issue 12: statistician role, endpoint/report records.

Revision ID: 0006
Revises: 0005

(The chain 0003-0009 was laid out in advance, one revision per issue, so that parallel work
never forks the migration history; a revision with nothing to do stays a no-op.)
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nothing to change: the ``statistician`` role is a new value of ``user_roles.role`` (a short
    # string checked by the services, no CHECK constraint), and endpoint results and reports are
    # computed from existing rows on demand (reproducible from the audit head), not stored.
    pass


def downgrade() -> None:
    # Users holding the statistician role would lose all access on an older code base; the rows
    # stay valid strings, so no data change is needed either way.
    pass
