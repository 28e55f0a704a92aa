"""The nightly run reads the local objection register: a patient who objected (at the desk,
with `prefetch consent refuse`, or from a source) is never queried by the daemon."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from daemon_world import make_world

from prefetch.daemon.wiring import build_daemon
from prefetch.settings import load_settings


def test_the_daemons_run_skips_a_patient_in_the_objection_register(
    tmp_path: Path, database_url: str, dev_pki_dir: Path
) -> None:
    world = make_world(
        tmp_path, database_url, patients=6, rate=20, in_flight=2, pki_from=dev_pki_dir
    )
    app = build_daemon(load_settings(world.config))
    try:
        lines = world.export.read_text(encoding="utf-8").splitlines()
        rows = list(csv.DictReader(lines, delimiter=";" if ";" in lines[0] else ","))
        bsns = sorted({r["bsn"] for r in rows if r.get("bsn")})
        objector = bsns[0]
        app.stores.consent.refuse(objector, reason="bezwaar aan de balie", user="desk:test")
        schedule = app.daemon.book.get("demo")
        assert schedule is not None
        result = app.daemon.runner.run_day(schedule, world.clinic_day)
        summary = app.stores.runs.summary(result.run_id)
    finally:
        app.stop()
        world.sim.stop()
    assert summary.by_skip_reason.get("consent_refused") == 1
    asked = {q["bsn_sha256"] for q in world.sim.query_log()}
    assert hashlib.sha256(objector.encode()).hexdigest() not in asked
    assert len(asked) == len(bsns) - 1
