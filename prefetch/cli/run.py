"""`prefetch demo`: the end-to-end demo with a progress bar and a summary table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from prefetch.cli.common import EXIT_FAILURES, EXIT_OK, clean_errors
from prefetch.cli.progress import run_progress, summary_table
from prefetch.logging import configure_logging


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
        from prefetch.demo.run_demo import run_demo

        with clean_errors(), run_progress(console) as (on_stage, on_progress):
            result = run_demo(
                data_dir, profile_name=profile, progress=on_progress, on_stage=on_stage
            )
        summary = result.report.summary
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
        console.print(f"run id: {result.run_id}")
        console.print(f"data: {result.database}")
        console.print(f"files: {result.data_dir.resolve()} (PKI, world, clinic day CSV)")
        console.print(
            "desk: not built yet; read the records with `sqlite3` or the FHIR API once it lands"
        )
        if result.report.stopped:
            console.print(f"run stopped: {result.report.stopped}")
        failed = summary.by_state.get("failed", 0)
        raise typer.Exit(EXIT_FAILURES if result.report.stopped or failed else EXIT_OK)
