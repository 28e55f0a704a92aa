"""Our MP9 checks catch what the R4 models let through."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from prefetch.domain.coded import Code, Identifier, Quantity
from prefetch.domain.dispense import Dispense, DispenseProvenance, Product
from prefetch.fhir.checks import mp9_problems
from prefetch.fhir.mapping import dispense_resources

PROV = DispenseProvenance(
    pharmacy_ura="00063703",
    pharmacy_name="Apotheek Kuinre",
    source_application_id="10011427",
    source_system_uzi="000277280",
    batch_message_id="2.16.840.1.113883.2.4.6.6.1.1^b1",
    item_message_id="2.16.840.1.113883.2.4.6.6.10011427.1^i1",
    query_id="2.16.528.1.1007.3.3.12345678.2^q1",
    fetched_at=dt.datetime(2026, 11, 23, 1, tzinfo=dt.UTC),
    run_id="run-1",
    responsible_uzi="123456782",
    responsible_name="Dr. A. van Arts",
)


def mapped(**changes: Any) -> Any:
    dispense = Dispense(
        id=Identifier("2.16.840.1.113883.2.4.6.6.10011427.3", "d1"),
        status="completed",
        dispensed_on=dt.date(2026, 11, 1),
        quantity=Quantity(value=None),
        product=Product(code=Code(code="14294060", system="2.16.840.1.113883.2.4.4.8")),
        **changes,
    )
    return dispense_resources(dispense, PROV, "999900444")


def test_a_clean_mapping_passes() -> None:
    m = mapped()
    for r in (m.dispense, m.agreement, m.medication, m.provenance):
        assert mp9_problems(r) == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("category", "coding", 0, "code"), "422037009", "category must hold SNOMED 373784005"),
        (("status",), "done", "status 'done' not in the R4 value set"),
        (
            ("subject", "identifier", "system"),
            "urn:oid:2.16.840.1.113883.2.4.6.3",
            "subject not identified by BSN",
        ),
        (
            ("performer", 0, "actor", "identifier", "system"),
            "urn:oid:2.16.528.1.1007.3.3",
            "performer not identified by URA",
        ),
    ],
)
def test_checks_catch_what_the_models_accept(
    path: tuple[Any, ...], value: str, problem: str
) -> None:
    broken = copy.deepcopy(mapped().dispense)
    target = broken
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    get_fhir_model_class("MedicationDispense").model_validate(broken)  # R4B lets it through
    assert any(p.startswith(problem) for p in mp9_problems(broken))


def test_two_performers_and_a_handed_over_agreement_are_refused() -> None:
    m = mapped()
    two = copy.deepcopy(m.dispense)
    two["performer"] = two["performer"] * 2
    assert "more than one performer" in mp9_problems(two)
    ta = copy.deepcopy(m.agreement)
    ta["whenHandedOver"] = "2026-11-01"
    ta["status"] = "completed"
    assert "an administration agreement has status unknown" in mp9_problems(ta)
    assert "an administration agreement is not handed over" in mp9_problems(ta)


def test_medication_outside_the_g_standaard_is_refused() -> None:
    med = copy.deepcopy(mapped().medication)
    med["code"]["coding"][0]["system"] = "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert mp9_problems(med)[0].startswith("medication coded outside the G-Standaard")


def test_every_kind_of_simulated_dispense_maps_to_valid_resources() -> None:
    """300 simulator dispenses (magistral, free text, structured dosages, virtual ones
    without a hand-over date): every resource parses with R4B and passes our checks."""
    import random

    from fhir_helpers import assert_valid_resource

    from prefetch.lspsim.dispgen import PharmacyRef, make_dispense, random_prescriber

    rng = random.Random(7)
    pharmacies = [
        PharmacyRef(
            ura="00063703", dispense_root="2.16.528.1.1007.3.3.63703.3", pharmacist_uzi="1"
        ),
        PharmacyRef(
            ura="00056219",
            dispense_root="2.16.840.1.113883.2.4.3.33.1.4.1.272.3",
            pharmacist_uzi=None,
        ),
    ]
    seen = {"magistral": 0, "virtual": 0, "structured": 0}
    for serial in range(300):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(300))
        dispense = make_dispense(rng, pharmacies[serial % 2], random_prescriber(rng), day, serial)
        m = dispense_resources(dispense, PROV, "999900444")
        for resource in (m.dispense, m.agreement, m.medication, m.provenance):
            assert_valid_resource(resource)
        seen["magistral"] += "coding" not in m.medication.get("code", {})
        seen["virtual"] += "whenHandedOver" not in m.dispense
        seen["structured"] += any("timing" in d for d in m.agreement.get("dosageInstruction", []))
        if "whenHandedOver" not in m.dispense:
            period = next(
                e["valuePeriod"] for e in m.agreement["extension"] if "Period" in e["url"]
            )
            assert period["start"] == dispense.period_start.isoformat()  # type: ignore[union-attr]
    assert all(count > 0 for count in seen.values()), seen
