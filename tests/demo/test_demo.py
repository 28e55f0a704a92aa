"""The whole product end to end: dev PKI, simulator over mutual TLS with token checks,
engine, store — twice, at DEBUG, with the log scanned for BSNs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.cli.demo import run_demo
from prefetch.composition import open_stores
from prefetch.demo.setup import DEMO_CLINICS, demo_schedule, ensure_pki
from prefetch.domain.bsn import passes_eleven_check
from prefetch.domain.people import AppointmentStatus, Mandate
from prefetch.logging import configure_logging
from prefetch.settings import Settings
from prefetch.store.appointment_book import AppointmentBook
from prefetch.store.db import make_engine
from prefetch.store.tables import AuditRow

NINE = re.compile(r"(?<!\d)\d{9}(?!\d)")


@pytest.mark.slow
def test_demo_twice_no_duplicates_and_no_bsn_in_logs(tmp_path: Path) -> None:
    log = io.StringIO()
    configure_logging("DEBUG", "json", log)
    first = run_demo(tmp_path, profile_name="ideal", key_size=2048)
    summary = first.run.summary
    assert first.run.stopped is None
    assert summary.by_outcome.get("records", 0) > 50
    assert summary.by_outcome.get("no_registrations", 0) > 5
    assert summary.by_state.get("failed", 0) == 0
    for reason in (
        "no_bsn",
        "bsn_invalid",
        "bsn_unverified",
        "consent_refused",
        "cancelled",
        "appointment_type_excluded",
    ):
        assert summary.by_skip_reason.get(reason, 0) > 0, reason
    assert first.dispense_rows_after == summary.dispenses > 0
    assert first.simulator_stats["signature_failures"] == 0
    second = run_demo(tmp_path, profile_name="ideal", key_size=2048)
    assert second.run.summary.dispenses == summary.dispenses
    assert second.dispense_rows_after == first.dispense_rows_after  # nothing duplicated
    engine = make_engine(first.database)
    # The day went into the appointment book (as `prefetch intake load`), once: the runs
    # and the desk read it from there.
    book_day = AppointmentBook(engine).day(DEMO_CLINICS, first.clinic_day)
    assert len(book_day) == first.appointments == second.appointments > 200
    assert any(a.status is AppointmentStatus.CANCELLED for a in book_day)
    with engine.connect() as conn:
        audits = conn.execute(
            select(func.count())
            .select_from(AuditRow)
            .where(AuditRow.event_type.in_(("lsp_query", "lsp_query_answer")))
        ).scalar_one()
    engine.dispose()
    queried = sum(summary.by_outcome.values())
    assert audits == 4 * queried  # two runs; a `sent` row and an answer row per query
    text = log.getvalue()
    assert "lsp_query" in text
    leaked = [n for n in NINE.findall(text) if passes_eleven_check(n)]
    assert leaked == []
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVATE KEY-----" not in data or b"ENCRYPTED PRIVATE KEY" in data, path
    # Nothing under the data directory is open to group or others (issue 11).
    opened = [p for p in [tmp_path, *tmp_path.rglob("*")] if p.stat().st_mode & 0o077]
    assert opened == []
    assert {p.name for p in tmp_path.glob("*.sqlite*")} >= {"prefetch.sqlite"}
    _audit_patient_lists_the_demos_queries(first.database)


def test_demo_refuses_to_start_under_a_foreign_mandate(tmp_path: Path) -> None:
    pki, _ = ensure_pki(tmp_path, key_size=2048)
    schedule = demo_schedule(pki)
    now = dt.datetime.now(dt.UTC)
    stores = open_stores(dataclasses.replace(Settings(), data_dir=str(tmp_path)))
    stores.mandates.save(
        Mandate(
            id="demo-mandate",
            mandating=schedule.overseer,
            mandated_id="999999999",
            schedules=frozenset({"demo"}),
            valid_from=now - dt.timedelta(days=1),
            valid_until=now + dt.timedelta(days=30),
            token_xml=b"<x/>",
        )
    )
    stores.engine.dispose()
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path), "--profile", "ideal"])
    assert result.exit_code == 2, result.output
    assert "mandate was given to someone else" in result.output
    assert "Traceback" not in result.output


def _audit_patient_lists_the_demos_queries(database: str) -> None:
    """Issue 11: `prefetch audit patient` for a demo patient lists exactly the demo's
    queries of that patient (the demo views nothing), and its FHIR form parses as R4."""
    import csv
    import json

    from fhir.resources.R4B.bundle import Bundle
    from typer.testing import CliRunner

    from prefetch.cli import app

    engine = make_engine(database)
    with engine.connect() as conn:
        bsn = conn.execute(
            select(AuditRow.patient_bsn).where(AuditRow.event_type == "lsp_query").limit(1)
        ).scalar_one()
        expected = (
            conn.execute(
                select(AuditRow.event_type).where(AuditRow.patient_bsn == bsn).order_by(AuditRow.id)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert set(expected) == {"lsp_query", "lsp_query_answer"}
    env = {"PREFETCH_DATABASE_URL": database}
    listed = CliRunner().invoke(app, ["audit", "patient", str(bsn)], env=env)
    assert listed.exit_code == 0, listed.output
    rows = list(csv.DictReader(io.StringIO(listed.output)))
    assert [r["event_type"] for r in rows] == expected
    assert all(r["responsible_user_id"] and r["authorisation_basis"] for r in rows)
    fhir = CliRunner().invoke(app, ["audit", "patient", str(bsn), "--format", "fhir"], env=env)
    bundle = Bundle.model_validate(json.loads(fhir.output))
    assert bundle.entry is not None and len(bundle.entry) == len(expected) + 1  # + the export
    verified = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0 and "audit chain ok" in verified.output
