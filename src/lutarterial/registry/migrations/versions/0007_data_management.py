"""issue 13: data management: schedule_entries, dm_queries, dm_query_messages, signatures,
record_locks, sdv_marks (all audited).

Revision ID: 0007
Revises: 0006

(The chain 0003-0009 was laid out in advance, one revision per issue, so that parallel work
never forks the migration history.)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = ("schedule_entries", "dm_queries", "dm_query_messages", "signatures", "record_locks", "sdv_marks")


def upgrade() -> None:
    op.create_table(
        "schedule_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("visit_key", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("anchor", sa.String(length=40), nullable=True),
        sa.Column("anchor_date", sa.Date(), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("window_start", sa.Date(), nullable=True),
        sa.Column("window_end", sa.Date(), nullable=True),
        sa.Column("protocol_version", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], name=op.f("fk_schedule_entries_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_entries")),
        sa.UniqueConstraint("participant_id", "visit_key", name=op.f("uq_schedule_entries_participant_id_visit_key")),
    )
    with op.batch_alter_table("schedule_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_entries_participant_id"), ["participant_id"], unique=False)
    op.create_table(
        "dm_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=True),
        sa.Column("row_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("check_key", sa.String(length=200), nullable=True),
        sa.Column("opened_by", sa.String(length=100), nullable=False),
        sa.Column("assigned_to", sa.String(length=100), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name=op.f("ck_dm_queries_status")),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], name=op.f("fk_dm_queries_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dm_queries")),
    )
    with op.batch_alter_table("dm_queries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dm_queries_check_key"), ["check_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_dm_queries_participant_id"), ["participant_id"], unique=False)
    op.create_table(
        "dm_query_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], name=op.f("fk_dm_query_messages_participant_id_participants")),
        sa.ForeignKeyConstraint(["query_id"], ["dm_queries.id"], name=op.f("fk_dm_query_messages_query_id_dm_queries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dm_query_messages")),
    )
    with op.batch_alter_table("dm_query_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dm_query_messages_participant_id"), ["participant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dm_query_messages_query_id"), ["query_id"], unique=False)
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=True),
        sa.Column("row_id", sa.Integer(), nullable=True),
        sa.Column("meaning", sa.String(length=60), nullable=False),
        sa.Column("signer_user_id", sa.Integer(), nullable=True),
        sa.Column("signer_username", sa.String(length=100), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], name=op.f("fk_signatures_participant_id_participants")),
        sa.ForeignKeyConstraint(["signer_user_id"], ["users.id"], name=op.f("fk_signatures_signer_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signatures_participant_id"), ["participant_id"], unique=False)
    op.create_table(
        "record_locks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=True),
        sa.Column("row_id", sa.Integer(), nullable=True),
        sa.Column("locked_by", sa.String(length=100), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_reason", sa.Text(), nullable=False),
        sa.Column("unlocked_by", sa.String(length=100), nullable=True),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unlock_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], name=op.f("fk_record_locks_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_locks")),
    )
    with op.batch_alter_table("record_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_record_locks_participant_id"), ["participant_id"], unique=False)
    op.create_table(
        "sdv_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("verified_by", sa.String(length=100), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], name=op.f("fk_sdv_marks_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sdv_marks")),
    )
    with op.batch_alter_table("sdv_marks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sdv_marks_participant_id"), ["participant_id"], unique=False)



def downgrade() -> None:
    for name in reversed(_TABLES):
        op.drop_table(name)
