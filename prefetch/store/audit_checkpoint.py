"""Signed checkpoints of the audit chain.

`write_checkpoint` (daily, by the daemon) signs the chain head: the last row's id and
hash. A later rewrite of the chain up to that row, even one with every hash recomputed,
no longer matches a signature nobody without the hospital's key can make.

A *purge* checkpoint also names the anchor: the first row kept and the hash it points
back to, so the chain stays verifiable after older rows are removed (`purge.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Engine, Table, select, text
from sqlalchemy.orm import Session

from prefetch.security.auditsign import Signed, sign_checkpoint
from prefetch.security.keys import Credential
from prefetch.store._support import Sessions
from prefetch.store.audit_chain import lock_chain_head
from prefetch.store.tables import AuditCheckpointRow


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: int
    kind: str  # daily | purge
    created_at: dt.datetime
    head_id: int | None
    head_hash: str | None
    anchor_id: int | None
    anchor_prev_hash: str | None
    rows_removed: int
    signed: Signed

    def payload(self) -> bytes:
        return checkpoint_payload(
            kind=self.kind,
            created_at=self.created_at,
            head_id=self.head_id,
            head_hash=self.head_hash,
            anchor_id=self.anchor_id,
            anchor_prev_hash=self.anchor_prev_hash,
            rows_removed=self.rows_removed,
        )


def checkpoint_payload(
    *,
    kind: str,
    created_at: dt.datetime,
    head_id: int | None,
    head_hash: str | None,
    anchor_id: int | None,
    anchor_prev_hash: str | None,
    rows_removed: int,
) -> bytes:
    """The bytes that are signed: every field of the checkpoint but the signature."""
    fields = {
        "kind": kind,
        "created_at": created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "head_id": head_id,
        "head_hash": head_hash,
        "anchor_id": anchor_id,
        "anchor_prev_hash": anchor_prev_hash,
        "rows_removed": rows_removed,
    }
    return b"prefetch-audit-checkpoint-v1\n" + json.dumps(
        fields, sort_keys=True, separators=(",", ":")
    ).encode("ascii")


def insert_checkpoint(
    session: Session,
    credential: Credential,
    *,
    kind: str,
    now: dt.datetime,
    anchor_id: int | None = None,
    anchor_prev_hash: str | None = None,
    rows_removed: int = 0,
) -> int:
    """Sign and add a checkpoint of the current head in the caller's transaction."""
    next_id, head_hash = lock_chain_head(session)
    head_id = next_id - 1 if next_id > 1 else None
    values = {
        "kind": kind,
        "created_at": now,
        "head_id": head_id,
        "head_hash": head_hash if head_id is not None else None,
        "anchor_id": anchor_id,
        "anchor_prev_hash": anchor_prev_hash,
        "rows_removed": rows_removed,
    }
    signed = sign_checkpoint(credential, checkpoint_payload(**values))  # type: ignore[arg-type]
    table = cast("Table", AuditCheckpointRow.__table__)
    result = session.connection().execute(
        table.insert().returning(table.c.id),
        {
            **values,
            "signer": signed.signer,
            "certificate_pem": signed.certificate_pem,
            "signature": signed.signature,
        },
    )
    return int(result.scalar_one())


def write_checkpoint(engine: Engine, credential: Credential, *, now: dt.datetime) -> int:
    """Sign the chain head with the system certificate (the daemon's daily job)."""
    with Sessions(engine).write() as session:
        return insert_checkpoint(session, credential, kind="daily", now=now)


def checkpoints(session: Session) -> list[Checkpoint]:
    rows = session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.id))
    return [
        Checkpoint(
            id=row.id,
            kind=row.kind,
            created_at=row.created_at,
            head_id=row.head_id,
            head_hash=row.head_hash,
            anchor_id=row.anchor_id,
            anchor_prev_hash=row.anchor_prev_hash,
            rows_removed=row.rows_removed,
            signed=Signed(row.signer, row.certificate_pem, row.signature),
        )
        for row in rows
    ]


def last_checkpoint_time(engine: Engine) -> dt.datetime | None:
    with Sessions(engine).read() as session:
        value = session.execute(text("SELECT max(id) FROM audit_checkpoints")).scalar()
        if value is None:
            return None
        row = session.get(AuditCheckpointRow, int(value))
        return row.created_at if row else None
