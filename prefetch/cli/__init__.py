"""The `prefetch` command line: a thin typer app.

Exit codes: 0 ok (every item definitive); 1 finished with failures, or incomplete; 2 usage
or configuration error (also: database unreachable); 3 already running; 4 internal error.
Each sub-module exposes `register(app)`; this root only wires them together.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="prefetch",
    help="Batch LSP medication prefetch for Dutch hospitals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per area; each has `register(app: typer.Typer) -> None`.
_SUBCOMMAND_MODULES = (
    "demo",
    "run",
    "status",
    "config",
    "db",
    "hl7",
    "security",
    "lspsim",
    "fhir",
    "desk",
    "daemon",
    "intake",
    "plan",
    "consent",
    "schedules",
    "audit",
    "purge",
)


def _register_all() -> None:
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"prefetch.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"prefetch.cli.{name}":
                continue  # area not built yet
            raise
        module.register(app)


_register_all()


def main() -> None:
    app()
