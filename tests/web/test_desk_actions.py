"""The desk's actions on the demo's day: re-fetch now (through the run use case, against
the simulator) and record an objection; each audited under the signed-in user."""

from __future__ import annotations

import datetime as dt

from desk_client import DemoDesk, csrf_of, sign_in
from fastapi.testclient import TestClient

from prefetch.store.audit import AuditLog
from prefetch.store.desk_users import DeskRole, DeskUserRepository
from prefetch.web.labels import Status
from prefetch.web.patient import PatientQuery
from prefetch.web.worklist import WorklistQuery


def _client(desk: DemoDesk, username: str | None = None, password: str | None = None) -> TestClient:
    client = TestClient(desk.app, follow_redirects=False)
    return sign_in(client, username or desk.username, password or desk.password)


def _pick(desk: DemoDesk, status: Status, n: int = 0) -> tuple[int, str]:
    """The n-th patient with this status on the demo's day: item id and BSN."""
    rows = (
        WorklistQuery(desk.stores.engine)
        .worklist(desk.clinic_day, poli=None, status=status, slots={})
        .rows
    )
    item_id = rows[n].item_id
    found = PatientQuery(desk.stores.engine).item(item_id)
    assert found is not None
    return item_id, found[0].bsn or ""


def _post(client: TestClient, path: str, **form: str) -> str:
    token = csrf_of(client.get("/werklijst").text)
    answer = client.post(path, data={"csrf_token": token, **form})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def _events(desk: DemoDesk, bsn: str, kind: str) -> list[str]:
    return [
        e.outcome for e in AuditLog(desk.stores.engine).for_patient(bsn) if e.event_type == kind
    ]


def test_refetch_asks_the_lsp_now_and_shows_the_new_answer(demo_desk: DemoDesk) -> None:
    client = _client(demo_desk)
    item, bsn = _pick(demo_desk, Status.NO_RECORDS)
    queries_before = len(_events(demo_desk, bsn, "lsp_query"))
    target = _post(client, f"/patienten/{item}/opnieuw-ophalen")
    assert target != f"/patienten/{item}"  # the patient's item in the re-fetch run
    page = client.get(target).text
    assert "Opnieuw opgehaald." in page
    assert len(_events(demo_desk, bsn, "lsp_query")) == queries_before + 1
    refetch = [
        e for e in AuditLog(demo_desk.stores.engine).for_patient(bsn) if e.event_type == "refetch"
    ]
    assert [e.outcome for e in refetch] == ["success"]
    assert refetch[0].user_id == "desk:demo"
    assert refetch[0].authorisation_basis == "demo-mandate"
    assert refetch[0].responsible_user_id  # the mandating specialist's UZI number


def test_objection_blocks_refetch_and_skipped_patients_are_not_asked(demo_desk: DemoDesk) -> None:
    client = _client(demo_desk)
    item, bsn = _pick(demo_desk, Status.NOT_REGISTERED)
    _post(client, f"/patienten/{item}/bezwaar")  # not confirmed: nothing recorded
    assert "vink de bevestiging aan" in client.get(f"/patienten/{item}").text
    _post(client, f"/patienten/{item}/bezwaar", bevestig="ja")
    page = client.get(f"/patienten/{item}").text
    assert "Bezwaar vastgelegd" in page
    assert "Nu opnieuw ophalen" not in page
    queries = len(_events(demo_desk, bsn, "lsp_query"))
    _post(client, f"/patienten/{item}/opnieuw-ophalen")
    assert "de patiënt heeft bezwaar gemaakt" in client.get(f"/patienten/{item}").text
    assert len(_events(demo_desk, bsn, "lsp_query")) == queries
    assert _events(demo_desk, bsn, "refetch") == ["denied"]
    assert _events(demo_desk, bsn, "consent_refused") == ["success"]
    # the objection is in the register the nightly run reads: the patient is skipped from now on
    assert demo_desk.stores.consent.refusing([bsn]) == {bsn}
    assert _events(demo_desk, bsn, "objection_recorded") == ["success"]
    skipped, _ = _pick(demo_desk, Status.SKIPPED)
    _post(client, f"/patienten/{skipped}/opnieuw-ophalen")
    assert "Opnieuw ophalen kan niet" in client.get(f"/patienten/{skipped}").text


def test_refetch_needs_a_mandate_on_the_account(demo_desk: DemoDesk) -> None:
    password = "zonder mandaat 123"
    DeskUserRepository(demo_desk.stores.engine).add(
        "zonder",
        display_name="Zonder Mandaat",
        role=DeskRole.ASSISTANT,
        password=password,
        mandate_id=None,
        now=dt.datetime.now(dt.UTC),
    )
    client = _client(demo_desk, "zonder", password)
    item, bsn = _pick(demo_desk, Status.FETCHED, n=1)
    _post(client, f"/patienten/{item}/opnieuw-ophalen")
    assert "uw account heeft geen mandaat" in client.get(f"/patienten/{item}").text
    assert _events(demo_desk, bsn, "refetch") == ["denied"]


def test_demo_hands_off_to_the_desk(demo_desk: DemoDesk) -> None:
    from prefetch.web.compose import demo_handoff

    url = str(demo_desk.stores.engine.url.render_as_string(hide_password=False))
    lines = demo_handoff(demo_desk.data_dir, url, demo_desk.clinic_day)
    assert lines[0] == (
        f"desk: http://127.0.0.1:8080/werklijst?dag={demo_desk.clinic_day.isoformat()}"
    )
    assert f"desk sign-in: demo / {demo_desk.password} " in lines[1]
    assert lines[2] == f"start the desk: prefetch desk --demo {demo_desk.data_dir}"
