"""Initial registry schema: sites, users, participants and study data, append-only audit trail.

The audit table gets triggers refusing UPDATE/DELETE (see ``registry.audit``). Sites are
seeded by ``registry.db.upgrade`` from the site configuration, with audit rows.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 23:26:57.836565
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lutarterial.registry.audit import drop_append_only_triggers, install_append_only_triggers


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('occurred_at', sa.String(length=32), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_username', sa.String(length=100), nullable=False),
    sa.Column('actor_roles', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('row_id', sa.String(length=64), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('old_values', sa.Text(), nullable=True),
    sa.Column('new_values', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('row_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    sa.UniqueConstraint('row_hash', name=op.f('uq_audit_entries_row_hash'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_site_id'), ['site_id'], unique=False)

    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('city', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('code', name=op.f('uq_sites_code'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=400), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_number', sa.String(length=20), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('site_seq', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=True),
    sa.Column('year_of_birth', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_participants_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participants')),
    sa.UniqueConstraint('site_id', 'site_seq', name=op.f('uq_participants_site_id_site_seq')),
    sa.UniqueConstraint('trial_number', name=op.f('uq_participants_trial_number'))
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participants_site_id'), ['site_id'], unique=False)

    op.create_table('site_memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_site_memberships_site_id_sites')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_site_memberships_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_memberships')),
    sa.UniqueConstraint('user_id', 'site_id', name=op.f('uq_site_memberships_user_id_site_id'))
    )
    with op.batch_alter_table('site_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_memberships_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_site_memberships_user_id'), ['user_id'], unique=False)

    op.create_table('user_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_roles')),
    sa.UniqueConstraint('user_id', 'role', name=op.f('uq_user_roles_user_id_role'))
    )
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_roles_user_id'), ['user_id'], unique=False)

    op.create_table('adverse_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=200), nullable=False),
    sa.Column('meddra_code', sa.String(length=20), nullable=True),
    sa.Column('grade', sa.Integer(), nullable=False),
    sa.Column('onset_date', sa.Date(), nullable=False),
    sa.Column('resolution_date', sa.Date(), nullable=True),
    sa.Column('serious', sa.Boolean(), nullable=False),
    sa.Column('relatedness', sa.String(length=30), nullable=False),
    sa.Column('outcome', sa.String(length=50), nullable=True),
    sa.Column('action_taken', sa.String(length=100), nullable=True),
    sa.CheckConstraint('grade BETWEEN 1 AND 5', name=op.f('ck_adverse_events_grade_range')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_adverse_events_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adverse_events'))
    )
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adverse_events_participant_id'), ['participant_id'], unique=False)

    op.create_table('consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=50), nullable=False),
    sa.Column('signed_date', sa.Date(), nullable=False),
    sa.Column('withdrawal_date', sa.Date(), nullable=True),
    sa.Column('withdrawal_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_consents_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_participant_id'), ['participant_id'], unique=False)

    op.create_table('participant_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('family_name', sa.String(length=200), nullable=False),
    sa.Column('given_name', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('hospital_id', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_participant_identities_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participant_identities')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_participant_identities_participant_id'))
    )
    op.create_table('screening_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('protocol_version', sa.String(length=50), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('overall', sa.String(length=30), nullable=False),
    sa.Column('engine', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_screening_results_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_results'))
    )
    with op.batch_alter_table('screening_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screening_results_participant_id'), ['participant_id'], unique=False)

    op.create_table('visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('planned_date', sa.Date(), nullable=True),
    sa.Column('visit_date', sa.Date(), nullable=True),
    sa.Column('activity_mbq', sa.Float(), nullable=True),
    sa.Column('artery', sa.String(length=200), nullable=True),
    sa.Column('catheter_position', sa.String(length=200), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.CheckConstraint('activity_mbq IS NULL OR activity_mbq >= 0', name=op.f('ck_visits_activity_nonneg')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_visits_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    sa.UniqueConstraint('participant_id', 'kind', 'number', name=op.f('uq_visits_participant_id_kind_number'))
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visits_participant_id'), ['participant_id'], unique=False)

    op.create_table('enrolments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('screening_result_id', sa.Integer(), nullable=False),
    sa.Column('enrolled_date', sa.Date(), nullable=False),
    sa.Column('enrolled_by_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['enrolled_by_user_id'], ['users.id'], name=op.f('fk_enrolments_enrolled_by_user_id_users')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_enrolments_participant_id_participants')),
    sa.ForeignKeyConstraint(['screening_result_id'], ['screening_results.id'], name=op.f('fk_enrolments_screening_result_id_screening_results')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolments')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_enrolments_participant_id'))
    )
    op.create_table('imaging_analyses',
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=True),
    sa.Column('series_instance_uids', sa.JSON(), nullable=False),
    sa.Column('input_hashes', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('software_version', sa.String(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_imaging_analyses_participant_id_participants')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_imaging_analyses_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imaging_analyses'))
    )
    with op.batch_alter_table('imaging_analyses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imaging_analyses_participant_id'), ['participant_id'], unique=False)

    op.create_table('lab_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('analyte', sa.String(length=50), nullable=False),
    sa.Column('loinc', sa.String(length=20), nullable=True),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=50), nullable=False),
    sa.Column('value_canonical', sa.Float(), nullable=False),
    sa.Column('unit_canonical', sa.String(length=50), nullable=False),
    sa.Column('lln', sa.Float(), nullable=True),
    sa.Column('uln', sa.Float(), nullable=True),
    sa.Column('collected_date', sa.Date(), nullable=False),
    sa.Column('ctcae_term', sa.String(length=200), nullable=True),
    sa.Column('ctcae_grade', sa.Integer(), nullable=True),
    sa.Column('grading', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_lab_results_participant_id_participants')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_lab_results_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_results'))
    )
    with op.batch_alter_table('lab_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lab_results_participant_id'), ['participant_id'], unique=False)

    op.create_table('recist_assessments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('assessment_date', sa.Date(), nullable=False),
    sa.Column('target_sum_mm', sa.Float(), nullable=True),
    sa.Column('response', sa.String(length=10), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_recist_assessments_participant_id_participants')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_recist_assessments_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recist_assessments'))
    )
    with op.batch_alter_table('recist_assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recist_assessments_participant_id'), ['participant_id'], unique=False)

    op.create_table('dosimetry_analyses',
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('imaging_analysis_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=True),
    sa.Column('series_instance_uids', sa.JSON(), nullable=False),
    sa.Column('input_hashes', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('software_version', sa.String(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['imaging_analysis_id'], ['imaging_analyses.id'], name=op.f('fk_dosimetry_analyses_imaging_analysis_id_imaging_analyses')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_dosimetry_analyses_participant_id_participants')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_dosimetry_analyses_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dosimetry_analyses'))
    )
    with op.batch_alter_table('dosimetry_analyses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dosimetry_analyses_participant_id'), ['participant_id'], unique=False)

    install_append_only_triggers(op.get_bind())


def downgrade() -> None:
    drop_append_only_triggers(op.get_bind())
    with op.batch_alter_table('dosimetry_analyses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dosimetry_analyses_participant_id'))

    op.drop_table('dosimetry_analyses')
    with op.batch_alter_table('recist_assessments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recist_assessments_participant_id'))

    op.drop_table('recist_assessments')
    with op.batch_alter_table('lab_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lab_results_participant_id'))

    op.drop_table('lab_results')
    with op.batch_alter_table('imaging_analyses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imaging_analyses_participant_id'))

    op.drop_table('imaging_analyses')
    op.drop_table('enrolments')
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visits_participant_id'))

    op.drop_table('visits')
    with op.batch_alter_table('screening_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screening_results_participant_id'))

    op.drop_table('screening_results')
    op.drop_table('participant_identities')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_participant_id'))

    op.drop_table('consents')
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adverse_events_participant_id'))

    op.drop_table('adverse_events')
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_roles_user_id'))

    op.drop_table('user_roles')
    with op.batch_alter_table('site_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_memberships_user_id'))
        batch_op.drop_index(batch_op.f('ix_site_memberships_site_id'))

    op.drop_table('site_memberships')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participants_site_id'))

    op.drop_table('participants')
    op.drop_table('users')
    op.drop_table('sites')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_site_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_participant_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_occurred_at'))

    op.drop_table('audit_entries')
