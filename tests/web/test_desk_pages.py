"""The desk's pages through HTTP (TestClient) on a seeded clinic day in the real store."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from desk_helpers import BSNS, DAY, SeededDay
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Engine

from prefetch.store.audit import AuditLog


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", r) for r in body.split("<tr>")[1:]]


def test_worklist_shows_one_row_per_patient_with_status_in_words(
    client_as: Callable[[str], TestClient],
) -> None:
    page = client_as("anna").get(f"/werklijst?dag={DAY.isoformat()}")
    assert page.status_code == 200
    html = page.text
    rows = _rows(html)
    assert len(rows) == 8
    text = " ".join(rows)
    assert "Opgehaald: 3 verstrekkingen" in text
    assert "Geen gegevens" in text
    assert "Niet aangemeld bij LSP" in text
    assert "Overgeslagen: patiënt heeft bezwaar gemaakt" in text
    assert "Overgeslagen: geen BSN bekend" in text
    assert "Mislukt: na" in text
    assert "Wachtend: nieuwe poging volgt" in text
    # the run is still running: progress, not "complete"
    assert "Bezig: 5 van 6 patiënten verwerkt" in html
    assert '<progress id="voortgang" max="6" value="5">' in html
    # no BSN anywhere on the worklist
    assert not any(b in html for b in BSNS[:10])


def test_worklist_filters_by_poli_and_status_with_counts(
    client_as: Callable[[str], TestClient],
) -> None:
    client = client_as("anna")
    by_poli = _rows(client.get(f"/werklijst?dag={DAY.isoformat()}&poli=INT").text)
    assert len(by_poli) == 4  # P3, P5, P6 (CARD+INT), P8
    fetched = client.get(f"/werklijst?dag={DAY.isoformat()}&status=opgehaald").text
    rows = _rows(fetched)
    assert len(rows) == 2
    assert all("Opgehaald" in r for r in rows)
    assert "Totaal: <strong>8</strong>" in fetched
    assert "Wachtend (1)" in fetched


def test_a_finished_run_with_failures_is_incomplete(
    desk_engine: Engine, seeded: SeededDay, client_as: Callable[[str], TestClient]
) -> None:
    from desk_helpers import NOW

    from prefetch.store.runs import RunRepository

    RunRepository(desk_engine).finish_run(seeded.run_id, NOW)
    html = client_as("anna").get(f"/werklijst?dag={DAY.isoformat()}").text
    assert "Onvolledig: 2 van 6 patiënten zonder definitief antwoord" in html


def test_patient_page_groups_dispenses_and_marks_the_external_source(
    client_as: Callable[[str], TestClient], seeded: SeededDay
) -> None:
    html = client_as("anna").get(f"/patienten/{seeded.items['P1']}").text
    assert "Externe bron" in html
    assert "Ouderdom gegevens</dt><dd>23 uur" in html.replace("\n", "")
    # two medicines; metoprolol's older dispense folded, latest first
    assert html.count('<article class="med card"') == 2
    assert html.index("OMEPRAZOL") < html.index("METOPROLOL")  # latest medicine first
    assert "Eerdere verstrekkingen (1)" in html
    assert "ZI 12345678" in html
    assert "1 maal per dag 1 tablet" in html
    assert "Apotheek Centrum" in html
    assert "Apotheek Noord" in html


def test_a_pharmacy_that_did_not_answer_is_shown(
    client_as: Callable[[str], TestClient], seeded: SeededDay
) -> None:
    html = client_as("anna").get(f"/patienten/{seeded.items['P7']}").text
    assert "Niet geantwoord" in html
    assert "Apotheek De Brug" in html


def test_opening_a_patient_page_writes_an_audit_row(
    desk_engine: Engine, client_as: Callable[[str], TestClient], seeded: SeededDay
) -> None:
    client_as("anna").get(f"/patienten/{seeded.items['P2']}")
    views = [e for e in AuditLog(desk_engine).for_patient(BSNS[1]) if e.event_type == "record_view"]
    assert len(views) == 1
    view = views[0]
    assert view.user_id == "desk:anna"
    assert view.user_role == "assistant"
    assert view.authorisation_basis == "m1" or view.authorisation_basis is None
    assert view.action.value == "R"


def test_audit_view_and_exports(client_as: Callable[[str], TestClient], seeded: SeededDay) -> None:
    client = client_as("piet")
    item = seeded.items["P1"]
    client.get(f"/patienten/{item}")
    html = client.get(f"/patienten/{item}/audit").text
    assert "medicatie opgevraagd bij het LSP" in html
    assert "patiëntpagina bekeken" in html
    assert "piet" in html
    exported = client.get(f"/patienten/{item}/audit.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert {line["event_type"] for line in lines} >= {"lsp_query", "record_view", "audit_view"}
    assert any(line["user_id"] == "desk:piet" for line in lines)
    bundle = client.get(f"/patienten/{item}/audit.json").json()
    assert bundle["resourceType"] == "Bundle"
    Bundle.model_validate(bundle)  # a valid R4 Bundle of valid AuditEvents
    events = [e["resource"] for e in bundle["entry"]]
    assert all(r["resourceType"] == "AuditEvent" for r in events)
    query = next(r for r in events if r["subtype"][0]["code"] == "lsp_query")
    assert query["entity"][0]["what"]["identifier"] == {
        "system": "http://fhir.nl/fhir/NamingSystem/bsn",
        "value": BSNS[0],
    }
    assert query["agent"][1]["who"]["identifier"]["value"] == "900000011"  # responsible


def test_unknown_patient_is_404(client_as: Callable[[str], TestClient]) -> None:
    assert client_as("anna").get("/patienten/999999").status_code == 404
