"""The desk's test client and sign-in helpers, and the demo desk's shape.

Imported by name (`from desk_client import ...`), never through `conftest`: with several
test folders on the command line, `conftest` names whichever folder's conftest was loaded
last, so `from conftest import` breaks depending on what is collected with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from desk_helpers import DESK_NOW, PASSWORD
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from prefetch.composition import Stores
from prefetch.web.app import create_app
from prefetch.web.auth import AuthConfig
from prefetch.web.seams import Refetcher

SECRET = b"desk test secret, not for production use"


def make_client(
    engine: Engine,
    *,
    refetch: Refetcher | None = None,
    auth: AuthConfig | None = None,
    peer: str = "testclient",
) -> TestClient:
    app = create_app(
        engine, auth=auth or AuthConfig(secret=SECRET), refetch=refetch, clock=lambda: DESK_NOW
    )
    return TestClient(app, follow_redirects=False, client=(peer, 50000))


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/aanmelden")
    answer = client.post(
        "/aanmelden",
        data={"gebruikersnaam": username, "wachtwoord": password, "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 303, answer.text
    return client


@dataclass(frozen=True, slots=True)
class DemoDesk:
    """The demo's clinic day (a real run against the simulator) and its desk."""

    app: FastAPI
    stores: Stores
    data_dir: Path
    clinic_day: dt.date
    username: str
    password: str
