"""issue 11: imaging studies, series, files, analysis jobs; analysis supersession.

Revision ID: 0005
Revises: 0004

(The chain 0003-0009 was laid out in advance, one revision per issue, so that parallel work
never forks the migration history; a revision with nothing to do stays a no-op.)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ANALYSES = ("imaging_analyses", "dosimetry_analyses")


def upgrade() -> None:
    op.create_table(
        "imaging_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("patient_id_sha256", sa.String(length=64), nullable=True),
        sa.Column("patient_name_sha256", sa.String(length=64), nullable=True),
        sa.Column("birth_date_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_imaging_studies_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_studies")),
        sa.UniqueConstraint("study_instance_uid", name=op.f("uq_imaging_studies_study_instance_uid")),
    )
    with op.batch_alter_table("imaging_studies", schema=None) as b:
        b.create_index(b.f("ix_imaging_studies_participant_id"), ["participant_id"], unique=False)

    op.create_table(
        "imaging_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("frame_of_reference_uid", sa.String(length=64), nullable=True),
        sa.Column("acquisition_time", sa.String(length=32), nullable=True),
        sa.Column("radiopharmaceutical", sa.String(length=100), nullable=True),
        sa.Column("nuclide", sa.String(length=50), nullable=True),
        sa.Column("injected_mbq", sa.Float(), nullable=True),
        sa.Column("injection_time", sa.String(length=32), nullable=True),
        sa.Column("route", sa.String(length=3), nullable=True),
        sa.Column("time_after_admin_h", sa.Float(), nullable=True),
        sa.Column("institution", sa.String(length=100), nullable=True),
        sa.Column("camera", sa.String(length=100), nullable=True),
        sa.Column("n_files", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("route IS NULL OR route IN ('iv', 'iah')", name=op.f("ck_imaging_series_route")),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_imaging_series_participant_id_participants")),
        sa.ForeignKeyConstraint(["study_id"], ["imaging_studies.id"],
                                name=op.f("fk_imaging_series_study_id_imaging_studies")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_imaging_series_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_series")),
        sa.UniqueConstraint("series_instance_uid", name=op.f("uq_imaging_series_series_instance_uid")),
    )
    with op.batch_alter_table("imaging_series", schema=None) as b:
        b.create_index(b.f("ix_imaging_series_participant_id"), ["participant_id"], unique=False)
        b.create_index(b.f("ix_imaging_series_study_id"), ["study_id"], unique=False)

    op.create_table(
        "imaging_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("store_path", sa.String(length=200), nullable=False),
        sa.Column("original_name", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_imaging_files_participant_id_participants")),
        sa.ForeignKeyConstraint(["series_id"], ["imaging_series.id"],
                                name=op.f("fk_imaging_files_series_id_imaging_series")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_files")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_imaging_files_sop_instance_uid")),
    )
    with op.batch_alter_table("imaging_files", schema=None) as b:
        b.create_index(b.f("ix_imaging_files_participant_id"), ["participant_id"], unique=False)
        b.create_index(b.f("ix_imaging_files_series_id"), ["series_id"], unique=False)
        b.create_index(b.f("ix_imaging_files_sha256"), ["sha256"], unique=False)

    op.create_table(
        "analysis_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("result_ids", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_analysis_jobs_status")),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_analysis_jobs_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_jobs")),
    )
    with op.batch_alter_table("analysis_jobs", schema=None) as b:
        b.create_index(b.f("ix_analysis_jobs_participant_id"), ["participant_id"], unique=False)

    for table in _ANALYSES:
        with op.batch_alter_table(table, schema=None) as b:
            b.add_column(sa.Column("superseded_by_id", sa.Integer(), nullable=True))
            b.add_column(sa.Column("superseded_reason", sa.Text(), nullable=True))
            b.add_column(sa.Column("reproduced_at", sa.DateTime(timezone=True), nullable=True))
            b.create_foreign_key(b.f(f"fk_{table}_superseded_by_id_{table}"), table, ["superseded_by_id"], ["id"])


def downgrade() -> None:
    for table in _ANALYSES:
        with op.batch_alter_table(table, schema=None) as b:
            b.drop_constraint(b.f(f"fk_{table}_superseded_by_id_{table}"), type_="foreignkey")
            b.drop_column("reproduced_at")
            b.drop_column("superseded_reason")
            b.drop_column("superseded_by_id")
    for table, indexes in (("analysis_jobs", ("participant_id",)),
                           ("imaging_files", ("participant_id", "series_id", "sha256")),
                           ("imaging_series", ("participant_id", "study_id")),
                           ("imaging_studies", ("participant_id",))):
        with op.batch_alter_table(table, schema=None) as b:
            for col in indexes:
                b.drop_index(b.f(f"ix_{table}_{col}"))
        op.drop_table(table)
