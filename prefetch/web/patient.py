"""The patient page's read model: the dispenses grouped per medicine, and their source.

Within a group the latest dispense comes first; the earlier ones are folded on the page.
Every dispense keeps its pharmacy and fetch time (external data, BgZ); the page says how
old the data are and which pharmacies did not answer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Engine, select

from prefetch.domain import oids
from prefetch.domain.coded import Quantity
from prefetch.domain.dispense import Dispense
from prefetch.store._support import Sessions
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.records import StoredDispense
from prefetch.store.tables import RunItemRow, RunRow
from prefetch.web.labels import DASH, Status, age_nl, date_nl, local_time
from prefetch.web.worklist import row_status

_NO_DATA_FROM = re.compile(r"no data from (.+)$")


@dataclass(frozen=True, slots=True)
class DispenseLine:
    product: str
    code: str  # "ZI 12345678" or DASH
    dose: str
    quantity: str
    dispensed_on: str
    pharmacy: str
    fetched_at: str


@dataclass(frozen=True, slots=True)
class MedicineGroup:
    name: str
    latest: DispenseLine
    earlier: list[DispenseLine]


@dataclass(frozen=True, slots=True)
class PatientView:
    item_id: int
    run_id: str
    clinic_day: dt.date
    patient_local_id: str
    bsn: str | None
    clinics: tuple[str, ...]
    status: Status
    status_words: str
    skip_reason: str | None
    groups: list[MedicineGroup]
    dispense_count: int
    fetched_at: str  # the newest fetch, as local time
    data_age: str  # "3 uur"
    pharmacies: list[str]  # pharmacies that delivered data
    silent_pharmacies: list[str]  # pharmacies that did not answer at the last fetch


def quantity_nl(q: Quantity | None) -> str:
    if q is None or q.value is None:
        return DASH
    unit = q.unit if q.unit and q.unit != "1" else ""
    for translation in q.translations:  # the G-Standaard unit reads better: "30 Stuk"
        if translation.code.display:
            return f"{translation.value or q.value} {translation.code.display}"
    return f"{q.value} {unit}".strip()


def product_code(d: Dispense) -> str:
    code = d.product_code
    if code is None:
        return DASH
    for c in code.all_codes():
        if c.code and c.system in oids.PRODUCT_SYSTEM_NAMES:
            return f"{oids.PRODUCT_SYSTEM_NAMES[c.system]} {c.code}"
    return code.code or DASH


def _line(s: StoredDispense) -> DispenseLine:
    d, prov = s.dispense, s.provenance
    dose = "; ".join(x.text for x in d.dosages if x.text) or DASH
    pharmacy = prov.pharmacy_name or (f"URA {prov.pharmacy_ura}" if prov.pharmacy_ura else DASH)
    return DispenseLine(
        product=(d.product.display_name if d.product else None) or "onbekend product",
        code=product_code(d),
        dose=dose,
        quantity=quantity_nl(d.quantity),
        dispensed_on=date_nl(d.dispensed_on),
        pharmacy=pharmacy,
        fetched_at=local_time(prov.fetched_at),
    )


def group_dispenses(stored: list[StoredDispense]) -> list[MedicineGroup]:
    """Per medicine (product code, else name), latest dispense first; groups by latest date."""
    groups: dict[str, list[StoredDispense]] = {}
    for s in stored:
        code = s.dispense.product_code
        product = s.dispense.product
        key = (
            f"{code.system}|{code.code}"
            if code is not None and code.code
            else (product.display_name if product else None) or "?"
        )
        groups.setdefault(key, []).append(s)
    out: list[tuple[dt.date, MedicineGroup]] = []
    for members in groups.values():
        members.sort(key=lambda s: s.dispense.dispensed_on or dt.date.min, reverse=True)
        lines = [_line(s) for s in members]
        newest = members[0].dispense.dispensed_on or dt.date.min
        out.append((newest, MedicineGroup(lines[0].product, lines[0], lines[1:])))
    out.sort(key=lambda pair: (pair[0], pair[1].name), reverse=True)
    return [g for _, g in out]


def silent_pharmacies(item: RunItemRow) -> list[str]:
    """Pharmacies named as not answering in the item's last outcome."""
    if item.outcome_code == "PARTIAL" and item.state == "retry_wait":
        return ["(nog) niet alle apotheken: een nieuwe poging volgt"]
    found = _NO_DATA_FROM.search(item.outcome_detail or "")
    if found:
        return [p.strip() for p in found.group(1).split(",") if p.strip()]
    return []


class PatientQuery:
    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)
        self._dispenses = DispenseRepository(engine)

    def item(self, item_id: int) -> tuple[RunItemRow, RunRow] | None:
        with self._sessions.read() as session:
            item = session.get(RunItemRow, item_id)
            if item is None:
                return None
            run = session.get(RunRow, item.run_id)
            return (item, run) if run is not None else None

    def view(self, item_id: int, *, now: dt.datetime) -> PatientView | None:
        found = self.item(item_id)
        if found is None:
            return None
        item, run = found
        stored = self._dispenses.for_patient(item.bsn) if item.bsn else []
        newest = max((s.provenance.fetched_at for s in stored), default=None)
        if item.state in ("done", "failed") and (newest is None or item.updated_at > newest):
            newest = item.updated_at  # the last answer, even when it brought nothing
        status, words = row_status(item)
        pharmacies = sorted({_line(s).pharmacy for s in stored})
        return PatientView(
            item_id=item.id,
            run_id=run.id,
            clinic_day=run.clinic_day,
            patient_local_id=item.patient_local_id,
            bsn=item.bsn,
            clinics=tuple(item.clinics),
            status=status,
            status_words=words,
            skip_reason=item.skip_reason,
            groups=group_dispenses(stored),
            dispense_count=len(stored),
            fetched_at=local_time(newest),
            data_age=age_nl(newest, now),
            pharmacies=pharmacies,
            silent_pharmacies=silent_pharmacies(item),
        )

    def latest_item_for(self, patient_local_id: str, day: dt.date) -> int | None:
        """The newest item of this patient on this day (after a re-fetch)."""
        with self._sessions.read() as session:
            return session.scalar(
                select(RunItemRow.id)
                .join(RunRow, RunRow.id == RunItemRow.run_id)
                .where(RunItemRow.patient_local_id == patient_local_id, RunRow.clinic_day == day)
                .order_by(RunRow.created_at.desc(), RunItemRow.id.desc())
                .limit(1)
            )
