"""Sign-in, CSRF, roles, sessions and the SSO header (acceptance 3, the desk half)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from desk_client import SECRET, csrf_of, make_client, sign_in
from desk_helpers import DAY, SeededDay
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from prefetch.store.audit import AuditLog
from prefetch.store.desk_users import DeskUserRepository
from prefetch.web.app import safe_next
from prefetch.web.auth import COOKIE, AuthConfig

PAGES = [
    "/werklijst",
    f"/werklijst?dag={DAY.isoformat()}",
    "/patienten/1",
    "/patienten/1/audit",
    "/patienten/1/audit.csv",
    "/patienten/1/audit.json",
    "/beheer/gebruikers",
]
ACTIONS = [
    "/patienten/1/opnieuw-ophalen",
    "/patienten/1/bezwaar",
    "/beheer/gebruikers",
    "/beheer/gebruikers/anna/status",
    "/afmelden",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_without_sign_in_goes_to_the_sign_in_page(
    desk_engine: Engine, path: str
) -> None:
    answer = make_client(desk_engine).get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/aanmelden?next=")


@pytest.mark.parametrize("path", [a for a in ACTIONS if a != "/afmelden"])
def test_every_action_without_sign_in_is_401(desk_engine: Engine, path: str) -> None:
    client = make_client(desk_engine)
    token = csrf_of(client.get("/aanmelden").text)
    answer = client.post(path, data={"csrf_token": token})
    assert answer.status_code == 401


@pytest.mark.parametrize("path", ACTIONS)
def test_an_action_without_its_csrf_token_is_refused(
    client_as: Callable[[str], TestClient], path: str
) -> None:
    client = client_as("beheer")
    assert client.post(path, data={}).status_code == 403
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403


def test_a_refused_csrf_changes_nothing(
    desk_engine: Engine, client_as: Callable[[str], TestClient], seeded: SeededDay
) -> None:
    client = client_as("beheer")
    before = len(AuditLog(desk_engine).recent(1000))
    client.post(f"/patienten/{seeded.items['P2']}/bezwaar", data={"bevestig": "ja"})
    client.post("/beheer/gebruikers/anna/status", data={"actief": "nee"})
    assert len(AuditLog(desk_engine).recent(1000)) == before
    assert DeskUserRepository(desk_engine).get("anna").active  # type: ignore[union-attr]


def test_sign_in_without_csrf_is_refused(desk_engine: Engine, seeded: SeededDay) -> None:
    client = make_client(desk_engine)
    answer = client.post("/aanmelden", data={"gebruikersnaam": "anna", "wachtwoord": "x" * 20})
    assert answer.status_code == 403


def test_wrong_password_is_refused_without_saying_which_part(
    desk_engine: Engine, seeded: SeededDay
) -> None:
    client = make_client(desk_engine)
    for name in ("anna", "nobody"):
        token = csrf_of(client.get("/aanmelden").text)
        answer = client.post(
            "/aanmelden",
            data={"gebruikersnaam": name, "wachtwoord": "wrong password!", "csrf_token": token},
        )
        assert answer.status_code == 401
        assert "Gebruikersnaam of wachtwoord klopt niet." in answer.text
    assert client.get("/werklijst").status_code == 303


@pytest.mark.parametrize("path", ["/beheer/gebruikers"])
@pytest.mark.parametrize("user", ["anna", "piet"])
def test_only_an_administrator_reaches_the_account_pages(
    client_as: Callable[[str], TestClient], path: str, user: str
) -> None:
    client = client_as(user)
    assert client.get(path).status_code == 403
    token = csrf_of(client.get("/werklijst").text)
    answer = client.post(
        path,
        data={"csrf_token": token, "gebruikersnaam": "evil", "naam": "E", "rol": "administrator"},
    )
    assert answer.status_code == 403
    assert client_as("beheer").get(path).status_code == 200


def test_an_assistant_cannot_read_the_audit_view(
    client_as: Callable[[str], TestClient], seeded: SeededDay
) -> None:
    client = client_as("anna")
    item = seeded.items["P1"]
    assert client.get(f"/patienten/{item}/audit").status_code == 403
    assert client.get(f"/patienten/{item}/audit.csv").status_code == 403


def test_administrator_adds_and_disables_an_account(
    desk_engine: Engine, client_as: Callable[[str], TestClient]
) -> None:
    client = client_as("beheer")
    token = csrf_of(client.get("/beheer/gebruikers").text)
    form = {
        "csrf_token": token,
        "gebruikersnaam": "nieuw",
        "naam": "Nieuwe Collega",
        "rol": "assistant",
        "wachtwoord": "een lang wachtwoord",
    }
    assert client.post("/beheer/gebruikers", data=form).status_code == 303
    assert sign_in(make_client(desk_engine), "nieuw", "een lang wachtwoord")
    token = csrf_of(client.get("/beheer/gebruikers").text)
    client.post("/beheer/gebruikers/nieuw/status", data={"csrf_token": token, "actief": "nee"})
    assert not DeskUserRepository(desk_engine).get("nieuw").active  # type: ignore[union-attr]


def test_a_disabled_account_loses_its_session(
    desk_engine: Engine, client_as: Callable[[str], TestClient], seeded: SeededDay
) -> None:
    import datetime as dt

    client = client_as("anna")
    assert client.get("/werklijst").status_code == 200
    DeskUserRepository(desk_engine).set_disabled("anna", disabled=True, now=dt.datetime.now(dt.UTC))
    assert client.get("/werklijst").status_code == 303


def test_sessions_expire(desk_engine: Engine, seeded: SeededDay) -> None:
    client = make_client(desk_engine, auth=AuthConfig(secret=SECRET, session_minutes=0))
    token = csrf_of(client.get("/aanmelden").text)
    client.post(
        "/aanmelden",
        data={"gebruikersnaam": "anna", "wachtwoord": "correct horse battery", "csrf_token": token},
    )
    time.sleep(1.1)  # max_age 0: any cookie older than a second is expired
    assert client.get("/werklijst").status_code == 303


def test_a_tampered_session_cookie_is_ignored(
    client_as: Callable[[str], TestClient],
) -> None:
    client = client_as("anna")
    value = client.cookies[COOKIE]
    payload, rest = value.split(".", 1)
    forged = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    client.cookies.clear()
    client.cookies.set(COOKIE, f"{forged}.{rest}")
    assert client.get("/werklijst").status_code == 303


def test_session_cookie_flags(desk_engine: Engine) -> None:
    answer = make_client(desk_engine).get("/aanmelden")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


SSO = AuthConfig(secret=SECRET, trusted_proxies=("10.0.0.0/24", "::1"))


def test_sso_header_signs_in_only_from_a_trusted_proxy(desk_engine: Engine) -> None:
    header = {"X-Remote-User": "Anna"}
    proxy = make_client(desk_engine, auth=SSO, peer="10.0.0.5")
    page = proxy.get("/werklijst", headers=header)
    assert page.status_code == 200
    assert "Aangemeld als <strong>Anna</strong>" in page.text
    # the same header from anywhere else is ignored
    for peer in ("10.0.1.5", "192.168.1.9", "testclient"):
        other = make_client(desk_engine, auth=SSO, peer=peer)
        assert other.get("/werklijst", headers=header).status_code == 303
    # an unknown or disabled user is not signed in, even by the proxy
    assert proxy.get("/werklijst", headers={"X-Remote-User": "nobody"}).status_code == 303
    # without the header, the proxy's session ends
    assert proxy.get("/werklijst").status_code == 303


def test_only_local_paths_are_followed_after_sign_in() -> None:
    assert safe_next("/patienten/3") == "/patienten/3"
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil", None, ""):
        assert safe_next(bad) == "/werklijst"
