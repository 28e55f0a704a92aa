"""`prefetch pki dev DIR` and `prefetch mandate register|check`.

Passphrases are read from `--passphrase-file FILE` or the environment variable
`PREFETCH_PKI_PASSPHRASE`, never from the command line.
Exit codes: 0 ok; 2 usage or configuration error, and every mandate problem (a refused
`mandate check`, a pass that cannot sign a mandate, a missing or unreadable PKCS#12 file).
Bad input is one `error:` line on stderr, never a traceback.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE, clean_errors, settings_or_exit
from prefetch.errors import ConfigError, MandateError, SecurityError

if TYPE_CHECKING:
    from prefetch.security.keys import Credential
    from prefetch.security.trust import TrustStore
    from prefetch.settings import Settings

PASSPHRASE_FILE_OPTION = typer.Option(
    None,
    "--passphrase-file",
    help="File whose first line is the PKCS#12 passphrase "
    "(default: environment variable PREFETCH_PKI_PASSPHRASE).",
)


def pki_dev(
    *,
    directory: Path = typer.Argument(..., help="New or empty directory for the PKI."),
    key_size: int = typer.Option(4096, help="RSA key size (UZI: 4096; 2048 for tests)."),
    hospital_ura: str | None = typer.Option(None, help="URA; default hospital.ura."),
    system_uzi: str | None = typer.Option(
        None,
        help="UZI system number of the hospital server certificate; default hospital.system_uzi.",
    ),
    passphrase_file: Path | None = PASSPHRASE_FILE_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Generate CA, CRLs, hospital / personal / simulator certificates (keys in PKCS#12)."""
    from prefetch.security.keys import read_passphrase
    from prefetch.security.pki import DEFAULT_SYSTEM_UZI, DEFAULT_URA, create_dev_pki

    settings = settings_or_exit(config)
    ura = hospital_ura or (
        settings.hospital.ura if settings.hospital.ura != "00000000" else DEFAULT_URA
    )
    uzi = system_uzi or (
        settings.hospital.system_uzi
        if settings.hospital.system_uzi != "000000000"
        else DEFAULT_SYSTEM_UZI
    )
    with clean_errors():
        passphrase = read_passphrase(passphrase_file)
        pki = create_dev_pki(
            directory,
            passphrase=passphrase,
            key_size=key_size,
            hospital_ura=ura,
            hospital_name=settings.hospital.name,
            hospital_system_uzi=uzi,
        )
    typer.echo(f"dev PKI written to {pki.directory} (RSA {pki.key_size}, URA {ura})")
    for label, ident in sorted(pki.identities.items()):
        who = f"UZI {ident.uzi_number} card {ident.card_type}" if ident.uzi_number else "TLS"
        typer.echo(f"  {label:<11} {ident.p12.name:<20} {who}")
    typer.echo(f"  trust: {pki.ca_bundle.name}, CRLs: {pki.crl_bundle.name}")


def _load_pass(p12: Path, passphrase_file: Path | None) -> Credential:
    """The clinician's pass; a missing, unreadable or undecryptable file is a usage error."""
    from prefetch.security.keys import Credential, read_passphrase

    passphrase = read_passphrase(passphrase_file)
    try:
        return Credential.load(p12, passphrase)
    except SecurityError as exc:
        raise ConfigError(exc.message, **exc.context) from None


def _mandate_trust(pki: Path | None, settings: Settings) -> TrustStore:
    """Trust for the signing pass: the dev PKI in `pki`, else the `[security]` settings."""
    from prefetch.composition import trust_store
    from prefetch.security.pki import DevPki

    if pki is not None:
        return DevPki.load(pki).trust_store()
    return trust_store(settings)


def mandate_register(
    *,
    clinician_p12: Path = typer.Option(
        ..., help="PKCS#12 of the mandating clinician's UZI pass, card type Z (signs the token)."
    ),
    pki: Path | None = typer.Option(
        None,
        help="Dev PKI directory whose CA and CRLs validate the pass "
        "(default: the [security] trust settings).",
    ),
    schedule: list[str] = typer.Option(..., help="Schedule id covered (repeatable)."),
    name: str = typer.Option(..., help="Clinician's name as sent in the overseer."),
    mandatee: str | None = typer.Option(
        None,
        help="UZI number of the mandated person or UZI system number; "
        "default hospital.system_uzi (the unattended system).",
    ),
    days: int = typer.Option(365, min=1, max=1100, help="Validity in days from now."),
    mandate_id: str | None = typer.Option(None, "--id", help="Mandate id (default new)."),
    passphrase_file: Path | None = PASSPHRASE_FILE_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Record a mandate and have the clinician's key sign its mandaattoken once.

    Only a medical specialist's or pharmacist's pass (UZI card type Z) gives a mandate; it is
    validated against the trust (chain, validity, CRL, non-repudiation key usage) before it
    signs. An existing mandate id is never overwritten.
    """
    from prefetch.security.mandates import register_mandate, schedules_ok
    from prefetch.store.db import make_engine, upgrade
    from prefetch.store.mandates import MandateRepository

    settings = settings_or_exit(config)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with clean_errors():
        if not schedules_ok(schedule):
            raise ConfigError("--schedule needs a non-empty schedule id (no surrounding spaces)")
        if mandate_id is not None and (not mandate_id or mandate_id != mandate_id.strip()):
            raise ConfigError("--id needs a non-empty mandate id (no surrounding spaces)")
        trust = _mandate_trust(pki, settings)
        credential = _load_pass(clinician_p12, passphrase_file)
        if credential.identity.ura != settings.hospital.ura:
            raise ConfigError(
                "the pass belongs to another organisation than hospital.ura",
                pass_ura=credential.identity.ura,
            )
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            repository = MandateRepository(engine)
            if mandate_id is not None and repository.get(mandate_id) is not None:
                raise ConfigError(
                    "a mandate with this id exists already; it is not overwritten",
                    mandate_id=mandate_id,
                    fix="choose another --id",
                )
            mandate = register_mandate(
                credential,
                name=name,
                mandated_id=mandatee or settings.hospital.system_uzi,
                schedules=schedule,
                valid_from=now,
                valid_until=now + dt.timedelta(days=days),
                now=now,
                mandate_id=mandate_id,
                trust=trust,
            )
            repository.add(mandate)
        finally:
            engine.dispose()
    typer.echo(
        f"mandate {mandate.id} registered: UZI {mandate.mandating.uzi_number} "
        f"({mandate.mandating.role_code}) mandates {mandate.mandated_id} for "
        f"{', '.join(sorted(mandate.schedules))} until {mandate.valid_until.isoformat()}"
    )


def mandate_check(
    *,
    schedule: str = typer.Option(..., help="Schedule id a run would use."),
    pki: Path = typer.Option(..., help="PKI directory (manifest.json) with the UZI CA."),
    mandatee: str | None = typer.Option(None, help="Default hospital.system_uzi."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Check, as a run does before it starts, that a valid mandate covers a schedule."""
    from prefetch.security.mandates import check_mandate
    from prefetch.security.pki import DevPki
    from prefetch.store.db import make_engine
    from prefetch.store.mandates import MandateRepository

    settings = settings_or_exit(config)
    now = dt.datetime.now(dt.UTC)
    who = mandatee or settings.hospital.system_uzi
    with clean_errors():
        trust = DevPki.load(pki).trust_store()
        engine = make_engine(settings.database_url)
        try:
            candidates = MandateRepository(engine).for_schedule(schedule, now)
        finally:
            engine.dispose()
        mine = [m for m in candidates if m.mandated_id == who]
        try:
            info = check_mandate(
                mine[0] if mine else None,
                schedule_id=schedule,
                mandatee=who,
                ura=settings.hospital.ura,
                trust=trust,
                now=now,
            )
        except MandateError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
    typer.echo(
        f"ok: mandate {mine[0].id} by UZI {info.signer_uzi} valid until "
        f"{info.not_on_or_after.isoformat()}"
    )


def register(app: typer.Typer) -> None:
    pki_app = typer.Typer(help="Development PKI shaped like the UZI register.")
    mandate_app = typer.Typer(help="Mandates: who lets whom query under their responsibility.")
    app.add_typer(pki_app, name="pki")
    app.add_typer(mandate_app, name="mandate")
    pki_app.command("dev")(pki_dev)
    mandate_app.command("register")(mandate_register)
    mandate_app.command("check")(mandate_check)
