"""The FHIR API for the EPD, through FastAPI's TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir_helpers import assert_valid_bundle
from fhir_store import store_answer
from lxml import etree
from reference import shared_path
from sqlalchemy import Engine

from prefetch.clock import FakeClock
from prefetch.fhir.convert import convert_answer
from prefetch.store.api_tokens import ApiTokens
from prefetch.store.audit import AuditLog
from prefetch.web.fhir_api import fhir_router

ANSWER = shared_path("hl7v3", "examples", "official", "QURX_EX990113NL_01.xml")
BSN = "012345672"  # the patient of the official example
OTHER_BSN = "999900444"
NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
PATIENT = f"{BSN_SYSTEM}|{BSN}"


@pytest.fixture
def api(migrated_engine: Engine) -> Iterator[tuple[TestClient, str, Engine]]:
    stored = store_answer(migrated_engine, ANSWER, BSN)
    assert stored == 23
    token = ApiTokens(migrated_engine).create("epd-test", now=NOW)
    assert token is not None
    app = FastAPI()
    app.include_router(fhir_router(migrated_engine, clock=FakeClock(NOW)))
    with TestClient(app) as client:
        yield client, token, migrated_engine


def get(client: TestClient, token: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/fhir/MedicationDispense", params=params, headers=headers)


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == mode]


def test_search_answers_a_valid_searchset_with_dispenses_and_agreements(
    api: tuple[TestClient, str, Engine],
) -> None:
    client, token, _ = api
    answer = get(client, token, **{"patient.identifier": PATIENT})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 46  # 23 dispenses, 23 administration agreements
    assert_valid_bundle(bundle)
    # The same resources as `prefetch fhir convert` makes of the same answer.
    _, mapped = convert_answer(ANSWER.read_bytes(), now=NOW)
    want = {m.dispense["id"] for m in mapped} | {m.agreement["id"] for m in mapped}
    assert set(ids(bundle)) == want
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    for m in mapped:
        served = by_id[m.dispense["id"]]
        assert {k: v for k, v in served.items() if k != "meta"} == {
            k: v for k, v in m.dispense.items() if k != "meta"
        }


def test_category_include_and_revinclude(api: tuple[TestClient, str, Engine]) -> None:
    client, token, _ = api
    answer = get(
        client,
        token,
        **{
            "patient.identifier": PATIENT,
            "category": "http://snomed.info/sct|373784005",
            "_include": "MedicationDispense:medication",
            "_revinclude": "Provenance:target",
        },
    )
    bundle = answer.json()
    assert_valid_bundle(bundle)
    assert bundle["total"] == 23
    assert all(i.startswith("mve-") for i in ids(bundle))
    included = ids(bundle, "include")
    referenced = {
        e["resource"]["medicationReference"]["reference"].removeprefix("Medication/")
        for e in bundle["entry"]
        if e["search"]["mode"] == "match"
    }
    assert {i for i in included if i.startswith("med-")} == referenced
    assert len([i for i in included if i.startswith("prov-")]) == 23
    agreements = get(client, token, **{"patient.identifier": PATIENT, "category": "422037009"})
    assert agreements.json()["total"] == 23
    assert all(i.startswith("ta-") for i in ids(agreements.json()))


def xml_hand_over_days() -> list[dt.date]:
    """effectiveTime/@value of every dispense in the answer, read with plain XPath."""
    root = etree.fromstring(ANSWER.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    values = root.xpath(
        "//h:medicationDispenseEvent/h:effectiveTime/@value", namespaces={"h": "urn:hl7-org:v3"}
    )
    return [dt.date(int(v[:4]), int(v[4:6]), int(v[6:8])) for v in values]


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        (["ge2016-01-01"], lambda d: d >= dt.date(2016, 1, 1)),
        (["lt2016"], lambda d: d < dt.date(2016, 1, 1)),
        (["2005-01-28"], lambda d: d == dt.date(2005, 1, 28)),
        (["ne2005-01-28"], lambda d: d != dt.date(2005, 1, 28)),
        (["ge2005-06", "lt2005-07"], lambda d: (d.year, d.month) == (2005, 6)),
        (["gt2005-06", "le2019"], lambda d: dt.date(2005, 7, 1) <= d < dt.date(2020, 1, 1)),
    ],
)
def test_whenhandedover(
    api: tuple[TestClient, str, Engine], when: list[str], rule: Callable[[dt.date], bool]
) -> None:
    client, token, _ = api
    params: list[tuple[str, str]] = [("patient.identifier", PATIENT)]
    params += [("whenhandedover", w) for w in when]
    answer = client.get(
        "/fhir/MedicationDispense", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    bundle = answer.json()
    assert all(i.startswith("mve-") for i in ids(bundle))  # agreements have no hand-over
    want = [d for d in xml_hand_over_days() if rule(d)]
    assert 0 < len(want) < 23  # the filter does filter
    served = sorted(dt.date.fromisoformat(e["resource"]["whenHandedOver"]) for e in bundle["entry"])
    assert served == sorted(want)
    assert bundle["total"] == len(want)


def test_every_search_is_audited_under_the_token_name(api: tuple[TestClient, str, Engine]) -> None:
    client, token, engine = api
    get(client, token, **{"patient.identifier": PATIENT, "category": "373784005"})
    get(client, token, **{"patient.identifier": f"{BSN_SYSTEM}|{OTHER_BSN}"})
    get(client, None, **{"patient.identifier": PATIENT})  # refused: not a read
    [event] = AuditLog(engine).for_patient(BSN)
    assert (event.user_id, event.event_type, event.action.value) == ("epd-test", "fhir_search", "R")
    assert event.occurred_at == NOW
    assert event.object_detail["matches"] == 23
    assert event.object_detail["category"] == "373784005"
    assert event.object_detail["whenhandedover"] is None
    [other] = AuditLog(engine).for_patient(OTHER_BSN)  # nothing found is still a read
    assert other.object_detail["matches"] == 0


def test_without_a_valid_token_401(api: tuple[TestClient, str, Engine]) -> None:
    client, token, engine = api
    for headers in (
        {},
        {"Authorization": "Bearer pft_nonsense"},
        {"Authorization": f"Basic {token}"},
    ):
        answer = client.get(
            "/fhir/MedicationDispense", params={"patient.identifier": PATIENT}, headers=headers
        )
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert get(client, token, **{"patient.identifier": PATIENT}).status_code == 200
    assert ApiTokens(engine).revoke("epd-test", now=NOW)
    assert get(client, token, **{"patient.identifier": PATIENT}).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"patient.identifier": BSN},
        {"patient.identifier": f"urn:oid:2.16.840.1.113883.2.4.6.3|{BSN}"},
        {"patient.identifier": f"{BSN_SYSTEM}|012345671"},  # fails the 11-check
        {"patient.identifier": PATIENT, "patient": "x"},
        {"patient.identifier": PATIENT, "_include": "MedicationDispense:performer"},
        {"patient.identifier": PATIENT, "whenhandedover": "yesterday"},
        {"patient.identifier": PATIENT, "_format": "xml"},
    ],
)
def test_bad_searches_400_without_patient_data(
    api: tuple[TestClient, str, Engine], params: dict[str, str]
) -> None:
    client, token, engine = api
    answer = get(client, token, **params)
    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert BSN not in answer.text and "012345671" not in answer.text
    assert AuditLog(engine).for_patient(BSN) == []


def test_metadata_needs_no_token(api: tuple[TestClient, str, Engine]) -> None:
    client, _, _ = api
    answer = client.get("/fhir/metadata")
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "CapabilityStatement"
