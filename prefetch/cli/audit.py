"""`prefetch audit verify` and `prefetch audit patient BSN`: the NEN 7513 audit log.

`audit patient` answers a patient's "who looked at my data": every query and view of the
patient's data, when, by whom, under whose responsibility, as CSV or as a FHIR R4 Bundle
of AuditEvents. The export is itself a view of patient data and is audited.

Exit codes: 0 ok; 1 the chain is broken (the first changed, removed or inserted row is
named); 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
import uuid
from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_FAILURES, clean_errors, settings_or_exit


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(help="The NEN 7513 audit log.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")

    @audit_app.command("verify")
    def verify_command(
        quick: bool = typer.Option(False, "--quick", help="Only from the last checkpoint on."),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Walk the audit hash chain; name the first changed, removed or inserted row."""
        from prefetch.composition import audit_trust, open_engine
        from prefetch.store.audit_verify import verify_chain

        settings = settings_or_exit(config)
        with clean_errors():
            engine = open_engine(settings)
            try:
                report = verify_chain(engine, quick=quick, trust=audit_trust(settings))
            finally:
                engine.dispose()
        typer.echo(report.summary(), err=not report.ok)
        if not report.ok:
            raise typer.Exit(EXIT_FAILURES)

    @audit_app.command("patient")
    def patient_command(  # noqa: PLR0917 - typer maps each parameter to an option
        bsn: str = typer.Argument(..., help="The patient's BSN (nine digits)."),
        date_from: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
        date_to: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD."),
        output: str = typer.Option("csv", "--format", help="csv or fhir (R4 AuditEvents)."),
        reason: str = typer.Option(
            "patient-request", "--reason", help="Why the log is read (recorded in the audit)."
        ),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Who queried or viewed this patient's data, when, under whose responsibility."""
        from prefetch.audit_report import audit_bundle, audit_csv, patient_audit, record_access
        from prefetch.cli.common import fail
        from prefetch.composition import open_engine
        from prefetch.domain.bsn import Bsn
        from prefetch.errors import InvalidValueError
        from prefetch.store.records import AuditAction, AuditEvent

        if output not in ("csv", "fhir"):
            raise fail("--format must be csv or fhir")
        try:
            patient = Bsn.parse(bsn)
        except InvalidValueError:
            raise fail("not a valid BSN (nine digits passing the 11-check)") from None
        since, until = _day_start(date_from, "--from"), _day_start(date_to, "--to", after=True)
        settings = settings_or_exit(config)
        now = dt.datetime.now(dt.UTC)
        with clean_errors():
            engine = open_engine(settings)
            try:
                events = patient_audit(engine, patient, since=since, until=until)
                record_access(
                    engine,
                    AuditEvent(
                        event_id=uuid.uuid4().hex,
                        event_type="audit_export",
                        action=AuditAction.READ,
                        occurred_at=now,
                        user_id=f"os:{getpass.getuser()}",
                        user_role="privacy-officer",
                        patient_bsn=patient.value,
                        object_detail={"format": output, "rows": len(events)},
                        authorisation_basis=reason,
                        source_system="prefetch/cli",
                        source_workstation=socket.gethostname()[:128],
                        outcome="success",
                    ),
                )
            finally:
                engine.dispose()
        if output == "csv":
            typer.echo(audit_csv(events), nl=False)
        else:
            typer.echo(json.dumps(audit_bundle(events, now=now), indent=2, ensure_ascii=False))


def _day_start(value: str | None, option: str, *, after: bool = False) -> dt.datetime | None:
    """Midnight (Europe/Amsterdam) at the start of the day, or of the next day (`after`)."""
    from prefetch.cli.common import fail
    from prefetch.domain.localtime import AMSTERDAM

    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} must be a date YYYY-MM-DD") from None
    if after:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=AMSTERDAM)
