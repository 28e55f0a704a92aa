"""The seeded world: determinism, BSNs, registrations, dispenses, persistence."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from lspsim_helpers import REFERENCE_DATE
from stdnum.nl import bsn as stdnum_bsn

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn, passes_eleven_check
from prefetch.errors import ConfigError
from prefetch.hl7v3 import schema
from prefetch.hl7v3.dispense_read import read_dispense
from prefetch.hl7v3.dispense_xml import build_dispense_event
from prefetch.hl7v3.xmlbuild import root_element
from prefetch.lspsim.derived import MAX_DERIVED
from prefetch.lspsim.dispgen import dispense_day
from prefetch.lspsim.world import MAX_PATIENTS, Registration, World


def test_same_seed_same_world_and_other_seed_other_world() -> None:
    a = World.generate(7, 50, reference_date=REFERENCE_DATE)
    b = World.generate(7, 50, reference_date=REFERENCE_DATE)
    c = World.generate(8, 50, reference_date=REFERENCE_DATE)
    assert a.to_json() == b.to_json()
    assert a.to_json() != c.to_json()


def test_bsns_are_valid_unique_and_in_the_test_range(world: World) -> None:
    values = [p.bsn.value for p in world.patients]
    assert len(values) == len(set(values)) == 160
    for value in values:
        assert stdnum_bsn.is_valid(value)
        assert value.startswith("999")


def test_about_three_quarters_registered_by_one_to_three_pharmacies(world: World) -> None:
    counts = Counter(len(p.registrations) for p in world.patients)
    assert set(counts) <= {0, 1, 2, 3}
    registered = sum(v for k, v in counts.items() if k > 0) / len(world.patients)
    assert 0.62 <= registered <= 0.88
    for patient in world.patients:
        uras = [r.pharmacy_ura for r in patient.registrations]
        assert len(uras) == len(set(uras))


def test_pharmacies_have_identities_and_own_id_roots(world: World) -> None:
    pharmacies = world.pharmacies
    assert len({p.ura for p in pharmacies}) == len(pharmacies)
    for p in pharmacies:
        assert len(p.ura) == 8 and p.ura.isdigit()
        assert len(p.system_uzi) == 9 and p.application_id.isdigit()
        assert p.name
    dispenses = [d for p in world.patients for r in p.registrations for d in r.dispenses]
    keys = [d.key for d in dispenses]
    assert len(keys) == len(set(keys)), "dispense ids must be globally unique"
    for patient in world.patients:
        for reg in patient.registrations:
            root = world.pharmacy(reg.pharmacy_ura).dispense_root
            assert all(d.id.root == root for d in reg.dispenses)
            assert all(d.pharmacy_ura == reg.pharmacy_ura for d in reg.dispenses)


def test_dispenses_are_realistic(world: World) -> None:
    dispenses = [d for p in world.patients for r in p.registrations for d in r.dispenses]
    assert len(dispenses) > 300
    days = [dispense_day(d) for d in dispenses]
    assert all(day is not None for day in days)
    assert min(d for d in days if d) >= REFERENCE_DATE - dt.timedelta(days=730)
    assert max(d for d in days if d) <= REFERENCE_DATE
    zi = [d for d in dispenses if d.product and d.product.code.system == oids.ZI_NUMBER]
    magistral = [d for d in dispenses if d.product and d.product.ingredients]
    assert len(zi) > 0.8 * len(dispenses)
    assert magistral and all(d.product and d.product.code.null_flavor == "OTH" for d in magistral)
    assert any(d.product and d.product.code_in(oids.GPK) for d in zi)
    assert any(d.product and d.product.code_in(oids.PRK) for d in zi)
    performer_nulls = {d.performer.ids[0].null_flavor for d in dispenses if d.performer}
    assert {"UNK", "MSK"} <= performer_nulls
    prescribers = [d.prescriber for d in dispenses if d.prescriber]
    assert any(p.id_in(oids.UZI_PERSON) and p.id_in(oids.AGB) for p in prescribers)
    assert any(p.ids[0].null_flavor == "UNK" for p in prescribers)
    assert any(d.dosages and d.dosages[0].timing for d in dispenses)
    assert any(d.period_start and d.dispensed_on is None for d in dispenses)


def test_some_registrations_have_nothing_in_a_one_year_window(world: World) -> None:
    since = REFERENCE_DATE - dt.timedelta(days=365)
    regs = [r for p in world.patients for r in p.registrations]
    empty = [r for r in regs if not any(dispense_day(d) >= since for d in r.dispenses)]  # type: ignore[operator]
    assert 0.05 * len(regs) <= len(empty) <= 0.5 * len(regs)


def test_dispenses_for_honours_the_look_back(world: World) -> None:
    patient = max(world.patients, key=lambda p: sum(len(r.dispenses) for r in p.registrations))
    everything = world.dispenses_for(patient.bsn)
    since = REFERENCE_DATE - dt.timedelta(days=200)
    recent = world.dispenses_for(patient.bsn, since)
    assert len(everything) == sum(len(r.dispenses) for r in patient.registrations)
    assert recent == [d for d in everything if dispense_day(d) >= since]  # type: ignore[operator]
    assert world.dispenses_for(Bsn("111222333")) == []


def test_every_generated_dispense_validates_and_reads_back_equal(world: World) -> None:
    for patient in world.patients[:60]:
        for dispense in world.dispenses_for(patient.bsn):
            parent = root_element("component")
            event = build_dispense_event(parent, dispense)
            schema.validate_dispense_event(event)
            assert read_dispense(event) == dispense


def test_save_and_load_round_trip(tmp_path: Path, own_world: World) -> None:
    path = tmp_path / "world.json"
    own_world.save(path)
    loaded = World.load(path)
    assert loaded.to_json() == own_world.to_json()
    assert loaded.reference_date == own_world.reference_date
    first = own_world.patients[0]
    assert loaded.dispenses_for(first.bsn) == own_world.dispenses_for(first.bsn)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(ConfigError):
        World.load(path)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ConfigError):
        World.load(path)


def test_add_patient_with_own_registrations(own_world: World) -> None:
    pharmacy = own_world.pharmacies[0]
    dispenses = own_world.make_dispenses(
        pharmacy.ura,
        [REFERENCE_DATE - dt.timedelta(days=3), REFERENCE_DATE - dt.timedelta(days=400)],
    )
    bsn = Bsn("111222333")
    own_world.add_patient(bsn, [Registration(pharmacy.ura, dispenses)])
    assert own_world.dispenses_for(bsn) == list(dispenses)
    assert own_world.dispenses_for(bsn, REFERENCE_DATE - dt.timedelta(days=30)) == [dispenses[0]]
    with pytest.raises(ConfigError):
        own_world.add_patient(Bsn("111222333"), [Registration("00000000")])


@pytest.mark.parametrize("count", [-1, MAX_DERIVED + 1])
def test_patient_count_is_bounded(count: int) -> None:
    with pytest.raises(ConfigError):
        World.generate(1, count, reference_date=REFERENCE_DATE)


def test_a_big_world_derives_its_patients_when_asked(tmp_path: Path) -> None:
    count = MAX_PATIENTS + 1
    world = World.generate(7, count, reference_date=REFERENCE_DATE)
    bsns = list(world.bsns())
    assert len(bsns) == len(set(bsns)) == count
    assert all(passes_eleven_check(b.value) for b in bsns[:1000] + bsns[-1000:])
    assert not any(b.value.startswith("999") for b in bsns)  # apart from generated worlds
    # The same patient whatever the order of asking, in this world and in a loaded copy.
    last, first = world.patient(bsns[-1]), world.patient(bsns[0])
    path = tmp_path / "big.json"
    world.save(path)
    assert path.stat().st_size < 200_000  # the count is saved, not the patients
    loaded = World.load(path)
    assert loaded.patient(bsns[0]) == first and loaded.patient(bsns[-1]) == last
    again = World.generate(7, count, reference_date=REFERENCE_DATE)
    assert again.patient(bsns[12345]) == world.patient(bsns[12345])
    small = World.derive(7, 300, reference_date=REFERENCE_DATE)  # derived at any size
    assert small.pharmacies == World.generate(7, 300, reference_date=REFERENCE_DATE).pharmacies
    found = small.patient(bsns[0])
    assert len(list(small.bsns())) == 300 and found is not None and found.bsn == bsns[0]
    # Outside the world: the next valid BSN after the last, and any 999 number.
    beyond = next(
        f"{h:08d}{d}"
        for h in range(int(bsns[-1].value[:8]) + 1, 10**8)
        for d in range(10)
        if passes_eleven_check(f"{h:08d}{d}")
    )
    assert world.patient(beyond) is None and world.patient("999990019") is None
    # About 75% registered; dispense ids unique across patients of one pharmacy.
    sample = [world.patient(b) for b in bsns[:2000]]
    registered = sum(1 for p in sample if p is not None and p.registrations)
    assert 0.70 < registered / len(sample) < 0.80
    keys = [d.key for p in sample if p is not None for r in p.registrations for d in r.dispenses]
    assert len(keys) == len(set(keys)) > 0
    # An added patient is found first.
    world.add_patient(bsns[5], [])
    assert world.patient(bsns[5]) is not None and not world.patient(bsns[5]).registrations  # type: ignore[union-attr]


def test_dose_ranges_and_nested_schedules_occur_and_read_back(world: World) -> None:
    ranges = cycles = 0
    for patient in world.patients:
        for dispense in world.dispenses_for(patient.bsn):
            for dosage in dispense.dosages:
                if dosage.dose is not None and dosage.dose.low is not None:
                    assert dosage.dose.high is not None and dosage.dose.center is None
                    ranges += 1
                for timing in dosage.timing:
                    if any(c.kind == "SXPR" for c in timing.components):
                        cycles += 1
            if any(
                (d.dose is not None and d.dose.low is not None)
                or any(c.kind == "SXPR" for t in d.timing for c in t.components)
                for d in dispense.dosages
            ):
                event = build_dispense_event(root_element("component"), dispense)
                schema.validate_dispense_event(event)
                assert read_dispense(event) == dispense
    assert ranges >= 3 and cycles >= 3


def test_patients_have_synthetic_demographics_and_pharmacies_details(world: World) -> None:
    people = [p.demographics for p in world.patients]
    assert all(d is not None and d.family.startswith("XXX_") for d in people)
    assert {d.gender for d in people if d} >= {"F", "M"}
    assert all(d.birth_date < REFERENCE_DATE for d in people if d)
    assert all(p.city and p.kind_code == "J8" and p.software_name for p in world.pharmacies)


def test_demographics_survive_save_and_load(tmp_path: Path, own_world: World) -> None:
    own_world.save(tmp_path / "w.json")
    loaded = World.load(tmp_path / "w.json")
    assert [p.demographics for p in loaded.patients] == [p.demographics for p in own_world.patients]
    assert loaded.pharmacies == own_world.pharmacies
