"""Fan-out: one item per registration, NF outside the look-back, not-registered forms,
partial batches and regions. Every answer validates against the assembled schemas."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from lspsim_helpers import (
    REFERENCE_DATE,
    batch_of,
    dispense_ids,
    issue_code,
    items_of,
    make_params,
    response_code,
    source_ura,
    validate_batch,
)

from prefetch.domain.bsn import Bsn
from prefetch.hl7v3.dispense_read import read_dispense
from prefetch.lspsim.dispgen import dispense_day
from prefetch.lspsim.fanout import MessageIds, answer_query
from prefetch.lspsim.faults import QueryPlan
from prefetch.lspsim.profiles import BUILTIN, FailureForm, NotRegistered, Profile, Regions
from prefetch.lspsim.world import Registration, World

NOW = dt.datetime(2026, 11, 20, 18, 0, 5, tzinfo=dt.UTC)
NO_FAULT = QueryPlan(failure=None, delay_s=0.0)
HL7 = "{urn:hl7-org:v3}"


def _answer(
    world: World,
    bsn: Bsn,
    *,
    profile: Profile = BUILTIN["ideal"],
    plan: QueryPlan = NO_FAULT,
    since: dt.date | None = None,
):  # type: ignore[no-untyped-def]
    return answer_query(
        world=world,
        profile=profile,
        params=make_params(bsn, since=since),
        plan=plan,
        now=NOW,
        ids=MessageIds(),
    )


def test_one_item_per_registration_with_the_window_applied(world: World) -> None:
    since = REFERENCE_DATE - dt.timedelta(days=365)
    checked_nf = checked_ok = 0
    for patient in [p for p in world.patients if p.registrations][:40]:
        answer = _answer(world, patient.bsn, since=since)
        assert answer.status == 200
        batch = batch_of(answer.body)
        validate_batch(batch)
        items = items_of(batch)
        assert batch.find(f"{HL7}transmissionQuantity").get("value") == str(len(items))
        assert [source_ura(i) for i in items] == [r.pharmacy_ura for r in patient.registrations]
        for item, reg in zip(items, patient.registrations, strict=True):
            expected = [d for d in reg.dispenses if dispense_day(d) >= since]  # type: ignore[operator]
            assert dispense_ids(item) == [d.key for d in expected]
            if expected:
                checked_ok += 1
                assert response_code(item) == "OK"
                events = list(item.iter(f"{HL7}medicationDispenseEvent"))
                assert [read_dispense(e) for e in events] == expected
            else:
                checked_nf += 1
                assert response_code(item) == "NF"
        stored = [read_dispense(e) for e in batch.iter(f"{HL7}medicationDispenseEvent")]
        assert stored == world.dispenses_for(patient.bsn, since)
    assert checked_ok and checked_nf


def test_without_look_back_everything_is_sent(world: World) -> None:
    patient = next(p for p in world.patients if len(p.registrations) >= 2)
    answer = _answer(world, patient.bsn)
    assert answer.dispenses == len(world.dispenses_for(patient.bsn))


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (NotRegistered.EMPTY_BATCH, None),
        (NotRegistered.LSP_NF, ("NF", "NF")),
        (NotRegistered.KEY204, ("AE", "KEY204")),
    ],
)
def test_the_three_forms_of_not_registered(
    own_world: World, form: NotRegistered, expected: tuple[str, str] | None
) -> None:
    bsn = Bsn("111222333")
    own_world.add_patient(bsn, [])
    profile = dataclasses.replace(BUILTIN["ideal"], not_registered=form)
    answer = _answer(own_world, bsn, profile=profile)
    assert answer.outcome == "not_registered"
    batch = batch_of(answer.body)
    validate_batch(batch)
    items = items_of(batch)
    if expected is None:
        assert items == []
        assert batch.find(f"{HL7}transmissionQuantity").get("value") == "0"
        return
    (item,) = items
    assert response_code(item) == expected[0]
    assert issue_code(item) == expected[1]
    device_id = item.find(
        f"{HL7}ControlActProcess/{HL7}authorOrPerformer/{HL7}participant/{HL7}AssignedDevice/{HL7}id"
    )
    assert device_id.get("extension") == "1"  # authored by the LSP itself


def test_unknown_bsn_is_not_registered(world: World) -> None:
    assert _answer(world, Bsn("111222333")).outcome == "not_registered"


def test_timed_out_pharmacy_gives_a_partial_batch(own_world: World) -> None:
    a, b = own_world.pharmacies[:2]
    bsn = Bsn("111222333")
    own_world.add_patient(
        bsn,
        [
            Registration(a.ura, own_world.make_dispenses(a.ura, [REFERENCE_DATE])),
            Registration(b.ura, own_world.make_dispenses(b.ura, [REFERENCE_DATE])),
        ],
    )
    plan = QueryPlan(failure=None, delay_s=0.0, timed_out=frozenset({b.ura}))
    answer = _answer(own_world, bsn, plan=plan)
    assert answer.outcome == "partial"
    batch = batch_of(answer.body)
    validate_batch(batch)
    first, second = items_of(batch)
    assert response_code(first) == "OK"
    assert (response_code(second), issue_code(second)) == ("AE", "QABRTITI")
    assert answer.dispenses == 1


def test_regions_mode_refuses_pharmacies_outside_the_region(own_world: World) -> None:
    inside = next(p for p in own_world.pharmacies if p.region == 1)
    outside = next(p for p in own_world.pharmacies if p.region != 1)
    bsn = Bsn("111222333")
    own_world.add_patient(
        bsn,
        [
            Registration(inside.ura, own_world.make_dispenses(inside.ura, [REFERENCE_DATE])),
            Registration(outside.ura, own_world.make_dispenses(outside.ura, [REFERENCE_DATE])),
        ],
    )
    profile = dataclasses.replace(BUILTIN["ideal"], regions=Regions(enabled=True))
    answer = _answer(own_world, bsn, profile=profile)
    assert answer.outcome == "region_refused"
    batch = batch_of(answer.body)
    validate_batch(batch)
    ok, refused = items_of(batch)
    assert response_code(ok) == "OK"
    assert (response_code(refused), issue_code(refused)) == ("AE", "AUTERR_SWV_FALSE")
    assert outside.ura in refused.find(f".//{HL7}justifiedDetectedIssue/{HL7}code").get(
        "displayName"
    )


def test_failure_forms(world: World) -> None:
    patient = next(p for p in world.patients if p.registrations)
    results = {}
    for form in FailureForm:
        plan = QueryPlan(failure=form, delay_s=0.0, cut_fraction=0.5)
        results[form] = _answer(world, patient.bsn, plan=plan)
    assert results[FailureForm.HTTP_503].status == 503
    assert dict(results[FailureForm.HTTP_503].headers)["Retry-After"] == "2"
    assert results[FailureForm.SOAP_FAULT].status == 500
    assert b"Fault" in results[FailureForm.SOAP_FAULT].body
    assert results[FailureForm.CONNECTION_RESET].reset
    full = _answer(world, patient.bsn).body
    truncated = results[FailureForm.TRUNCATED_XML].body
    assert 0 < len(truncated) < len(full)
    from prefetch.errors import XmlSecurityError
    from prefetch.hl7v3.xmlparse import parse_xml

    for form in (FailureForm.TRUNCATED_XML, FailureForm.MALFORMED_XML):
        assert results[form].status == 200
        with pytest.raises(XmlSecurityError):
            parse_xml(results[form].body)
    qab = batch_of(results[FailureForm.QABRTITI].body)
    validate_batch(qab)
    assert [issue_code(i) for i in items_of(qab)] == ["QABRTITI"]


def test_answer_echoes_the_query(world: World) -> None:
    patient = next(p for p in world.patients if p.registrations)
    params = make_params(patient.bsn)
    answer = answer_query(
        world=world,
        profile=BUILTIN["ideal"],
        params=params,
        plan=NO_FAULT,
        now=NOW,
        ids=MessageIds(),
    )
    batch = batch_of(answer.body)
    target = batch.find(f"{HL7}acknowledgement/{HL7}targetTransmission/{HL7}id")
    assert target.get("extension") == params.message_id.extension
    receiver = batch.find(f"{HL7}receiver/{HL7}device/{HL7}id")
    assert receiver.get("extension") == params.sender_application_id
    for item in items_of(batch):
        qid = item.find(f"{HL7}ControlActProcess/{HL7}queryAck/{HL7}queryId")
        assert qid.get("extension") == params.query_id.extension
        bsn_el = item.find(f".//{HL7}Patient/{HL7}id")
        if bsn_el is not None:
            assert bsn_el.get("extension") == patient.bsn.value


def test_items_carry_patient_and_pharmacy_details_like_real_answers(world: World) -> None:
    patient = next(p for p in world.patients if world.dispenses_for(p.bsn))
    assert patient.demographics is not None
    batch = batch_of(_answer(world, patient.bsn).body)
    validate_batch(batch)
    item = next(i for i in items_of(batch) if response_code(i) == "OK")
    person = item.find(f".//{HL7}subject/{HL7}Patient/{HL7}Person")
    assert person is not None
    assert person.findtext(f"{HL7}name/{HL7}family") == patient.demographics.family
    assert person.findtext(f"{HL7}name/{HL7}family", "").startswith("XXX_")  # obviously fake
    gender = person.find(f"{HL7}administrativeGenderCode")
    assert gender is not None and gender.get("code") == patient.demographics.gender
    assert item.find(f".//{HL7}subject/{HL7}Patient/{HL7}addr") is not None
    device = item.find(f".//{HL7}authorOrPerformer/{HL7}participant/{HL7}AssignedDevice")
    assert device is not None
    software = device.findtext(f".//{HL7}assignedDevice/{HL7}softwareName")
    pharmacy = world.pharmacy(source_ura(item) or "")
    assert software == pharmacy.software_name and software
    org = device.find(f"{HL7}Organization")
    assert org is not None
    code = org.find(f"{HL7}code")
    assert code is not None and code.get("code") == "J8"
    telecom = org.find(f"{HL7}telecom")
    assert telecom is not None and pharmacy.application_id in (telecom.get("value") or "")
    assert org.findtext(f"{HL7}addr/{HL7}city") == pharmacy.city


def test_a_test_patient_without_demographics_still_gets_a_valid_answer(own_world: World) -> None:
    ura = own_world.pharmacies[0].ura
    bsn = Bsn("999911120")
    own_world.add_patient(bsn, [Registration(ura, own_world.make_dispenses(ura, [REFERENCE_DATE]))])
    batch = batch_of(_answer(own_world, bsn).body)
    validate_batch(batch)
    assert batch.find(f".//{HL7}Person") is None
