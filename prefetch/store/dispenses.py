"""Stored dispenses: idempotent upsert keyed on the dispense's own id, and the read side."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import JSON, Connection, Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from prefetch.domain.bsn import Bsn
from prefetch.domain.dispense import Dispense, DispenseProvenance, dispense_from_json
from prefetch.domain.outcome import OutcomeKind
from prefetch.store._support import Sessions, bsn_value
from prefetch.store.db import UtcDateTime
from prefetch.store.records import ItemState, RecordResult, StoredDispense
from prefetch.store.tables import DispenseRow, RunItemRow

#: Outcomes that mean the LSP answered for the patient (what "fresh" is measured on).
_ANSWERED = tuple(
    k.value for k in (OutcomeKind.RECORDS, OutcomeKind.NO_RECORDS, OutcomeKind.NO_REGISTRATIONS)
)
_CHUNK = 500  # rows per INSERT statement (keeps SQLite under its variable limit)
#: Columns refreshed when a dispense arrives again (first_fetched_at and the key stay).
_REFRESHED = (
    "patient_bsn",
    "dispensed_on",
    "product_code",
    "product_system",
    "product_display",
    "data",
    "pharmacy_ura",
    "pharmacy_name",
    "source_application_id",
    "source_system_uzi",
    "batch_message_id",
    "item_message_id",
    "query_id",
    "fetched_at",
    "run_id",
    "responsible_uzi",
    "responsible_name",
)


def _row(bsn: str, dispense: Dispense, prov: DispenseProvenance) -> dict[str, Any]:
    root, extension = dispense.key
    code = dispense.product_code
    return {
        "id_root": root,
        "id_extension": extension,
        "patient_bsn": bsn,
        "dispensed_on": dispense.dispensed_on,
        "product_code": code.code if code else None,
        "product_system": code.system if code else None,
        "product_display": dispense.product.display_name if dispense.product else None,
        "data": dispense.to_json(),
        "pharmacy_ura": prov.pharmacy_ura,
        "pharmacy_name": prov.pharmacy_name,
        "source_application_id": prov.source_application_id,
        "source_system_uzi": prov.source_system_uzi,
        "batch_message_id": prov.batch_message_id,
        "item_message_id": prov.item_message_id,
        "query_id": prov.query_id,
        "fetched_at": prov.fetched_at,
        "first_fetched_at": prov.fetched_at,
        "run_id": prov.run_id,
        "responsible_uzi": prov.responsible_uzi,
        "responsible_name": prov.responsible_name,
    }


_TABLE = cast("Table", DispenseRow.__table__)


def _upsert(insert: Any) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE, only from a fetch at least as recent."""
    return insert.on_conflict_do_update(
        index_elements=["id_root", "id_extension"],
        set_={name: insert.excluded[name] for name in _REFRESHED},
        where=_TABLE.c.fetched_at <= insert.excluded.fetched_at,
    )


_SQLITE_UPSERT = _upsert(sqlite.insert(_TABLE))
#: Column order of the rows `_row` builds (the key first).
_COLUMNS = tuple(c.name for c in _TABLE.columns if c.name != "id")


def _pg_upsert_sql() -> str:
    """One statement for any number of rows: each column arrives as one array and
    `unnest` turns them into rows. The text never changes, so psycopg parses it once and
    prepares it on the server; a multi-row VALUES list would be a new text per row count.
    PostgreSQL reports per row whether it was inserted (`xmax = 0`) or updated; rows
    skipped by the WHERE clause (an older fetch) are not returned."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    arrays, values = [], []
    for name in _COLUMNS:
        kind = _TABLE.c[name].type
        if isinstance(kind, JSON):  # JSON text in, cast per row (jsonb[] needs wrappers)
            arrays.append("%b::text[]")
            values.append(f"{name}::jsonb")
        else:
            arrays.append(f"%b::{kind.compile(dialect=dialect)}[]")
            values.append(name)
    refreshed = ", ".join(f"{name} = excluded.{name}" for name in _REFRESHED)
    # Names and types come from the table definition; every value is bound.
    return (
        f"INSERT INTO {_TABLE.name} ({', '.join(_COLUMNS)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM unnest"
        f"({', '.join(arrays)}) AS u({', '.join(_COLUMNS)}) "
        f"ON CONFLICT (id_root, id_extension) DO UPDATE SET {refreshed} "
        f"WHERE {_TABLE.name}.fetched_at <= excluded.fetched_at "
        "RETURNING (xmax = 0)"
    )


_PG_UPSERT = _pg_upsert_sql()
_UTC = UtcDateTime()


def _pg_upsert(connection: Connection, rows: list[dict[str, Any]]) -> RecordResult:
    dialect = connection.dialect
    columns: list[list[Any]] = []
    for name in _COLUMNS:
        values = [r[name] for r in rows]
        if name == "data":
            values = [json.dumps(v) for v in values]
        elif name in ("fetched_at", "first_fetched_at"):  # aware UTC, as UtcDateTime binds
            values = [_UTC.process_bind_param(v, dialect) for v in values]
        columns.append(values)
    flags = [f for (f,) in connection.exec_driver_sql(_PG_UPSERT, tuple(columns))]
    inserted = sum(1 for f in flags if f)
    return RecordResult(inserted=inserted, updated=len(flags) - inserted)


def _rows(bsn: str, pairs: Sequence[tuple[Dispense, DispenseProvenance]]) -> list[dict[str, Any]]:
    """One row per dispense id (a key may not appear twice in one upsert statement): the
    latest fetch wins, first_fetched_at is the earliest fetch seen in this batch. Sorted by
    key, so concurrent writers lock rows in the same order (no deadlocks)."""
    latest: dict[tuple[str, str], tuple[Dispense, DispenseProvenance]] = {}
    earliest: dict[tuple[str, str], dt.datetime] = {}
    for dispense, prov in pairs:
        key = dispense.key
        seen = latest.get(key)
        if seen is None or prov.fetched_at >= seen[1].fetched_at:
            latest[key] = (dispense, prov)
        if key not in earliest or prov.fetched_at < earliest[key]:
            earliest[key] = prov.fetched_at
    rows = []
    for key in sorted(latest):
        row = _row(bsn, *latest[key])
        row["first_fetched_at"] = earliest[key]
        rows.append(row)
    return rows


def upsert_dispenses(
    session: Session, bsn: str, pairs: Sequence[tuple[Dispense, DispenseProvenance]]
) -> RecordResult:
    """Insert new dispenses, refresh known ones from a fetch at least as recent.

    first_fetched_at is the first fetch recorded and is never changed by a refresh; an
    answer from an older fetch arriving after a newer one changes nothing.

    Runs in the caller's transaction. PostgreSQL counts through `xmax = 0` on the
    returned rows; SQLite (whose IMMEDIATE write transaction holds the database lock)
    looks the keys up first.
    """
    rows = _rows(bsn, pairs)
    if not rows:
        return RecordResult(inserted=0, updated=0)
    connection = session.connection()
    table = _TABLE
    if connection.dialect.name == "postgresql":
        return _pg_upsert(connection, rows)
    inserted = updated = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        # Two IN lists, not a row-value IN: SQLite answers these from the unique index
        # (a row-value IN scans the table); extra pairs are ignored below.
        found = connection.execute(
            select(table.c.id_root, table.c.id_extension, table.c.fetched_at).where(
                table.c.id_root.in_({r["id_root"] for r in chunk}),
                table.c.id_extension.in_({r["id_extension"] for r in chunk}),
            )
        )
        known = {(root, ext): at for root, ext, at in found}
        for r in chunk:
            stored_at = known.get((r["id_root"], r["id_extension"]))
            if stored_at is None:
                inserted += 1
            elif stored_at <= r["fetched_at"]:
                updated += 1
    connection.execute(_SQLITE_UPSERT, rows)
    return RecordResult(inserted=inserted, updated=updated)


def _stored(row: DispenseRow) -> StoredDispense:
    provenance = DispenseProvenance(
        pharmacy_ura=row.pharmacy_ura,
        pharmacy_name=row.pharmacy_name,
        source_application_id=row.source_application_id,
        source_system_uzi=row.source_system_uzi,
        batch_message_id=row.batch_message_id,
        item_message_id=row.item_message_id,
        query_id=row.query_id,
        fetched_at=row.fetched_at,
        run_id=row.run_id,
        responsible_uzi=row.responsible_uzi,
        responsible_name=row.responsible_name,
    )
    return StoredDispense(
        dispense=dispense_from_json(row.data),
        provenance=provenance,
        patient_bsn=row.patient_bsn,
        first_fetched_at=row.first_fetched_at,
    )


class DispenseRepository:
    """`DispenseStore` on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def for_patient(self, bsn: Bsn | str) -> list[StoredDispense]:
        with self._sessions.read() as session:
            rows = session.scalars(
                select(DispenseRow)
                .where(DispenseRow.patient_bsn == bsn_value(bsn))
                .order_by(DispenseRow.dispensed_on.desc().nulls_last(), DispenseRow.id)
            )
            return [_stored(row) for row in rows]

    def count(self) -> int:
        with self._sessions.read() as session:
            return session.scalar(select(func.count()).select_from(DispenseRow)) or 0

    def last_fetched_at_many(self, bsns: Iterable[Bsn | str]) -> dict[str, dt.datetime]:
        """`last_fetched_at` of many patients at once (two queries per chunk of BSNs),
        keyed by BSN; patients never fetched are absent."""
        wanted = sorted({bsn_value(b) for b in bsns})
        found: dict[str, dt.datetime] = {}
        with self._sessions.read() as session:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = [
                    *session.execute(
                        select(DispenseRow.patient_bsn, func.max(DispenseRow.fetched_at))
                        .where(DispenseRow.patient_bsn.in_(chunk))
                        .group_by(DispenseRow.patient_bsn)
                    ),
                    *session.execute(
                        select(RunItemRow.bsn, func.max(RunItemRow.updated_at))
                        .where(
                            RunItemRow.bsn.in_(chunk),
                            RunItemRow.state == ItemState.DONE.value,
                            RunItemRow.outcome_kind.in_(_ANSWERED),
                        )
                        .group_by(RunItemRow.bsn)
                    ),
                ]
                for bsn, at in rows:
                    if bsn is not None and at is not None and (bsn not in found or at > found[bsn]):
                        found[bsn] = at
        return found

    def last_fetched_at(self, bsn: Bsn | str) -> dt.datetime | None:
        value = bsn_value(bsn)
        with self._sessions.read() as session:
            times = [
                session.scalar(
                    select(func.max(DispenseRow.fetched_at)).where(DispenseRow.patient_bsn == value)
                ),
                session.scalar(
                    select(func.max(RunItemRow.updated_at)).where(
                        RunItemRow.bsn == value,
                        RunItemRow.state == ItemState.DONE.value,
                        RunItemRow.outcome_kind.in_(_ANSWERED),
                    )
                ),
            ]
        known = [t for t in times if t is not None]
        return max(known) if known else None
