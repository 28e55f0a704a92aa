"""Store the dispenses of a real LSP answer as a run would (for the API tests and bench)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from prefetch.domain.dispense import DispenseProvenance
from prefetch.hl7v3.parse import parse_answer
from prefetch.store._support import Sessions
from prefetch.store.dispenses import upsert_dispenses

FETCHED = dt.datetime(2026, 11, 23, 18, 30, tzinfo=dt.UTC)


def store_answer(engine: Engine, path: Path, bsn: str) -> int:
    """Store every dispense of the answer for `bsn`; the number stored."""
    parsed = parse_answer(path.read_bytes())
    pairs = [
        (
            dispense,
            DispenseProvenance(
                pharmacy_ura=source.organization_ura,
                pharmacy_name=source.organization_name,
                source_application_id=source.application_id,
                source_system_uzi=source.system_uzi,
                batch_message_id=None,
                item_message_id=source.message_id,
                query_id="2.16.528.1.1007.3.3.1234567.2^0123456789",
                fetched_at=FETCHED,
                run_id="run-1",
                responsible_uzi="123456782",
                responsible_name="Dr. A. van Arts",
            ),
        )
        for source in parsed.sources
        for dispense in source.dispenses
    ]
    with Sessions(engine).write() as session:
        upsert_dispenses(session, bsn, pairs)
    return len(pairs)
