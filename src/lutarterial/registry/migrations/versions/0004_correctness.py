"""issue 10: site protocol configuration, CTCAE baseline setting.

Revision ID: 0004
Revises: 0003

* ``registry_settings``: registry-wide settings (audited), e.g. ``ctcae_require_baseline``: when
  true, labs entered in the registry are graded with the strict baseline rule (no grade that a
  missing baseline could change); by default a missing baseline is taken as normal.
* ``site_protocol_configs``: a site's effective date for a protocol version, with the document
  that sets it (audited; shown on the screening page). Without a row the packaged default
  version applies.

(The chain 0003-0009 was laid out in advance, one revision per issue, so that parallel work
never forks the migration history.)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_settings")),
        sa.UniqueConstraint("key", name=op.f("uq_registry_settings_key")),
    )
    op.create_table(
        "site_protocol_configs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("protocol_version", sa.String(length=50), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_site_protocol_configs_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_protocol_configs")),
        sa.UniqueConstraint("site_id", "protocol_version", name=op.f("uq_site_protocol_configs_site_id_protocol_version")),
    )
    op.create_index(op.f("ix_site_protocol_configs_site_id"), "site_protocol_configs", ["site_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_site_protocol_configs_site_id"), table_name="site_protocol_configs")
    op.drop_table("site_protocol_configs")
    op.drop_table("registry_settings")
