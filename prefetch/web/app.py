"""The desk web app: FastAPI with server-rendered Jinja2 pages (labels in Dutch).

`create_app(engine, auth=...)` builds it; `prefetch desk` serves it with uvicorn. Every
page needs a signed-in user (GET without one: to the sign-in page; anything else: 401);
every POST carries the session's CSRF token. The pages are in `pages.py`, the actions in
`actions.py`; what the desk needs from other parts of the product is in `seams.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from prefetch.clock import utc_now
from prefetch.store.desk_users import DeskUserRepository
from prefetch.store.mandates import MandateRepository
from prefetch.web import labels
from prefetch.web.auth import (
    CSRF_FIELD,
    AuthConfig,
    Authenticator,
    CsrfRefused,
    Forbidden,
    NotSignedIn,
    check_csrf,
    session_of,
)
from prefetch.web.fhir_api import fhir_router
from prefetch.web.patient import PatientQuery
from prefetch.web.seams import AppointmentSlots, Refetcher, no_slots
from prefetch.web.worklist import WorklistQuery

HERE = Path(__file__).parent
FHIR_PREFIX = "/fhir/"
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Desk:
    """What the routes use; kept on `app.state.desk`."""

    engine: Engine
    auth: Authenticator
    users: DeskUserRepository
    mandates: MandateRepository
    worklists: WorklistQuery
    patients: PatientQuery
    slots: AppointmentSlots
    refetch: Refetcher | None
    clock: Callable[[], dt.datetime]
    templates: Jinja2Templates


def desk_of(request: Request) -> Desk:
    desk = request.app.state.desk
    assert isinstance(desk, Desk)
    return desk


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    session = session_of(request)
    flash, session.flash = session.flash, None
    base = {
        "user": session.user,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf,
        "flash": flash,
        "labels": labels,
    }
    return desk_of(request).templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (first value of each field); refused when too big."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRefused
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


async def checked_form(request: Request) -> dict[str, str]:
    """The form of a POST whose CSRF token matches the session (else `CsrfRefused`)."""
    form = await read_form(request)
    check_csrf(request, form)
    return form


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host): open redirects are refused."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/werklijst"
    return target


def _signin_router() -> APIRouter:
    router = APIRouter()

    @router.get("/aanmelden", response_class=HTMLResponse)
    def signin_page(request: Request, next: str = "/werklijst") -> Response:
        return render(request, "signin.html", {"next": safe_next(next), "error": None})

    @router.post("/aanmelden", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        form = await checked_form(request)
        desk = desk_of(request)
        user = await run_in_threadpool(  # argon2 is slow on purpose: not on the event loop
            desk.users.authenticate, form.get("gebruikersnaam", ""), form.get("wachtwoord", "")
        )
        target = safe_next(form.get("next"))
        if user is None:
            error = "Gebruikersnaam of wachtwoord klopt niet."
            return render(request, "signin.html", {"next": target, "error": error}, 401)
        fresh = desk.auth.new_session(user.username)
        request.state.desk_session = fresh  # a new session id and CSRF token at sign-in
        return RedirectResponse(target, status_code=303)

    @router.post("/afmelden")
    async def signout(request: Request) -> Response:
        await checked_form(request)
        request.state.desk_session = desk_of(request).auth.new_session()
        return RedirectResponse("/aanmelden", status_code=303)

    @router.get("/")
    def home() -> Response:
        return RedirectResponse("/werklijst", status_code=303)

    @router.get("/gezond", response_class=PlainTextResponse)
    def health() -> str:
        return "ok"

    return router


def _install_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def sessions(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith(FHIR_PREFIX):  # the API has its own bearer tokens
            return await call_next(request)
        desk = desk_of(request)
        request.state.desk_session = desk.auth.load(request)
        response = await call_next(request)
        desk.auth.store(response, request.state.desk_session)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/aanmelden?next={quote(target)}", status_code=303)
        return PlainTextResponse("Niet aangemeld.", status_code=401)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _exc: Forbidden) -> Response:
        return render(request, "forbidden.html", {}, 403)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(_request: Request, _exc: CsrfRefused) -> Response:
        return PlainTextResponse(
            "Geweigerd: het formulier is verlopen of niet van deze site. "
            "Laad de pagina opnieuw en probeer het nog eens.",
            status_code=403,
        )


def create_app(
    engine: Engine,
    *,
    auth: AuthConfig,
    slots: AppointmentSlots = no_slots,
    refetch: Refetcher | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> FastAPI:
    """The desk on `engine` (migrated), with the FHIR API for the EPD under `/fhir`."""
    from prefetch.web.actions import actions_router
    from prefetch.web.pages import pages_router

    users = DeskUserRepository(engine)
    app = FastAPI(title="prefetch desk", docs_url=None, redoc_url=None, openapi_url=None)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is HTML-escaped unless a template says otherwise
        undefined=jinja2.StrictUndefined,
    )
    templates = Jinja2Templates(env=environment)
    app.state.desk = Desk(
        engine=engine,
        auth=Authenticator(auth, users),
        users=users,
        mandates=MandateRepository(engine),
        worklists=WorklistQuery(engine),
        patients=PatientQuery(engine),
        slots=slots,
        refetch=refetch,
        clock=clock,
        templates=templates,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(_signin_router())
    app.include_router(pages_router())
    app.include_router(actions_router())
    # The EPD's FHIR API: bearer tokens, no desk session (see fhir_api.py).
    app.include_router(fhir_router(engine))
    _install_handlers(app)
    return app
