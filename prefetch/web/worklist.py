"""The worklist read model: one row per patient of a clinic day, with a status in words.

A clinic day may have several runs (the scheduled one, a manual re-run, re-fetches of one
patient): each patient's row shows the item of the newest run that has them. The run
state shown is that of the newest run of the day that is scheduled or has more than one
patient (a one-patient manual run is a re-fetch from the desk).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from prefetch.store._support import Sessions
from prefetch.store.tables import RunItemRow, RunRow
from prefetch.web.labels import DASH, SKIP_REASONS, Status, clock_time, count_nl, skip_label

_WAITING = {"pending": "in de wachtrij", "in_flight": "wordt nu opgevraagd"}


@dataclass(frozen=True, slots=True)
class Slot:
    """A patient's appointment on the day (from the appointment source)."""

    start: dt.datetime
    clinic: str


@dataclass(frozen=True, slots=True)
class Row:
    item_id: int
    patient_local_id: str
    clinics: tuple[str, ...]
    time: str  # "08:30" or DASH
    sort_key: tuple[str, str]
    status: Status
    detail: str  # the status in plain words, e.g. "Opgehaald: 4 verstrekkingen"


@dataclass(frozen=True, slots=True)
class RunState:
    run_id: str
    state: str  # volledig / onvolledig / bezig / gepland
    label: str
    done: int
    total: int
    started: dt.datetime | None
    finished: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Worklist:
    day: dt.date
    poli: str | None
    status: Status | None
    rows: list[Row]
    counts: Mapping[Status, int]
    total: int  # before the status filter
    clinics: list[str]
    run: RunState | None
    other_days: list[dt.date] = field(default_factory=list)


def row_status(item: RunItemRow) -> tuple[Status, str]:
    """The status of one run item and the words that explain it."""
    state, kind = item.state, item.outcome_kind
    if state == "skipped":
        return Status.SKIPPED, f"Overgeslagen: {skip_label(item.skip_reason)}"
    if state == "failed":
        return Status.FAILED, f"Mislukt: {failure_words(item)}"
    if state in ("pending", "in_flight"):
        return Status.PENDING, f"Wachtend: {_WAITING[state]}"
    if state == "retry_wait":
        if item.outcome_code == "PARTIAL":
            return Status.PENDING, "Wachtend: nog niet alle apotheken antwoordden, nieuwe poging"
        if item.outcome_kind is None:
            return Status.PENDING, "Wachtend: nieuwe poging volgt"
        return Status.PENDING, "Wachtend: LSP tijdelijk niet bereikbaar, nieuwe poging volgt"
    if kind == "records":
        n = item.dispense_count
        return Status.FETCHED, f"Opgehaald: {count_nl(n, 'verstrekking', 'verstrekkingen')}"
    if kind == "no_records":
        return Status.NO_RECORDS, "Geen gegevens: de apotheken hebben niets geleverd"
    if kind == "no_registrations":
        return (
            Status.NOT_REGISTERED,
            "Niet aangemeld bij LSP: geen apotheek heeft deze patiënt aangemeld "
            "(of geen toestemming gegeven)",
        )
    return Status.FAILED, f"Mislukt: {failure_words(item)}"


def failure_words(item: RunItemRow) -> str:
    if item.outcome_kind == "refused":
        return f"geweigerd door het LSP (code {item.outcome_code or 'onbekend'})"
    detail = (item.outcome_detail or "").lower()
    if detail.startswith("gave up"):
        return f"na {item.attempts} pogingen opgegeven"
    if detail.startswith("partial answer"):
        return "niet alle apotheken antwoordden"
    return "geen bruikbaar antwoord" + (f" (code {item.outcome_code})" if item.outcome_code else "")


def _run_state(
    session: Sessions, runs: Sequence[RunRow], sizes: Mapping[str, int]
) -> RunState | None:
    main = [r for r in runs if r.kind == "scheduled" or sizes.get(r.id, 0) > 1]
    if not main:
        return None
    run = max(main, key=lambda r: (r.created_at, r.id))
    with session.read() as s:
        states = Counter(
            s.scalars(select(RunItemRow.state).where(RunItemRow.run_id == run.id)).all()
        )
    total = sum(n for st, n in states.items() if st != "skipped")
    done = states.get("done", 0) + states.get("failed", 0)
    if run.state == "running":
        state, label = "bezig", f"Bezig: {done} van {total} patiënten verwerkt"
    elif run.state == "planned":
        state, label = "gepland", f"Gepland: {total} patiënten op te vragen"
    elif run.state == "finished" and done == total and not states.get("failed"):
        state, label = "volledig", f"Volledig: alle {total} patiënten verwerkt"
    else:
        open_items = total - done + states.get("failed", 0)
        state = "onvolledig"
        label = f"Onvolledig: {open_items} van {total} patiënten zonder definitief antwoord"
        if run.state == "aborted":
            label += " (run afgebroken)"
    return RunState(run.id, state, label, done, total, run.started_at, run.finished_at)


class WorklistQuery:
    """Reads the worklist of a day from the run ledger (both backends)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def days(self, around: dt.date, limit: int = 14) -> list[dt.date]:
        """Clinic days with a run, nearest first (for the day picker)."""
        with self._sessions.read() as session:
            days = set(session.scalars(select(RunRow.clinic_day).distinct()).all())
        return sorted(days, key=lambda d: (abs((d - around).days), d))[:limit]

    def worklist(
        self,
        day: dt.date,
        *,
        poli: str | None,
        status: Status | None,
        slots: Mapping[str, Sequence[Slot]],
    ) -> Worklist:
        with self._sessions.read() as session:
            runs = list(session.scalars(select(RunRow).where(RunRow.clinic_day == day)))
            order = {r.id: (r.created_at, r.id) for r in runs}
            latest: dict[str, RunItemRow] = {}
            sizes: Counter[str] = Counter()
            if runs:
                items = session.scalars(
                    select(RunItemRow).where(RunItemRow.run_id.in_(list(order)))
                ).all()
                for item in items:
                    sizes[item.run_id] += 1
                    seen = latest.get(item.patient_local_id)
                    if seen is None or order[item.run_id] > order[seen.run_id]:
                        latest[item.patient_local_id] = item
        clinics = sorted({c for item in latest.values() for c in item.clinics})
        rows: list[Row] = []
        for item in latest.values():
            if poli and poli not in item.clinics:
                continue
            own = [s for s in slots.get(item.patient_local_id, ()) if not poli or s.clinic == poli]
            first = min(own, key=lambda s: s.start) if own else None
            st, words = row_status(item)
            time = clock_time(first.start) if first else DASH
            rows.append(
                Row(
                    item_id=item.id,
                    patient_local_id=item.patient_local_id,
                    clinics=tuple(item.clinics),
                    time=time,
                    sort_key=(time if first else "99:99", item.patient_local_id),
                    status=st,
                    detail=words,
                )
            )
        rows.sort(key=lambda r: r.sort_key)
        counts = Counter(r.status for r in rows)
        total = len(rows)
        if status is not None:
            rows = [r for r in rows if r.status is status]
        return Worklist(
            day=day,
            poli=poli,
            status=status,
            rows=rows,
            counts={s: counts.get(s, 0) for s in Status},
            total=total,
            clinics=clinics,
            run=_run_state(self._sessions, runs, sizes),
        )


__all__ = ["SKIP_REASONS", "Row", "RunState", "Slot", "Worklist", "WorklistQuery", "row_status"]
