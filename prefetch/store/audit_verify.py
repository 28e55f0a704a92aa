"""Walk the audit hash chain and name the first row that was changed, removed or inserted.

`verify_chain(engine)` reads every checkpoint (and checks its signature), then streams the
rows in id order and checks for each:

- its own hash: a row whose content no longer gives its `row_hash` was *changed*;
- its link: `prev_hash` must be the previous row's hash. When it is not, the previous row
  was *inserted* (this row points at the row before that one), or rows were *removed*
  (ids are contiguous, so a gap shows it), or the previous row was changed and its hash
  recomputed;
- the checkpoints: a row that a signed checkpoint names as head must still have the
  signed hash, so a chain rewritten with every hash recomputed is *rewritten*, and a head
  that is gone means rows were removed from the end.

`quick=True` (the daemon's health check) walks only from the last checkpoint on.
Rows written before the chain existed (no hash) are counted as unchained, once, at the
start; a row without a hash after the first chained row is a change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from prefetch.security.auditsign import checkpoint_signature_problem
from prefetch.security.trust import TrustStore
from prefetch.store._support import Sessions
from prefetch.store.audit_chain import GENESIS, HASHED_FIELDS, row_hash
from prefetch.store.audit_checkpoint import Checkpoint, checkpoints
from prefetch.store.tables import AuditRow

_BATCH = 2000


@dataclass(frozen=True, slots=True)
class ChainProblem:
    kind: str  # changed | removed | inserted | rewritten | checkpoint
    row_id: int | None
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    rows_checked: int
    first_id: int | None
    head_id: int | None
    unchained: int
    checkpoints: int
    last_checkpoint_at: dt.datetime | None
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.problem is not None:
            return f"audit chain BROKEN: {self.problem.message}"
        span = f"rows {self.first_id}..{self.head_id}" if self.head_id else "no rows"
        signed = (
            f"last signed checkpoint {self.last_checkpoint_at:%Y-%m-%d %H:%M} UTC"
            if self.last_checkpoint_at
            else "no signed checkpoint yet"
        )
        extra = f", {self.unchained} older rows without hash" if self.unchained else ""
        return f"audit chain ok: {self.rows_checked} rows checked ({span}){extra}; {signed}"


@dataclass(slots=True)
class _Link:
    id: int
    prev_hash: str
    row_hash: str


def row_values(row: AuditRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in HASHED_FIELDS}


def _link_problem(row: AuditRow, pred: _Link | None, expected: str) -> ChainProblem:
    if pred is None:
        return ChainProblem(
            "removed", row.id, f"rows removed before row {row.id} (it points at a missing row)"
        )
    if row.prev_hash == pred.prev_hash:
        return ChainProblem(
            "inserted", pred.id, f"row {pred.id} was inserted (row {row.id} skips it)"
        )
    if row.id - pred.id > 1:
        gone = (
            f"row {pred.id + 1}" if row.id - pred.id == 2 else f"rows {pred.id + 1}..{row.id - 1}"
        )
        return ChainProblem("removed", pred.id + 1, f"{gone} removed (after row {pred.id})")
    return ChainProblem(
        "changed", pred.id, f"row {pred.id} changed (its hash recomputed; row {row.id} disagrees)"
    )


class _Walk:
    def __init__(self, marks: list[Checkpoint], start_id: int | None, start_hash: str) -> None:
        self.heads = {c.head_id: c for c in marks if c.head_id is not None}
        self.start_id = start_id
        self.expected = start_hash
        self.pred: _Link | None = None
        self.checked = 0
        self.unchained = 0
        self.first_id: int | None = None

    def step(self, row: AuditRow) -> ChainProblem | None:
        if row.row_hash is None or row.prev_hash is None:
            if self.pred is None and self.start_id is None:
                self.unchained += 1
                return None
            return ChainProblem("changed", row.id, f"row {row.id} changed (its hash is gone)")
        if self.first_id is None:
            self.first_id = row.id
            if self.start_id is not None and row.id != self.start_id:
                return ChainProblem(
                    "removed", self.start_id, f"row {self.start_id} (a signed anchor) is missing"
                )
        self.checked += 1
        if row_hash(row.prev_hash, row_values(row)) != row.row_hash:
            return ChainProblem("changed", row.id, f"row {row.id} changed")
        if row.prev_hash != self.expected:
            return _link_problem(row, self.pred, self.expected)
        mark = self.heads.get(row.id)
        if mark is not None and mark.head_hash != row.row_hash:
            return ChainProblem(
                "rewritten",
                row.id,
                f"chain rewritten: row {row.id} is not the row signed in checkpoint {mark.id} "
                f"of {mark.created_at:%Y-%m-%d %H:%M} UTC",
            )
        self.pred = _Link(row.id, row.prev_hash, row.row_hash)
        self.expected = row.row_hash
        return None

    def end(self) -> ChainProblem | None:
        last = self.pred.id if self.pred else 0
        for head_id, mark in sorted(self.heads.items(), key=lambda kv: kv[0] or 0):
            if head_id is not None and head_id > last:
                return ChainProblem(
                    "removed",
                    head_id,
                    f"row {head_id}, signed in checkpoint {mark.id}, is missing "
                    "(rows removed from the end)",
                )
        return None


def _signature_problem(marks: list[Checkpoint], trust: TrustStore | None) -> ChainProblem | None:
    for mark in marks:
        reason = checkpoint_signature_problem(
            mark.payload(), mark.signed, trust=trust, now=mark.created_at
        )
        if reason is not None:
            return ChainProblem("checkpoint", mark.head_id, f"checkpoint {mark.id}: {reason}")
    return None


def verify_chain(
    engine: Engine, *, quick: bool = False, trust: TrustStore | None = None
) -> ChainReport:
    """Check the audit chain of the database behind `engine` (see the module docstring)."""
    sessions = Sessions(engine)
    with sessions.read() as session:  # checkpoints first: the rows' snapshot is newer
        marks = checkpoints(session)
    signed = len(marks)
    problem = _signature_problem(marks, trust)
    purges = [m for m in marks if m.kind == "purge"]
    start_id, start_hash = None, GENESIS
    if purges:
        start_id, start_hash = purges[-1].anchor_id, purges[-1].anchor_prev_hash or GENESIS
        marks = [m for m in marks if m.head_id is None or start_id is None or m.head_id >= start_id]
    if quick and marks and marks[-1].head_id is not None:
        start_id, start_hash = marks[-1].head_id, ""  # the head row's own link is not rechecked
        marks = marks[-1:]
    walk = _Walk(marks, start_id, start_hash)
    if problem is None:
        with sessions.read() as session:
            query = select(AuditRow).order_by(AuditRow.id).execution_options(yield_per=_BATCH)
            if start_id is not None:
                query = query.where(AuditRow.id >= start_id)
            result = session.scalars(query)
            try:
                for row in result:
                    if quick and walk.pred is None and row.id == start_id:
                        walk.expected = row.prev_hash or ""
                    problem = walk.step(row)
                    if problem is not None:
                        break
                    session.expunge(row)
            finally:
                result.close()  # a server-side cursor left open warns when collected
        problem = problem or walk.end()
    return ChainReport(
        rows_checked=walk.checked,
        first_id=walk.first_id,
        head_id=walk.pred.id if walk.pred else None,
        unchained=walk.unchained,
        checkpoints=signed,
        last_checkpoint_at=marks[-1].created_at if marks else None,
        problem=problem,
    )
