"""The composition root: the only place that turns settings into adapters and wires them.

The CLI (and later the daemon) call these functions; nothing else constructs an engine,
a session, a signer, a limiter or a repository.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from prefetch.clock import SYSTEM_CLOCK
from prefetch.domain.run import EngineConfig
from prefetch.engine import Prefetcher
from prefetch.errors import ConfigError
from prefetch.limiter import SharedLimiter
from prefetch.lsp.client import LspClient, LspEndpoint
from prefetch.ports import Clock, LeaderLock, LspGateway, RateLimiter
from prefetch.run_day import RunServices
from prefetch.security.keys import Credential, read_passphrase
from prefetch.security.tls import mtls_session
from prefetch.security.trust import TrustStore
from prefetch.settings import Settings
from prefetch.store.appointment_book import AppointmentBook
from prefetch.store.audit import AuditLog
from prefetch.store.db import make_engine, require_schema_head, upgrade
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.locks import SqlLeaderLock
from prefetch.store.mandates import MandateRepository
from prefetch.store.objections import ConsentRegister
from prefetch.store.runs import RunRepository
from prefetch.throttle import Throttle, ThrottleConfig


@dataclass(frozen=True, slots=True)
class Stores:
    engine: Engine
    runs: RunRepository
    dispenses: DispenseRepository
    audit: AuditLog
    mandates: MandateRepository
    book: AppointmentBook
    consent: ConsentRegister


def open_stores(settings: Settings, *, migrate: bool = True) -> Stores:
    """Open the database of `settings` (creating the SQLite data directory if needed)."""
    url = settings.database_url
    if migrate:
        upgrade(url)
    engine = make_engine(url)
    return Stores(
        engine=engine,
        runs=RunRepository(engine),
        dispenses=DispenseRepository(engine),
        audit=AuditLog(engine),
        mandates=MandateRepository(engine),
        book=AppointmentBook(engine),
        consent=ConsentRegister(engine),
    )


def engine_config(settings: Settings) -> EngineConfig:
    h, r = settings.hospital, settings.run
    return EngineConfig(
        hospital_ura=h.ura,
        hospital_name=h.name,
        application_id=h.application_id,
        system_uzi=h.system_uzi,
        max_attempts=r.max_attempts,
        backoff_base=dt.timedelta(seconds=r.backoff_base_seconds),
        backoff_max=dt.timedelta(seconds=r.backoff_max_seconds),
        fresh_for=dt.timedelta(hours=r.fresh_hours),
        look_back_days=settings.lsp.look_back_days,
        workers=settings.throttle.max_in_flight,
    )


def throttle_config(settings: Settings) -> ThrottleConfig:
    t = settings.throttle
    return ThrottleConfig(
        rate_per_second=t.rate_per_second,
        max_in_flight=t.max_in_flight,
        breaker_failures=t.breaker_failures,
        breaker_reset_seconds=t.breaker_reset_seconds,
        margin_seconds=t.jitter_margin_seconds,
    )


def make_throttle(settings: Settings) -> Throttle:
    return Throttle(throttle_config(settings))


def make_limiter(settings: Settings, stores: Stores, clock: Clock = SYSTEM_CLOCK) -> SharedLimiter:
    """The send budget from `[throttle]`, shared through the database with every other
    process and schedule on it. A lease outlives the longest a query can take; the lease
    of a process known gone (this host, pid no longer running) counts until the time-outs
    after which a live process would have given the slot back itself."""
    lsp = settings.lsp
    client_wait = lsp.connect_timeout + lsp.read_timeout
    return SharedLimiter(
        throttle_config(settings),
        stores.engine,
        lease_seconds=client_wait + 5.0,
        clock=clock,
        gone_lease_seconds=client_wait + settings.throttle.jitter_margin_seconds,
    )


def load_credential(settings: Settings) -> Credential:
    """The UZI server certificate and key, loaded once (passphrase from file or env)."""
    lsp = settings.lsp
    passphrase = read_passphrase(Path(lsp.passphrase_file) if lsp.passphrase_file else None)
    return Credential.load(Path(lsp.client_p12), passphrase)


def make_lsp_client(settings: Settings, credential: Credential) -> LspClient:
    lsp = settings.lsp
    session = mtls_session(
        credential, Path(lsp.ca_file), pool_maxsize=settings.throttle.max_in_flight
    )
    return LspClient(
        endpoint=LspEndpoint(lsp.url, lsp.connect_timeout, lsp.read_timeout),
        session=session,
        credential=credential,
        aorta=settings.aorta,
    )


def make_run_services(
    settings: Settings,
    stores: Stores,
    gateway: LspGateway,
    *,
    trust: TrustStore | None = None,
    limiter: RateLimiter | None = None,
    clock: Clock = SYSTEM_CLOCK,
    locks: LeaderLock | None = None,
) -> RunServices:
    """What `run_schedule_day` needs. `trust` defaults to `[security]`'s UZI trust;
    `limiter` to the send budget shared through the database (`make_limiter`)."""
    return RunServices(
        runs=stores.runs,
        dispenses=stores.dispenses,
        mandates=stores.mandates,
        gateway=gateway,
        limiter=limiter if limiter is not None else make_limiter(settings, stores, clock),
        trust=trust if trust is not None else trust_store(settings),
        config=engine_config(settings),
        clock=clock,
        locks=locks,
        refusing=stores.consent.refusing,
    )


def make_run_locks(stores: Stores) -> SqlLeaderLock:
    """The named locks on the database: one run per schedule and clinic day."""
    return SqlLeaderLock(stores.engine)


def make_prefetcher(
    settings: Settings,
    stores: Stores,
    gateway: LspGateway,
    *,
    limiter: RateLimiter | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Prefetcher:
    """The engine alone (no mandate check): for tests and tools that drive it step by step."""
    return Prefetcher(
        runs=stores.runs,
        dispenses=stores.dispenses,
        gateway=gateway,
        limiter=limiter if limiter is not None else make_limiter(settings, stores, clock),
        config=engine_config(settings),
        clock=clock,
    )


def trust_store(settings: Settings) -> TrustStore:
    """The UZI trust anchors, intermediates and CRLs of `[security]` (for mandate tokens)."""
    sec = settings.security
    if not sec.trust_anchors:
        raise ConfigError(
            "no UZI trust anchors configured",
            key="security.trust_anchors",
            fix="list the UZI root CA PEM file(s)",
        )
    try:
        return TrustStore.from_files(
            [Path(p) for p in sec.trust_anchors],
            [Path(p) for p in sec.intermediates],
            [Path(p) for p in sec.crls],
        )
    except OSError as exc:
        raise ConfigError(
            "cannot read a trust file", key="security", error=type(exc).__name__
        ) from None


def open_engine(settings: Settings) -> Engine:
    """An engine on the configured database, which must be at this version's schema."""
    engine = make_engine(settings.database_url)
    try:
        require_schema_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def audit_trust(settings: Settings) -> TrustStore | None:
    """The UZI trust that audit checkpoint signers are checked against (None: not set)."""
    return trust_store(settings) if settings.security.trust_anchors else None


def require_current_schema(stores: Stores) -> None:
    """Refuse to run on a database that is not migrated to this version's schema."""
    require_schema_head(stores.engine)
