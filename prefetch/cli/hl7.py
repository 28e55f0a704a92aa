"""`prefetch hl7 build-query` and `prefetch hl7 parse`: debug tools for integrators.

Exit codes: 0 ok; 2 usage error or input that cannot be used (one line naming the file).
The envelope for `build-query --soap` is built by `query_envelope`, the one place a
signing option (`--signed --pki DIR`) hooks in.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import typer
from lxml import etree

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE, settings_or_exit
from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier, null_flavor_meaning
from prefetch.domain.dispense import Dispense
from prefetch.domain.outcome import Issue, Outcome, SourceAnswer
from prefetch.domain.people import Clinician
from prefetch.errors import PrefetchError
from prefetch.hl7v3.aorta_settings import AortaSettings
from prefetch.hl7v3.codes import classify
from prefetch.hl7v3.params import (
    MAX_LOOK_BACK_DAYS,
    QueryParams,
    QueryRef,
    look_back_start,
    requester_roots,
)
from prefetch.hl7v3.parse import ParsedAnswer, parse_answer_stream
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.soap import wrap_soap_body


def parse_id(raw: str) -> Identifier:
    """`root^extension` (as `params.id_key` writes it) to an Identifier."""
    root, sep, extension = raw.partition("^")
    if not sep or not root or not extension:
        raise typer.BadParameter("expected root^extension")
    return Identifier(root=root, extension=extension)


def query_envelope(
    params: QueryParams,
    settings: AortaSettings,
    *,
    soap: bool,
    pki: Path | None = None,
    passphrase_file: Path | None = None,
) -> bytes:
    """The query as sent: bare HL7, inside a SOAP 1.1 envelope, or (with a dev PKI) the
    complete signed envelope with the WS-Security header, byte for byte as sent."""
    if pki is not None:
        from prefetch.security.devsign import signed_query_from_dev_pki
        from prefetch.security.keys import read_passphrase

        return signed_query_from_dev_pki(
            params,
            pki,
            read_passphrase(passphrase_file),
            now=params.created_at,
            settings=settings,
        )
    query = build_query(params, settings)
    if soap:
        return wrap_soap_body(query)
    return bytes(etree.tostring(query, pretty_print=True, xml_declaration=True, encoding="UTF-8"))


def issue_json(issue: Issue) -> dict[str, Any]:
    return {"code": issue.code, "system": issue.system, "text": issue.text}


def _now() -> dt.datetime:
    """The current moment (a seam for tests around midnight)."""
    return dt.datetime.now(dt.UTC)


def dispense_json(d: Dispense) -> dict[str, Any]:
    """The issue-2 summary keys, the product's nullFlavor, and under `"dispense"` the
    complete lossless `Dispense.to_json()`."""
    code = d.product_code
    null_flavor = code.null_flavor if code else None
    return {
        "id_root": d.id.root,
        "id_extension": d.id.extension,
        "dispensed_on": d.dispensed_on.isoformat() if d.dispensed_on else None,
        "period_start": d.period_start.isoformat() if d.period_start else None,
        "period_end": d.period_end.isoformat() if d.period_end else None,
        "product_code": code.code if code else None,
        "product_system": code.system if code else None,
        "product_null_flavor": null_flavor,
        "product_null_flavor_meaning": null_flavor_meaning(null_flavor),
        "product_name": d.product.display_name if d.product else None,
        "deviations": list(d.deviations),
        "dispense": d.to_json(),
    }


def source_json(s: SourceAnswer) -> dict[str, Any]:
    return {
        "organization_ura": s.organization_ura,
        "organization_name": s.organization_name,
        "application_id": s.application_id,
        "system_uzi": s.system_uzi,
        "message_id": s.message_id,
        "lsp_authored": s.lsp_authored,
        "query_response_code": s.status.value if s.status else None,
        "issues": [issue_json(i) for i in s.issues],
        "dispenses": [dispense_json(d) for d in s.dispenses],
        "dropped_dispenses": s.dropped_dispenses,
    }


def answer_json(parsed: ParsedAnswer, outcome: Outcome) -> dict[str, Any]:
    """The JSON shape of issue 2 (sources, issues) plus message and outcome details."""
    fault = parsed.fault
    return {
        "kind": parsed.kind,
        "interaction": parsed.interaction,
        "batch_message_id": parsed.batch_message_id,
        "target_message_id": parsed.target_message_id,
        "acknowledgement": parsed.acknowledgement,
        "sources": [source_json(s) for s in parsed.sources],
        "issues": [issue_json(i) for i in parsed.issues],
        "fault": {"code": fault.code, "reason": fault.reason} if fault else None,
        "deviations": list(parsed.deviations),
        "outcome": {
            "kind": outcome.kind.value,
            "code": outcome.code,
            "failed_sources": list(outcome.failed_sources),
        },
    }


def _summary(parsed: ParsedAnswer, outcome: Outcome) -> list[str]:
    lines = [f"{parsed.kind} {parsed.interaction or ''} {parsed.batch_message_id or ''}".strip()]
    if parsed.fault:
        lines.append(f"  SOAP fault {parsed.fault.code}: {parsed.fault.reason}")
    lines.extend(f"  transmission issue {i.code} ({i.system})" for i in parsed.issues)
    for s in parsed.sources:
        who = s.organization_name or ("LSP" if s.lsp_authored else "?")
        status = s.status.value if s.status else "?"
        codes = ", ".join(i.code for i in s.issues)
        dropped = f" (+{s.dropped_dispenses} unreadable)" if s.dropped_dispenses else ""
        lines.append(
            f"  {s.organization_ura or '-':>8}  {status:<2}  {len(s.dispenses):>3} "
            f"dispense(s){dropped}  {who}{'  [' + codes + ']' if codes else ''}"
        )
    lines.append(
        f"outcome: {outcome.kind.value}"
        + (f" ({outcome.code})" if outcome.code else "")
        + (f", failed: {', '.join(outcome.failed_sources)}" if outcome.failed_sources else "")
    )
    return lines


def register(app: typer.Typer) -> None:
    hl7_app = typer.Typer(
        help="HL7v3 tools: build a query, parse an LSP answer.", no_args_is_help=True
    )
    app.add_typer(hl7_app, name="hl7")

    @hl7_app.command("build-query")
    def build_query_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
        bsn: str = typer.Option(..., "--bsn", help="The patient's BSN (11-check)."),
        clinician_uzi: str = typer.Option(
            ..., "--clinician-uzi", help="UZI number of the responsible clinician."
        ),
        clinician_role: str = typer.Option(
            ..., "--clinician-role", help="UZI role code, e.g. 01.015."
        ),
        clinician_name: str = typer.Option(..., "--clinician-name"),
        ura: str = typer.Option(..., "--ura", help="The hospital's URA number."),
        hospital_name: str = typer.Option(..., "--hospital-name"),
        look_back_days: int | None = typer.Option(
            None,
            "--look-back-days",
            help=f"Only dispenses of the last 1..{MAX_LOOK_BACK_DAYS} days (Amsterdam calendar).",
        ),
        author_uzi: str | None = typer.Option(
            None, "--author-uzi", help="Mandated person as author (default: the system)."
        ),
        author_role: str = typer.Option("30.000", "--author-role"),
        author_name: str = typer.Option("Assistent", "--author-name"),
        system_uzi: str | None = typer.Option(
            None, "--system-uzi", help="UZI system number (default: settings)."
        ),
        application_id: str | None = typer.Option(
            None, "--application-id", help="Our AORTA application id (default: settings)."
        ),
        message_id: str | None = typer.Option(None, "--message-id", help="root^extension"),
        query_id: str | None = typer.Option(None, "--query-id", help="root^extension"),
        soap: bool = typer.Option(False, "--soap", help="Wrap in a SOAP 1.1 envelope."),
        signed: bool = typer.Option(
            False, "--signed", help="Print the complete signed envelope (needs --pki)."
        ),
        pki: Path | None = typer.Option(
            None, "--pki", help="Dev PKI directory (`prefetch pki dev DIR`) to sign with."
        ),
        passphrase_file: Path | None = typer.Option(
            None,
            "--passphrase-file",
            help="File with the PKI passphrase; default $PREFETCH_PKI_PASSPHRASE.",
        ),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Print a QURX_IN990111NL query for one patient."""
        settings = settings_or_exit(config)
        if signed and pki is None:
            typer.echo(
                "error: --signed needs --pki DIR (a dev PKI from `prefetch pki dev`)", err=True
            )
            raise typer.Exit(EXIT_USAGE)
        if look_back_days is not None and not 1 <= look_back_days <= MAX_LOOK_BACK_DAYS:
            typer.echo(
                f"error: --look-back-days must be 1..{MAX_LOOK_BACK_DAYS} (got {look_back_days})",
                err=True,
            )
            raise typer.Exit(EXIT_USAGE)
        now = _now()
        try:
            overseer = Clinician(
                uzi_number=clinician_uzi, role_code=clinician_role, name=clinician_name, ura=ura
            )
            author = (
                Clinician(uzi_number=author_uzi, role_code=author_role, name=author_name, ura=ura)
                if author_uzi
                else None
            )
            params = QueryParams(
                bsn=Bsn.parse(bsn),
                message_id=parse_id(message_id)
                if message_id
                else Identifier(requester_roots(ura)[0], uuid.uuid4().hex),
                query_id=parse_id(query_id)
                if query_id
                else Identifier(requester_roots(ura)[1], uuid.uuid4().hex),
                created_at=now,
                overseer=overseer,
                hospital_ura=ura,
                hospital_name=hospital_name,
                sender_application_id=application_id or settings.hospital.application_id,
                author=author,
                author_system_uzi=None if author else (system_uzi or settings.hospital.system_uzi),
                look_back_from=(
                    look_back_start(now, look_back_days) if look_back_days is not None else None
                ),
            )
            data = query_envelope(
                params,
                settings.aorta,
                soap=soap,
                pki=pki if signed else None,
                passphrase_file=passphrase_file,
            )
        except PrefetchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        typer.echo(data.decode("utf-8"), nl=False)

    @hl7_app.command("parse")
    def parse_cmd(
        file: Path = typer.Argument(..., help="An LSP answer (batch, item, reject, fault)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        expect_message_id: str | None = typer.Option(
            None, "--expect-message-id", help="Our query's message id, root^extension."
        ),
        expect_query_id: str | None = typer.Option(
            None, "--expect-query-id", help="Our query's queryId, root^extension."
        ),
    ) -> None:
        """Show what the parser makes of a response file."""
        expect = None
        if expect_message_id or expect_query_id:
            if not (expect_message_id and expect_query_id):
                typer.echo("error: give both --expect-message-id and --expect-query-id", err=True)
                raise typer.Exit(EXIT_USAGE)
            expect = QueryRef(
                message_id=parse_id(expect_message_id), query_id=parse_id(expect_query_id)
            )
        try:
            with file.open("rb") as stream:  # read in chunks: /dev/zero stops at the limit
                parsed = parse_answer_stream(stream, expect=expect)
        except OSError as exc:
            typer.echo(f"error: {file}: cannot read ({exc.strerror or exc})", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except PrefetchError as exc:
            typer.echo(f"error: {file}: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        outcome = classify(parsed)
        if as_json:
            typer.echo(json.dumps(answer_json(parsed, outcome), indent=2, ensure_ascii=False))
        else:
            typer.echo("\n".join(_summary(parsed, outcome)))
