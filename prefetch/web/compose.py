"""Wiring the desk from the settings (the desk's part of the composition root).

`desk_app(settings)` opens the store, reads or creates the session key, and wires
"re-fetch now" to the configured LSP (`lsp_refetcher`). `demo_desk_app(data_dir)` does the
same for the demo's data directory, with the LSP simulator of the demo in-process.
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

from prefetch.composition import Stores, engine_config, make_lsp_client, make_throttle
from prefetch.domain.people import Mandate
from prefetch.domain.schedule import Schedule
from prefetch.engine import Prefetcher
from prefetch.ports import LspGateway, utc_now
from prefetch.security.keys import write_private
from prefetch.settings import Settings
from prefetch.store.desk_users import DeskRole, DeskUserRepository
from prefetch.web.app import create_app
from prefetch.web.auth import AuthConfig
from prefetch.web.seams import Refetcher, csv_slots

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


def lsp_refetcher(
    settings: Settings,
    stores: Stores,
    schedules: Callable[[], list[Schedule]],
    gateway: Callable[[], LspGateway],
    clock: Callable[[], dt.datetime] = utc_now,
) -> Refetcher:
    """Re-fetch through the engine with one attempt (the user waits for the answer)."""
    config = dataclasses.replace(engine_config(settings), max_attempts=1, workers=1)

    def lookup(schedule_id: str) -> tuple[Schedule, Mandate | None] | None:
        schedule = next((s for s in schedules() if s.id == schedule_id), None)
        if schedule is None:
            return None
        mandate = stores.mandates.get(schedule.mandate_id) if schedule.mandate_id else None
        if mandate is not None and stores.mandates.revoked_at(mandate.id) is not None:
            mandate = None
        return schedule, mandate

    def execute(run_id: str, schedule: Schedule, mandate: Mandate | None, day: dt.date) -> None:
        prefetcher = Prefetcher(
            runs=stores.runs,
            dispenses=stores.dispenses,
            gateway=gateway(),
            throttle=make_throttle(settings),
            config=config,
            clock=clock,
        )
        prefetcher.execute(run_id, schedule, mandate, clinic_day=day)

    return Refetcher(stores.engine, lookup, execute, clock)


def desk_app(settings: Settings, stores: Stores) -> FastAPI:
    """The desk on the configured database and LSP (`prefetch desk`)."""
    from prefetch.schedule_files import load_schedules
    from prefetch.security.keys import Credential

    credential: list[Credential] = []

    def gateway() -> LspGateway:
        if not credential:  # loaded at the first re-fetch, then kept
            from prefetch.composition import load_credential

            credential.append(load_credential(settings))
        return make_lsp_client(settings, credential[0])

    refetch = lsp_refetcher(
        settings, stores, lambda: load_schedules(Path(settings.schedules_dir)), gateway
    )
    return create_app(
        stores.engine,
        auth=auth_config(settings),
        slots=csv_slots(settings.data_path),
        refetch=refetch,
    )


@contextmanager
def demo_desk_app(data_dir: Path, *, port: int | None = None) -> Iterator[tuple[FastAPI, Stores]]:
    """The desk on the demo's data directory, with the demo's LSP simulator running."""
    from prefetch.composition import open_stores
    from prefetch.demo import run_demo
    from prefetch.lspsim.profiles import get_profile

    pki, passphrase = run_demo.ensure_pki(data_dir)
    world = run_demo.ensure_world(data_dir)
    profile = get_profile("realistic").with_time_scale(run_demo.DEMO_TIME_SCALE)
    schedule = run_demo.demo_schedule(pki)
    with run_demo.start_simulator(world, profile, pki, passphrase) as sim:
        settings = run_demo.demo_settings(data_dir, pki, sim, profile)
        if port is not None:
            settings = dataclasses.replace(
                settings, desk=dataclasses.replace(settings.desk, port=port)
            )
        stores = open_stores(settings)
        client = make_lsp_client(settings, pki.hospital.load(passphrase))
        refetch = lsp_refetcher(settings, stores, lambda: [schedule], lambda: client)
        app = create_app(
            stores.engine,
            auth=auth_config(settings),
            slots=csv_slots(data_dir),
            refetch=refetch,
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
