"""issue 9: server-side sessions, login throttling, keyed audit chain marker.

Revision ID: 0003
Revises: 0002

* ``user_sessions``: one row per sign-in; the cookie carries a random token, the row its SHA-256.
* ``login_attempts``: every sign-in attempt (username, client address, time, success), read by
  the database-wide throttle (all worker processes agree).
* ``audit_entries.hash_alg``: per-entry marker of how ``row_hash`` was made (NULL: plain SHA-256
  of entries written before this revision; ``hmac-sha256``: keyed). Added with a plain
  ``ALTER TABLE ... ADD COLUMN`` (no batch table copy), so the append-only triggers stay.

(The chain 0003-0009 was laid out in advance, one revision per issue, so that parallel work
never forks the migration history.)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(length=200), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index(op.f("ix_login_attempts_username"), "login_attempts", ["username"], unique=False)
    op.create_index(op.f("ix_login_attempts_client_addr"), "login_attempts", ["client_addr"], unique=False)
    op.create_index(op.f("ix_login_attempts_occurred_at"), "login_attempts", ["occurred_at"], unique=False)
    op.add_column("audit_entries", sa.Column("hash_alg", sa.String(length=16), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place (no table copy: the triggers stay).
        op.execute("ALTER TABLE audit_entries DROP COLUMN hash_alg")
    else:
        op.drop_column("audit_entries", "hash_alg")
    op.drop_index(op.f("ix_login_attempts_occurred_at"), table_name="login_attempts")
    op.drop_index(op.f("ix_login_attempts_client_addr"), table_name="login_attempts")
    op.drop_index(op.f("ix_login_attempts_username"), table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
