"""Operations: the Prometheus endpoint has every metric the issue names, fed by a metered
gateway; /health is 200 with every check ok and 503 when one fails (or raises); the
scheduler jobs carry coalesce, max_instances=1 and a real misfire grace time."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path

from daemon_helpers import FakeClock, FlagLock, LedgerRunner, write_schedule

from prefetch.daemon.core import Daemon
from prefetch.daemon.http import Check, OpsServer
from prefetch.daemon.schedules import ScheduleBook
from prefetch.daemon.service import DaemonService
from prefetch.daemon.timing import AmsterdamCron
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.hl7v3.params import QueryParams
from prefetch.metrics import MeteredGateway, Metrics
from prefetch.ports import LspReply
from prefetch.settings import DaemonSettings


class _Gateway:
    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
        return LspReply(Outcome(OutcomeKind.NO_RECORDS), elapsed_seconds=0.01)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return exc.code, body


def test_metrics_and_health_endpoint() -> None:
    metrics = Metrics()
    metrics.rate_limit.set(9)
    metrics.breaker_from(lambda: "open")
    metrics.items_left_from(lambda: [("card:2026-11-25", "card", 7)])
    gateway = MeteredGateway(_Gateway(), metrics)
    for _ in range(3):
        gateway.query(None, mandate_token=None)  # type: ignore[arg-type]
    metrics.run_ended("card", "finished", 12.5, resent=2)
    checks = {"database": lambda: Check(True, "reachable")}
    ops = OpsServer("127.0.0.1", 0, registry=metrics.registry, checks=checks, role=lambda: "leader")
    ops.start()
    try:
        status, text = _get(f"http://127.0.0.1:{ops.port}/metrics")
        assert status == 200
        for line in (
            'prefetch_lsp_queries_total{outcome="no_records"} 3.0',
            "prefetch_lsp_query_seconds_count 3.0",
            "prefetch_lsp_queries_in_flight 0.0",
            "prefetch_lsp_query_rate_per_second 0.3",
            "prefetch_rate_limit_per_second 9.0",
            'prefetch_breaker_state{state="open"} 1.0',
            'prefetch_breaker_state{state="closed"} 0.0',
            'prefetch_runs_total{result="finished"} 1.0',
            "prefetch_lsp_queries_resent_total 2.0",
            'prefetch_run_duration_seconds_count{schedule="card"} 1.0',
            'prefetch_run_items_left{run_id="card:2026-11-25",schedule="card"} 7.0',
            "prefetch_daemon_leader 0.0",
        ):
            assert line in text, line
        status, text = _get(f"http://127.0.0.1:{ops.port}/health")
        assert status == 200
        assert json.loads(text) == {
            "status": "ok",
            "role": "leader",
            "checks": {"database": {"ok": True, "detail": "reachable"}},
        }

        def broken() -> Check:
            raise OSError("connection refused to 999990019")

        checks["audit_chain"] = lambda: Check(False, "row 17 changed")
        checks["database"] = broken
        status, text = _get(f"http://127.0.0.1:{ops.port}/health")
        body = json.loads(text)
        assert status == 503 and body["status"] == "failing"
        assert body["checks"]["audit_chain"] == {"ok": False, "detail": "row 17 changed"}
        assert body["checks"]["database"] == {"ok": False, "detail": "check raised OSError"}
    finally:
        ops.stop()


def test_scheduler_jobs_are_configured_for_the_ledger(tmp_path: Path) -> None:
    write_schedule(tmp_path, "card", run_at="19:00")
    clock = FakeClock(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC))
    daemon = Daemon(
        book=ScheduleBook(tmp_path),
        runner=LedgerRunner(None, clock),  # type: ignore[arg-type]
        ledger=None,  # type: ignore[arg-type]
        lock=FlagLock(available=False),
        clock=clock,
    )
    service = DaemonService(daemon, DaemonSettings(misfire_grace_seconds=600))
    service.sync_jobs()
    service.scheduler.start(paused=True)  # jobs get their defaults when the scheduler starts
    job = service.scheduler.get_job("schedule:card")
    assert isinstance(job.trigger, AmsterdamCron)
    assert str(job.trigger.timezone) == "Europe/Amsterdam"
    assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 600
    write_schedule(tmp_path, "neur", run_at="18:30")
    (tmp_path / "card.toml").unlink()
    service.reload()
    assert [j.id for j in service.scheduler.get_jobs()] == ["schedule:neur"]
    service.scheduler.shutdown(wait=False)


def test_daemon_settings_are_checked_with_their_keys(tmp_path: Path) -> None:
    import pytest

    from prefetch.settings import SettingsProblems, load_settings

    config = tmp_path / "prefetch.toml"
    config.write_text(
        '[daemon]\nhttp_port = 70000\nclinic_day_starts = "7am"\nleader_poll_seconds = 120\n',
        encoding="utf-8",
    )
    with pytest.raises(SettingsProblems) as caught:
        load_settings(config, env={})
    keys = {key for key, _ in caught.value.problems}
    assert keys == {"daemon.http_port", "daemon.clinic_day_starts", "daemon.leader_poll_seconds"}
