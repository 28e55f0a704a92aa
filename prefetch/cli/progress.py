"""What long runs show on a terminal: a progress bar while working, a table at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from prefetch.domain.run import Progress as RunProgress
from prefetch.domain.run import RunSummary

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


@contextmanager
def run_progress(
    console: Console,
) -> Iterator[tuple[Callable[[str], None], Callable[[RunProgress], None]]]:
    """A bar that shows stages (text) and then items done of items to query."""
    with Progress(
        TextColumn("[bold]prefetch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def on_stage(message: str) -> None:
            bar.update(task, description=message)

        def on_progress(p: RunProgress) -> None:
            bar.update(task, total=p.total, completed=p.done, description=p.last_kind)

        yield on_stage, on_progress


def summary_table(summary: RunSummary, title: str) -> Table:
    """Fetched / no records / no registrations / refused / failed / skipped by reason."""
    by_outcome, by_state = summary.by_outcome, summary.by_state
    waiting = sum(by_state.get(s, 0) for s in ("retry_wait", "pending", "in_flight"))
    rows = [
        ("fetched, with dispenses", by_outcome.get("records", 0)),
        ("no records in the look-back window", by_outcome.get("no_records", 0)),
        ("no registrations at the LSP (or no consent)", by_outcome.get("no_registrations", 0)),
        ("refused by the LSP", by_outcome.get("refused", 0)),
        ("failed", by_state.get("failed", 0)),
        ("still waiting for a retry", waiting),
    ]
    rows += [
        (f"skipped: {SKIP_LABELS.get(reason, reason)}", count)
        for reason, count in sorted(summary.by_skip_reason.items())
    ]
    table = Table(title=title)
    table.add_column("result")
    table.add_column("patients", justify="right")
    for label, count in rows:
        table.add_row(label, str(count))
    return table
