"""`prefetch demo`: the end-to-end demo, wired like production, with a progress bar and a
summary table: dev PKI -> simulator (mTLS, tokens) -> the run use case -> store.

Everything lives in one data directory and is created on first use (`prefetch.demo.setup`).
A second demo re-queries every patient of the same day (a manual run) and must add no
dispense row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from prefetch.cli.common import EXIT_FAILURES, EXIT_OK, clean_errors
from prefetch.cli.progress import run_progress, summary_table
from prefetch.domain.run import Progress, RunKind
from prefetch.logging import configure_logging
from prefetch.run_day import RunResult


@dataclass(frozen=True, slots=True)
class DemoResult:
    run: RunResult
    clinic_day: dt.date
    appointments: int
    dispense_rows_before: int
    dispense_rows_after: int
    database: str
    data_dir: Path
    simulator_stats: dict[str, object]


def run_demo(
    data_dir: Path,
    *,
    profile_name: str = "realistic",
    progress: Callable[[Progress], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    key_size: int = 4096,
) -> DemoResult:
    from prefetch.security.filemodes import private_umask

    with private_umask():  # the data directory holds BSNs: nothing in it for others
        return _run_demo(data_dir, profile_name, progress, on_stage, key_size)


def _run_demo(
    data_dir: Path,
    profile_name: str,
    progress: Callable[[Progress], None] | None,
    on_stage: Callable[[str], None] | None,
    key_size: int,
) -> DemoResult:
    from prefetch.composition import make_lsp_client, make_run_services, open_stores
    from prefetch.demo import setup
    from prefetch.domain.localtime import AMSTERDAM
    from prefetch.lspsim.profiles import get_profile
    from prefetch.run_day import RunRequest, run_schedule_day
    from prefetch.security.filemodes import private_dir
    from prefetch.worklist import day_appointments

    stage = on_stage or (lambda _msg: None)
    private_dir(data_dir)
    stage("development PKI (UZI-shaped, encrypted keys)")
    pki, passphrase = setup.ensure_pki(data_dir, key_size=key_size)
    stage("synthetic world of pharmacies and patients")
    world = setup.ensure_world(data_dir)
    now = dt.datetime.now(dt.UTC)
    clinic_day = now.astimezone(AMSTERDAM).date() + dt.timedelta(days=1)
    day_file = setup.ensure_clinic_day(data_dir, world, clinic_day)
    profile = get_profile(profile_name).with_time_scale(setup.DEMO_TIME_SCALE)
    schedule = setup.demo_schedule(pki)
    stage(f"LSP simulator ({profile.name}) with mutual TLS and token checks")
    with setup.start_simulator(world, profile, pki, passphrase) as sim:
        settings = setup.demo_settings(data_dir, pki, sim, profile)
        stores = open_stores(settings)
        setup.ensure_mandate(stores, pki, passphrase, schedule, now)
        stage("clinic day into the appointment book (as `prefetch intake load`)")
        setup.load_clinic_day(stores, day_file, now)
        appointments = day_appointments(schedule, clinic_day, book_day=stores.book.day)
        client = make_lsp_client(settings, pki.hospital.load(passphrase))
        services = make_run_services(settings, stores, client, trust=pki.trust_store())
        before = stores.dispenses.count()
        first = stores.runs.find_run(schedule.id, clinic_day, RunKind.SCHEDULED) is None
        result = run_schedule_day(
            services,
            RunRequest(
                schedule=schedule,
                clinic_day=clinic_day,
                appointments=appointments,
                kind=RunKind.SCHEDULED if first else RunKind.MANUAL,
                fresh_for=None if first else dt.timedelta(0),
                progress=progress,
                on_stage=stage,
            ),
        )
        stats = sim.stats()
        after = stores.dispenses.count()
        stores.engine.dispose()
    return DemoResult(
        run=result,
        clinic_day=clinic_day,
        appointments=len(appointments),
        dispense_rows_before=before,
        dispense_rows_after=after,
        database=settings.database_url,
        data_dir=data_dir,
        simulator_stats=stats,
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        data_dir: Path = typer.Option(
            Path("prefetch-data"), "--data-dir", help="Where the PKI, world, database and day live."
        ),
        profile: str = typer.Option(
            "realistic", help="Simulator profile: ideal, realistic, flaky, outage, regions."
        ),
    ) -> None:
        """Prefetch a synthetic clinic day against the LSP simulator, end to end."""
        console = Console()
        configure_logging("WARNING", "console")
        with clean_errors(), run_progress(console) as (on_stage, on_progress):
            result = run_demo(
                data_dir, profile_name=profile, progress=on_progress, on_stage=on_stage
            )
        summary = result.run.summary
        console.print(
            summary_table(
                summary,
                f"Clinic day {result.clinic_day}: "
                f"{result.appointments} appointments, "
                f"{summary.total} patients",
            )
        )
        added = result.dispense_rows_after - result.dispense_rows_before
        stats = result.simulator_stats
        violations = stats.get("violations")
        total = violations.get("total") if isinstance(violations, dict) else violations
        console.print(
            f"dispenses received in this run: {summary.dispenses}; new rows stored: "
            f"{added} (total {result.dispense_rows_after})"
        )
        console.print(
            f"LSP simulator: {stats.get('queries_received')} queries, peak "
            f"{stats.get('peak_rate_per_s')}/s and {stats.get('peak_concurrency')} "
            f"in flight, rate violations {total}, signature failures "
            f"{stats.get('signature_failures')}"
        )
        console.print(f"run id: {result.run.run_id}")
        console.print(f"data: {result.database}")
        console.print(f"files: {result.data_dir.resolve()} (PKI, world, clinic day CSV)")
        from prefetch.web.compose import demo_handoff

        for line in demo_handoff(result.data_dir, result.database, result.clinic_day):
            console.print(line, markup=False, highlight=False)
        if result.run.stopped:
            console.print(f"run stopped: {result.run.stopped}")
        raise typer.Exit(EXIT_OK if result.run.status == "complete" else EXIT_FAILURES)
