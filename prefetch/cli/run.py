"""`prefetch demo`: the end-to-end demo with a progress bar and a summary table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from prefetch.cli.common import EXIT_FAILURES, EXIT_OK, clean_errors
from prefetch.engine import Progress as RunProgress
from prefetch.logging import configure_logging

SKIP_LABELS = {
    "no_bsn": "no BSN",
    "bsn_invalid": "BSN fails the 11-check",
    "bsn_unverified": "BSN not verified (no WID check)",
    "consent_refused": "objection recorded",
    "appointment_type_excluded": "appointment type excluded",
    "cancelled": "appointment cancelled",
    "fresh": "fetched recently",
    "mandate_missing": "no mandate",
    "mandate_expired": "mandate expired",
}


def summary_table(
    by_outcome: dict[str, int], by_skip: dict[str, int], by_state: dict[str, int], title: str
) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("result")
    table.add_column("patients", justify="right")
    rows = [
        ("fetched, with dispenses", by_outcome.get("records", 0)),
        ("no records in the look-back window", by_outcome.get("no_records", 0)),
        ("no registrations at the LSP (or no consent)", by_outcome.get("no_registrations", 0)),
        ("refused by the LSP", by_outcome.get("refused", 0)),
        ("failed", by_state.get("failed", 0)),
        (
            "still waiting for a retry",
            by_state.get("retry_wait", 0)
            + by_state.get("pending", 0)
            + by_state.get("in_flight", 0),
        ),
    ]
    for label, count in rows:
        table.add_row(label, str(count))
    for reason, count in sorted(by_skip.items()):
        table.add_row(f"skipped: {SKIP_LABELS.get(reason, reason)}", str(count))
    return table


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
        console = Console(stderr=False)
        configure_logging("WARNING", "console")
        from prefetch.demo.run_demo import run_demo

        with (
            clean_errors(),
            Progress(
                TextColumn("[bold]prefetch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as bar,
        ):
            task = bar.add_task("starting", total=None)

            def on_stage(message: str) -> None:
                bar.update(task, description=message)

            def on_progress(p: RunProgress) -> None:
                bar.update(task, total=p.total, completed=p.done, description=p.last_kind)

            result = run_demo(
                data_dir, profile_name=profile, progress=on_progress, on_stage=on_stage
            )
        summary = result.report.summary
        console.print(
            summary_table(
                dict(summary.by_outcome),
                dict(summary.by_skip_reason),
                dict(summary.by_state),
                f"Clinic day {result.clinic_day}: {result.appointments} "
                f"appointments, {summary.total} patients",
            )
        )
        added = result.dispense_rows_after - result.dispense_rows_before
        stats = result.simulator_stats
        console.print(
            f"dispenses received in this run: {summary.dispenses}; new rows stored: "
            f"{added} (total {result.dispense_rows_after})"
        )
        violations = stats.get("violations")
        total = violations.get("total") if isinstance(violations, dict) else violations
        console.print(
            f"LSP simulator: {stats.get('queries_received')} queries, peak "
            f"{stats.get('peak_rate_per_s')}/s and {stats.get('peak_concurrency')} "
            f"in flight, rate violations {total}, signature failures "
            f"{stats.get('signature_failures')}"
        )
        console.print(f"run id: {result.run_id}")
        console.print(f"data: {result.database}")
        console.print(f"files: {result.data_dir.resolve()} (PKI, world, clinic day CSV)")
        console.print(
            "desk: not built yet; read the records with `sqlite3` or the FHIR API once it lands"
        )
        if result.report.stopped:
            console.print(f"[red]run stopped: {result.report.stopped}")
        failed = summary.by_state.get("failed", 0)
        raise typer.Exit(EXIT_FAILURES if result.report.stopped or failed else EXIT_OK)
