"""Initial schema: call flows, subscribers, DID groups, DIDs, rooms, keychains, claims, PINs.

Also inserts the ``CONF`` call flow (id 3, as in the CarrierX samples) with no template
overrides: its templates are the catalogue defaults of ``conf_server.domain.attributes``.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)


def _call_flows() -> sa.Table:
    return op.create_table(
        "call_flows",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_flows"),
        sa.UniqueConstraint("name", name="uq_call_flows_name"),
    )


def _subscribers() -> None:
    op.create_table(
        "subscribers",
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("first_name", sa.String(128), nullable=False),
        sa.Column("last_name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("phone_number", sa.String(32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("role", sa.Integer(), nullable=False),
        sa.Column("parent_sid", sa.String(64), nullable=True),
        sa.Column("callback_url", sa.String(2048), nullable=False),
        sa.Column("created", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_sid"],
            ["subscribers.sid"],
            name="fk_subscribers_parent_sid_subscribers",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("sid", name="pk_subscribers"),
        sa.UniqueConstraint("login", name="uq_subscribers_login"),
    )


def _did_groups() -> None:
    op.create_table(
        "did_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("call_flow_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_sid", sa.String(64), nullable=True),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_flow_id"],
            ["call_flows.id"],
            name="fk_did_groups_call_flow_id_call_flows",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_sid"],
            ["subscribers.sid"],
            name="fk_did_groups_subscriber_sid_subscribers",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_did_groups"),
        sa.UniqueConstraint("name", name="uq_did_groups_name"),
    )


def _dids() -> None:
    op.create_table(
        "dids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_number", sa.String(16), nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("did_group_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["did_group_id"],
            ["did_groups.id"],
            name="fk_dids_did_group_id_did_groups",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dids"),
        sa.UniqueConstraint("phone_number", name="uq_dids_phone_number"),
    )


def _meeting_rooms() -> None:
    op.create_table(
        "meeting_rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_number", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("primary_did_group_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_sid", sa.String(64), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["primary_did_group_id"],
            ["did_groups.id"],
            name="fk_meeting_rooms_primary_did_group_id_did_groups",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_sid"],
            ["subscribers.sid"],
            name="fk_meeting_rooms_subscriber_sid_subscribers",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_rooms"),
        sa.UniqueConstraint("meeting_number", name="uq_meeting_rooms_meeting_number"),
    )


def _room_children() -> None:
    op.create_table(
        "room_did_groups",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("did_group_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["meeting_rooms.id"],
            name="fk_room_did_groups_room_id_meeting_rooms",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["did_group_id"],
            ["did_groups.id"],
            name="fk_room_did_groups_did_group_id_did_groups",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("room_id", "did_group_id", name="pk_room_did_groups"),
    )
    op.create_table(
        "meeting_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("access_code", sa.String(32), nullable=False),
        sa.Column("role", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["meeting_rooms.id"],
            name="fk_meeting_keys_room_id_meeting_rooms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_keys"),
        sa.UniqueConstraint("room_id", "access_code", name="uq_meeting_keys_room_id_access_code"),
    )


def _claims_and_pins() -> None:
    op.create_table(
        "access_code_claims",
        sa.Column("did_group_id", sa.Integer(), nullable=False),
        sa.Column("access_code", sa.String(32), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["did_group_id"],
            ["did_groups.id"],
            name="fk_access_code_claims_did_group_id_did_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["meeting_rooms.id"],
            name="fk_access_code_claims_room_id_meeting_rooms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("did_group_id", "access_code", name="pk_access_code_claims"),
    )
    op.create_table(
        "pins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("pin", sa.String(32), nullable=False),
        sa.Column("organizer", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["meeting_rooms.id"],
            name="fk_pins_room_id_meeting_rooms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pins"),
        sa.UniqueConstraint("room_id", "pin", name="uq_pins_room_id_pin"),
    )


def upgrade() -> None:
    call_flows = _call_flows()
    _subscribers()
    _did_groups()
    _dids()
    _meeting_rooms()
    _room_children()
    _claims_and_pins()
    op.bulk_insert(
        call_flows, [{"id": 3, "name": "CONF", "path": "callflows/CONF", "attributes": {}}]
    )


def downgrade() -> None:
    for table in (
        "pins",
        "access_code_claims",
        "meeting_keys",
        "room_did_groups",
        "meeting_rooms",
        "dids",
        "did_groups",
        "subscribers",
        "call_flows",
    ):
        op.drop_table(table)
