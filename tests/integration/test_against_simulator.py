"""The client, engine and store against the simulator over mutual TLS with token checks
(issue 5 acceptance 1-3): what the world holds is what the store holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from day_helpers import known_patients_day

from prefetch.composition import Stores, make_lsp_client, make_prefetcher, open_stores
from prefetch.demo.clinic_day import DayMix, clinic_day_csv
from prefetch.demo.setup import (
    demo_schedule,
    demo_settings,
    ensure_mandate,
    ensure_pki,
    start_simulator,
)
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Clinician, Mandate
from prefetch.domain.run import RunReport
from prefetch.lspsim.profiles import get_profile
from prefetch.lspsim.world import World
from prefetch.security.tokens import build_mandate_token
from prefetch.sources.csv_source import parse_appointments_csv

MIX = DayMix(
    known=70,
    unknown=5,
    no_bsn=2,
    invalid_bsn=2,
    unverified=2,
    refused=2,
    cancelled=2,
    telephone=2,
    two_clinics=5,
)


@dataclasses.dataclass
class DayRun:
    report: RunReport
    stores: Stores
    world: World
    clinic_day: dt.date
    look_back: dt.date
    stats: dict[str, object]


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("integration")
    ensure_pki(data_dir, key_size=2048)
    return data_dir


def run_day(
    data_dir: Path,
    db_dir: Path,
    profile_name: str,
    *,
    time_scale: float,
    world_seed: int = 11,
    pharmacy_timeout_s: float | None = None,
) -> Iterator[DayRun]:
    pki, passphrase = ensure_pki(data_dir, key_size=2048)
    world = World.generate(world_seed, 100)
    now = dt.datetime.now(dt.UTC)
    clinic_day = now.astimezone(AMSTERDAM).date() + dt.timedelta(days=1)
    appointments = parse_appointments_csv(
        clinic_day_csv([p.bsn for p in world.patients], clinic_day, seed=3, mix=MIX)
    )
    profile = get_profile(profile_name).with_time_scale(time_scale)
    if pharmacy_timeout_s is not None:
        latency = dataclasses.replace(profile.latency, pharmacy_timeout_s=pharmacy_timeout_s)
        profile = dataclasses.replace(profile, latency=latency)
    schedule = demo_schedule(pki)
    with start_simulator(world, profile, pki, passphrase) as sim:
        settings = demo_settings(data_dir, pki, sim, profile)
        settings = dataclasses.replace(settings, data_dir=str(db_dir))
        stores = open_stores(settings)
        mandate = ensure_mandate(stores, pki, passphrase, schedule, now)
        client = make_lsp_client(settings, pki.hospital.load(passphrase))
        prefetcher = make_prefetcher(settings, stores, client)
        prepared = prefetcher.prepare(schedule, clinic_day, appointments, mandate=mandate)
        report = prefetcher.execute(prepared.run_id, schedule, mandate, clinic_day=clinic_day)
        yield DayRun(
            report,
            stores,
            world,
            clinic_day,
            schedule.look_back_from(clinic_day, settings.lsp.look_back_days),
            sim.stats(),
        )
    stores.engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("pharmacy_timeout_s", [None, 4.0], ids=["realistic", "slow-pharmacies"])
def test_realistic_day_store_equals_world(
    pki_dir: Path, tmp_path: Path, pharmacy_timeout_s: float | None
) -> None:
    """With slow pharmacies (a 4 s LSP time-out instead of 20 s) many batches are partial:
    what came is stored and the missing pharmacies are asked again, so the store still
    ends up equal to the world."""
    for day in run_day(
        pki_dir, tmp_path, "realistic", time_scale=0.02, pharmacy_timeout_s=pharmacy_timeout_s
    ):
        summary = day.report.summary
        assert day.report.stopped is None
        assert summary.by_outcome.get("records", 0) > 20
        assert summary.by_outcome.get("no_registrations", 0) > 3
        assert day.stats["violations"] == {"rate": 0, "concurrency": 0, "total": 0}
        assert day.stats["signature_failures"] == 0
        by_outcome = day.stats["by_outcome"]
        assert isinstance(by_outcome, dict)
        if pharmacy_timeout_s is not None:
            assert by_outcome["partial"] >= 3, by_outcome
        compared = 0
        for item in day.stores.runs.items(day.report.summary.run_id):
            if item.outcome_kind not in ("records", "no_records", "no_registrations"):
                continue
            assert item.bsn is not None
            want = {d.key: d for d in day.world.dispenses_for(item.bsn, day.look_back)}
            got = {s.dispense.key: s.dispense for s in day.stores.dispenses.for_patient(item.bsn)}
            assert got.keys() == want.keys(), item.patient_local_id
            for key, dispense in want.items():
                assert got[key].to_json() == dispense.to_json()  # field by field
            compared += len(want)
        assert compared > 100


@pytest.mark.slow
def test_flaky_every_patient_fetched_or_failed_with_reason(pki_dir: Path, tmp_path: Path) -> None:
    for day in run_day(pki_dir, tmp_path, "flaky", time_scale=0.02):
        items = day.stores.runs.items(day.report.summary.run_id)
        queried = [i for i in items if i.skip_reason is None]
        assert queried
        for item in queried:
            assert item.state.value in ("done", "failed"), item.state
            if item.state.value == "failed":
                assert item.outcome_code, "a failure names the LSP's reason"
        by_code = day.stats["by_outcome"]
        assert isinstance(by_code, dict)
        assert day.report.summary.by_state.get("pending", 0) == 0
        # Every patient the world knows with dispenses in the window ended with records
        # (retries got through) or failed with a reason - never "no records".
        for item in queried:
            patient = day.world.patient(item.bsn or "")
            if patient and day.world.dispenses_for(patient.bsn, day.look_back):
                assert item.outcome_kind in ("records", "failed"), item.outcome_kind


@pytest.mark.slow
def test_mandate_by_another_clinician_refused_and_nothing_stored(
    pki_dir: Path, tmp_path: Path
) -> None:
    """The LSP refuses the token (signed by the assistant, not the overseer): the run stops
    at the first refusal and not a single dispense is stored."""
    pki, passphrase = ensure_pki(pki_dir, key_size=2048)
    world = World.generate(5, 30)
    now = dt.datetime.now(dt.UTC)
    clinic_day, appointments = known_patients_day(world, 20, seed=1)
    profile = get_profile("ideal")
    schedule = demo_schedule(pki)
    # The assistant signs a mandate with their own pass; the forger then presents it as
    # the overseer's (our own tools refuse to sign in another's name).
    assistant = pki.assistant
    own = Mandate(
        id="forged",
        mandating=Clinician(
            assistant.uzi_number or "",
            assistant.role or "",
            assistant.display_name,
            pki.hospital_ura,
        ),
        mandated_id=pki.hospital.uzi_number or "",
        schedules=frozenset({schedule.id}),
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=1),
    )
    token = build_mandate_token(own, assistant.load(passphrase), now=now)
    mandate = dataclasses.replace(own, mandating=schedule.overseer, token_xml=token)
    with start_simulator(world, profile, pki, passphrase) as sim:
        settings = dataclasses.replace(
            demo_settings(pki_dir, pki, sim, profile), data_dir=str(tmp_path)
        )
        stores = open_stores(settings)
        prefetcher = make_prefetcher(
            settings, stores, make_lsp_client(settings, pki.hospital.load(passphrase))
        )
        prepared = prefetcher.prepare(schedule, clinic_day, appointments, mandate=mandate)
        assert prepared.to_query == 20
        report = prefetcher.execute(prepared.run_id, schedule, mandate, clinic_day=clinic_day)
        stats = sim.stats()
    assert report.stopped is not None
    assert stores.dispenses.count() == 0
    assert stats["signature_failures"] >= 1
    assert set(stats["signature_failure_reasons"]) == {"mandate_wrong_issuer"}
    assert report.summary.by_state.get("pending", 0) > 0  # the run stopped, nothing hammered
    stores.engine.dispose()
