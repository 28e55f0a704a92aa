"""Wiring the desk from the settings (the desk's part of the composition root).

`desk_app(settings)` opens the store, reads or creates the session key, and wires
"re-fetch now" to the configured LSP through the run use case (`refetcher`).
`demo_desk_app(data_dir)` does the same for the demo's data directory, with the demo's
LSP simulator in-process. Both read the clinic day's appointments from the appointment
book (`BookDay`); the demo's day is loaded into it by `prefetch demo` (and again, which
changes nothing, when its desk starts).
`ensure_demo_account` creates the demo's sign-in (random password, 0600 file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

from prefetch.clock import utc_now
from prefetch.composition import Stores, make_lsp_client, make_run_services
from prefetch.domain.schedule import Schedule
from prefetch.errors import ConfigError
from prefetch.hl7v3.params import QueryParams
from prefetch.ports import LspGateway, LspReply
from prefetch.run_day import RunServices, run_schedule_day
from prefetch.security.keys import write_private
from prefetch.settings import Settings
from prefetch.store.desk_users import DeskRole, DeskUserRepository
from prefetch.web.app import create_app
from prefetch.web.auth import AuthConfig
from prefetch.web.seams import BookDay, Refetcher

DEMO_USER = "demo"
DEMO_PASSWORD_FILE = "desk-demo.password"  # noqa: S105 - a file name
SECRET_FILE = "desk.secret"  # noqa: S105 - a file name


def session_secret(settings: Settings) -> bytes:
    """The cookie signing key: `[desk] secret_file`, else `<data_dir>/desk.secret` (0600),
    created with 32 random bytes on first use."""
    path = Path(settings.desk.secret_file or settings.data_path / SECRET_FILE)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def auth_config(settings: Settings) -> AuthConfig:
    desk = settings.desk
    return AuthConfig(
        secret=session_secret(settings),
        session_minutes=desk.session_minutes,
        trusted_proxies=desk.trusted_proxies,
        proxy_user_header=desk.proxy_user_header,
        secure_cookie=desk.secure_cookie,
    )


def refetcher(
    services: RunServices, schedules: Callable[[], list[Schedule]], day: BookDay
) -> Refetcher:
    """Re-fetch through the run use case, one attempt (the user waits for the answer)."""
    once = dataclasses.replace(
        services, config=dataclasses.replace(services.config, max_attempts=1)
    )

    def schedule_of(schedule_id: str) -> Schedule | None:
        return next((s for s in schedules() if s.id == schedule_id), None)

    return Refetcher(
        schedules=schedule_of,
        appointments=day.for_patient,
        run=lambda request: run_schedule_day(once, request),
    )


def desk_app(settings: Settings, stores: Stores) -> FastAPI:
    """The desk on the configured database and LSP (`prefetch desk`)."""
    from prefetch.composition import load_credential
    from prefetch.schedule_files import load_schedules

    def schedules() -> list[Schedule]:
        return load_schedules(Path(settings.schedules_dir))

    day = BookDay(stores.book.day, schedules)
    gateway = _LazyGateway(lambda: make_lsp_client(settings, load_credential(settings)))
    try:
        services = make_run_services(settings, stores, gateway)
    except ConfigError:  # no UZI trust configured: the desk reads, but cannot re-fetch
        refetch = None
    else:
        refetch = refetcher(services, schedules, day)
    return create_app(stores.engine, auth=auth_config(settings), slots=day.slots, refetch=refetch)


class _LazyGateway:
    """The LSP client, built (credential loaded) at the first re-fetch, then kept."""

    def __init__(self, build: Callable[[], LspGateway]) -> None:
        self._build = build
        self._client: LspGateway | None = None

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
        if self._client is None:
            self._client = self._build()
        return self._client.query(params, mandate_token=mandate_token)


@contextmanager
def demo_desk_app(
    data_dir: Path, *, profile_name: str = "realistic"
) -> Iterator[tuple[FastAPI, Stores]]:
    """The desk on the demo's data directory, with the demo's LSP simulator running."""
    from prefetch.composition import open_stores
    from prefetch.demo import setup
    from prefetch.lspsim.profiles import get_profile

    pki, passphrase = setup.ensure_pki(data_dir)
    world = setup.ensure_world(data_dir)
    profile = get_profile(profile_name).with_time_scale(setup.DEMO_TIME_SCALE)
    schedule = setup.demo_schedule(pki)
    with setup.start_simulator(world, profile, pki, passphrase) as sim:
        settings = setup.demo_settings(data_dir, pki, sim, profile)
        stores = open_stores(settings)
        client = make_lsp_client(settings, pki.hospital.load(passphrase))
        services = make_run_services(settings, stores, client, trust=pki.trust_store())
        setup.load_clinic_days(stores, data_dir, utc_now())
        day = BookDay(stores.book.day, lambda: [schedule])
        app = create_app(
            stores.engine,
            auth=auth_config(settings),
            slots=day.slots,
            refetch=refetcher(services, lambda: [schedule], day),
        )
        try:
            yield app, stores
        finally:
            stores.engine.dispose()


def ensure_demo_account(
    users: DeskUserRepository, data_dir: Path, *, mandate_id: str = "demo-mandate"
) -> tuple[str, str, Path]:
    """The demo's administrator account; its random password is kept in a 0600 file."""
    path = data_dir / DEMO_PASSWORD_FILE
    password = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    now = utc_now()
    existing = users.get(DEMO_USER)
    if existing is not None and password and users.authenticate(DEMO_USER, password):
        return DEMO_USER, password, path
    password = secrets.token_urlsafe(12)
    if existing is None:
        users.add(
            DEMO_USER,
            display_name="Demo-beheerder",
            role=DeskRole.ADMINISTRATOR,
            password=password,
            mandate_id=mandate_id,
            now=now,
        )
    else:
        users.set_password(DEMO_USER, password, now=now)
        users.set_disabled(DEMO_USER, disabled=False, now=now)
    write_private(path, password.encode())
    return DEMO_USER, password, path


def demo_handoff(data_dir: Path, database_url: str, clinic_day: dt.date) -> list[str]:
    """What `prefetch demo` prints at its end: the desk URL, a sign-in and the command."""
    from prefetch.store.db import make_engine

    engine = make_engine(database_url)
    try:
        name, password, path = ensure_demo_account(DeskUserRepository(engine), data_dir)
    finally:
        engine.dispose()
    port = Settings().desk.port
    return [
        f"desk: http://127.0.0.1:{port}/werklijst?dag={clinic_day.isoformat()}",
        f"desk sign-in: {name} / {password} (kept in {path}, mode 0600)",
        f"start the desk: prefetch desk --demo {data_dir}",
    ]
