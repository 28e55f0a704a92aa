"""`prefetch status [RUN]`: the latest runs with their state and counts, or one run's
summary table; and the audit chain's state (a quick verification from the last signed
checkpoint on; exit 1 when it is broken)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from prefetch.cli.common import (
    CONFIG_OPTION,
    EXIT_FAILURES,
    EXIT_OK,
    database_errors,
    settings_or_exit,
)
from prefetch.cli.progress import summary_table

if TYPE_CHECKING:
    from prefetch.composition import Stores
    from prefetch.domain.run import RunRecord


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_cmd(
        run_id: str | None = typer.Argument(None, help="A run id; default: the latest runs."),
        limit: int = typer.Option(20, "--limit", min=1, help="How many runs to list."),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """List runs and their counts (or one run's summary)."""
        from prefetch.composition import audit_trust, open_stores, require_current_schema
        from prefetch.store.audit_verify import verify_chain

        settings = settings_or_exit(config)
        console = Console()
        with database_errors(settings.database_url):
            stores = open_stores(settings, migrate=False)
            try:
                require_current_schema(stores)
                if run_id is not None:
                    _one_run(console, stores, run_id)
                chain = verify_chain(stores.engine, quick=True, trust=audit_trust(settings))
                runs = stores.runs.list_runs(limit)
                table = _runs_table(stores, runs)
            finally:
                stores.engine.dispose()
        console.print(table if runs else "no runs yet")
        typer.echo(chain.summary(), err=not chain.ok)
        if not chain.ok:
            raise typer.Exit(EXIT_FAILURES)


def _one_run(console: Console, stores: Stores, run_id: str) -> None:
    """One run's summary table and how many of its queries were sent again after a
    crash; exits 0 (2: no such run)."""
    record = stores.runs.get_run(run_id)
    if record is None:
        typer.echo(f"error: no run {run_id!r} (see `prefetch status`)", err=True)
        raise typer.Exit(2)
    summary = stores.runs.summary(run_id)
    unanswered = stores.audit.unanswered_queries(run_id)
    in_flight = summary.by_state.get("in_flight", 0)
    console.print(summary_table(summary, f"{run_id}: {record.state.value}"))
    # sent (audit row) but never answered, and not in flight now: their process stopped
    # (a crash, a kill) and a restart asked them again
    console.print(f"queries re-sent after a crash: {max(0, unanswered - in_flight)}")
    raise typer.Exit(EXIT_OK)


def _runs_table(stores: Stores, runs: Sequence[RunRecord]) -> Table:
    table = Table(title="runs (newest first)")
    for column in ("run", "state", "started", "to query", "done", "failed", "open"):
        table.add_column(column, justify="left" if column in ("run", "state") else "right")
    for record in runs:
        summary = stores.runs.summary(record.id)
        table.add_row(
            record.id,
            record.state.value,
            f"{record.started_at:%Y-%m-%d %H:%M}" if record.started_at else "-",
            str(summary.to_query),
            str(summary.by_state.get("done", 0)),
            str(summary.by_state.get("failed", 0)),
            str(summary.open),
        )
    return table
