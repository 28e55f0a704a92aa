"""The audit hash chain: canonical row content, row hashes, serialised appends.

Each audit row carries `prev_hash` (the `row_hash` of the row before it, or `GENESIS` for
the first) and `row_hash = SHA-256(prev_hash "\\n" canonical content)`. The canonical
content is the row's NEN 7513 fields (not its id) as JSON with sorted keys and the time as
fixed-format UTC, so that SQLite and PostgreSQL hash the same row to the same value.

Appends are serialised so the chain stays linear: on PostgreSQL a transaction-level
advisory lock keyed on the audit table (held until commit, so the next writer sees this
row); on SQLite the write transaction itself (BEGIN IMMEDIATE: one writer at a time).
Ids are contiguous (the last id plus one, taken under that lock), which lets the verifier
tell a removed row (a gap) from a changed one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

GENESIS = "0" * 64
#: The fields a row hash covers, in the order of the table.
HASHED_FIELDS = (
    "event_id",
    "event_type",
    "action_code",
    "occurred_at",
    "user_id",
    "user_role",
    "responsible_user_id",
    "patient_bsn",
    "object_detail",
    "authorisation_basis",
    "source_system",
    "source_workstation",
    "outcome",
)


def _utc_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_content(values: Mapping[str, Any]) -> bytes:
    """The bytes a row hash covers: the hashed fields as sorted, compact JSON."""
    fields = {name: values.get(name) for name in HASHED_FIELDS}
    fields["occurred_at"] = _utc_text(values["occurred_at"])
    fields["object_detail"] = dict(values.get("object_detail") or {})
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def row_hash(prev_hash: str, values: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical_content(values))
    return digest.hexdigest()


def lock_chain_head(session: Session) -> tuple[int, str]:
    """Serialise appends and return (the next id, the hash the next row points back to).

    Call inside the write transaction that inserts the row; the lock ends with it.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(CAST(CAST('audit_log' AS regclass) AS bigint))")
        )
    last = connection.execute(
        text("SELECT id, row_hash FROM audit_log ORDER BY id DESC LIMIT 1")
    ).first()
    if last is None:
        return 1, GENESIS
    return int(last[0]) + 1, str(last[1] or GENESIS)
