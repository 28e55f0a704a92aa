"""SQLAlchemy 2 typed tables.

The migrations create exactly this schema (tested).

BSN columns hold the nine digits (`Bsn.value`): this is the store. Every timestamp is a
`UtcDateTime` (aware UTC in, aware UTC out).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prefetch.store.db import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_KINDS = ("scheduled", "manual")
RUN_STATES = ("planned", "running", "finished", "aborted", "incomplete")
ITEM_STATES = ("pending", "in_flight", "skipped", "done", "retry_wait", "failed")
AUDIT_ACTIONS = ("C", "R", "U", "D", "E")
CHECKPOINT_KINDS = ("daily", "purge")

JsonType = JSON().with_variant(JSONB(), "postgresql")
#: Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {dt.datetime: UtcDateTime}  # noqa: RUF012


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # One scheduled run per schedule and clinic day (resume); manual runs repeat.
        Index(
            "uq_runs_scheduled_once",
            "schedule_id",
            "clinic_day",
            "kind",
            unique=True,
            sqlite_where=text("kind = 'scheduled'"),
            postgresql_where=text("kind = 'scheduled'"),
        ),
        CheckConstraint(_in("state", RUN_STATES), name="state"),
        CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(String(128))
    clinic_day: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    counts: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class RunItemRow(Base):
    __tablename__ = "run_items"
    __table_args__ = (
        UniqueConstraint("run_id", "patient_local_id"),
        CheckConstraint(_in("state", ITEM_STATES), name="state"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index(None, "run_id", "state", "id"),  # a claim is an index seek
        Index(None, "bsn"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    patient_local_id: Mapped[str] = mapped_column(String(64))
    bsn: Mapped[str | None] = mapped_column(String(9))
    clinics: Mapped[list[str]] = mapped_column(JsonType)
    state: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    outcome_kind: Mapped[str | None] = mapped_column(String(32))
    outcome_code: Mapped[str | None] = mapped_column(String(64))
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]
    dispense_count: Mapped[int] = mapped_column(Integer)
    lease_until: Mapped[dt.datetime | None]  # in flight: the worker's until then
    sent_at: Mapped[dt.datetime | None]  # in flight: when the query left


class DispenseRow(Base):
    __tablename__ = "dispenses"
    __table_args__ = (
        UniqueConstraint("id_root", "id_extension"),
        Index(None, "patient_bsn"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id_root: Mapped[str] = mapped_column(String(128))
    id_extension: Mapped[str] = mapped_column(String(128))  # "" when the id has none
    patient_bsn: Mapped[str] = mapped_column(String(9))
    dispensed_on: Mapped[dt.date | None] = mapped_column(Date)
    product_code: Mapped[str | None] = mapped_column(String(64))
    product_system: Mapped[str | None] = mapped_column(String(128))
    product_display: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType)
    pharmacy_ura: Mapped[str | None] = mapped_column(String(16))
    pharmacy_name: Mapped[str | None] = mapped_column(Text)
    source_application_id: Mapped[str | None] = mapped_column(String(64))
    source_system_uzi: Mapped[str | None] = mapped_column(String(16))
    batch_message_id: Mapped[str | None] = mapped_column(String(256))
    item_message_id: Mapped[str | None] = mapped_column(String(256))
    query_id: Mapped[str] = mapped_column(String(256))
    fetched_at: Mapped[dt.datetime]
    first_fetched_at: Mapped[dt.datetime]
    run_id: Mapped[str | None] = mapped_column(String(64))  # no FK: runs may be purged
    responsible_uzi: Mapped[str] = mapped_column(String(16))
    responsible_name: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    """NEN 7513 log line. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("event_id"),
        CheckConstraint(_in("action_code", AUDIT_ACTIONS), name="action_code"),
        Index(None, "patient_bsn", "occurred_at"),
        Index(None, "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    action_code: Mapped[str] = mapped_column(String(1))
    occurred_at: Mapped[dt.datetime]
    user_id: Mapped[str] = mapped_column(String(128))
    user_role: Mapped[str | None] = mapped_column(String(64))
    responsible_user_id: Mapped[str | None] = mapped_column(String(128))
    patient_bsn: Mapped[str | None] = mapped_column(String(9))
    object_detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    authorisation_basis: Mapped[str | None] = mapped_column(String(128))
    source_system: Mapped[str] = mapped_column(String(128))
    source_workstation: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(64))
    # The hash chain (prefetch/store/audit_chain.py); NULL only on rows older than it.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """A signed statement about the audit chain: its head (daily) or the anchor a purge
    of old rows left (the first row kept and the hash it points back to). Append-only."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (CheckConstraint(_in("kind", CHECKPOINT_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime]
    head_id: Mapped[int | None] = mapped_column(BigInteger)
    head_hash: Mapped[str | None] = mapped_column(String(64))
    anchor_id: Mapped[int | None] = mapped_column(BigInteger)
    anchor_prev_hash: Mapped[str | None] = mapped_column(String(64))
    rows_removed: Mapped[int] = mapped_column(Integer)
    signer: Mapped[str] = mapped_column(Text)
    certificate_pem: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)


class MandateRow(Base):
    __tablename__ = "mandates"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    mandating_uzi: Mapped[str] = mapped_column(String(16))
    mandating_role: Mapped[str] = mapped_column(String(16))
    mandating_name: Mapped[str] = mapped_column(Text)
    mandating_ura: Mapped[str | None] = mapped_column(String(16))
    mandated_id: Mapped[str] = mapped_column(String(16))
    schedules: Mapped[list[str]] = mapped_column(JsonType)
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    token_xml: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class BookRow(Base):
    """The appointment book: the latest state of each appointment, per source and id."""

    __tablename__ = "appointment_book"
    __table_args__ = (
        Index(None, "clinic", "start_at"),
        Index(None, "bsn"),
    )

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[dt.datetime | None]  # the sender's time of the change, when it says
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime | None]
    clinic: Mapped[str] = mapped_column(String(256))
    agenda: Mapped[str | None] = mapped_column(String(256))
    appointment_type: Mapped[str] = mapped_column(String(256))
    patient_local_id: Mapped[str] = mapped_column(String(256))
    bsn: Mapped[str | None] = mapped_column(String(9))
    bsn_verified: Mapped[bool]
    bsn_invalid: Mapped[bool]
    consent: Mapped[str] = mapped_column(String(16))
    clinician_uzi: Mapped[str | None] = mapped_column(String(256))
    updated_at: Mapped[dt.datetime]


class ObjectionRow(Base):
    """The local objection register: a patient who refused LSP queries here."""

    __tablename__ = "objections"

    bsn: Mapped[str] = mapped_column(String(9), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime]
    recorded_by: Mapped[str] = mapped_column(String(128))


DESK_ROLES = ("assistant", "polimanager", "administrator")


class DeskUserRow(Base):
    """A desk account. `password_hash` (argon2) is empty for single-sign-on-only users."""

    __tablename__ = "desk_users"
    __table_args__ = (CheckConstraint(_in("role", DESK_ROLES), name="role"),)

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    mandate_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime]
    password_changed_at: Mapped[dt.datetime | None]
    disabled_at: Mapped[dt.datetime | None]


class SendBudgetRow(Base):
    """The one shared send budget (`id` 1): the lock that serialises reservations on
    PostgreSQL (`FOR UPDATE`) and a global pause asked for by the LSP."""

    __tablename__ = "send_budget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    paused_until: Mapped[float] = mapped_column(Double, server_default=text("0"))


class SendLeaseRow(Base):
    """One query's send slot: its send time (wall-clock seconds since the epoch) and the
    lease under which it counts as in flight until released or expired."""

    __tablename__ = "send_leases"
    __table_args__ = (Index("ix_send_leases_send_at", "send_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    holder: Mapped[str] = mapped_column(String(128))
    send_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    released_at: Mapped[float | None] = mapped_column(Double)


class LockRow(Base):
    """Who holds a named lock (`prefetch.store.locks`)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    since: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]


class ApiTokenRow(Base):
    """A bearer token of an API client (the EPD): only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("token_hash"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
