"""The simulated referral index: pharmacies, patients, registrations and dispenses.

A `World` is generated from a seed with `random.Random(seed)` only, so the same seed,
patient count and reference date give the same world, byte for byte in `save()`.
BSNs are drawn from the 999xxxxxx range used for test patients (as 999900444 in the
examples) and pass the 11-check. About 75% of patients are registered by one to three
pharmacies; the rest have no registration (no opt-in). Some registrations hold only old
dispenses, so that a look-back window yields `NF` for that pharmacy.

`dispenses_for(bsn, since)` is what a perfect client must end up storing for a patient.
A world of more than `MAX_PATIENTS` patients derives them on demand (`lspsim.derived`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prefetch.domain.bsn import Bsn
from prefetch.domain.dispense import Dispense, dispense_from_json
from prefetch.errors import ConfigError
from prefetch.lspsim.derived import MAX_DERIVED, DerivedPatients
from prefetch.lspsim.dispgen import in_window, make_dispense, random_prescriber
from prefetch.lspsim.worldgen import (
    REGISTERED_SHARE,
    Demographics,
    Pharmacy,
    Registration,
    WorldPatient,
    make_demographics,
    make_pharmacies,
    make_registration,
    random_bsn,
)

__all__ = [
    "FORMAT",
    "MAX_PATIENTS",
    "Demographics",
    "Pharmacy",
    "Registration",
    "World",
    "WorldPatient",
]

FORMAT = "prefetch-lspsim-world/1"
MAX_PATIENTS = 50_000  # generated up front; the 999xxxxxx range holds about 90,000 BSNs


class World:
    """Pharmacies and patients. Thread-safe for reads while tests add patients."""

    def __init__(
        self,
        *,
        seed: int,
        reference_date: dt.date,
        pharmacies: Iterable[Pharmacy],
        patients: Iterable[WorldPatient] = (),
        derived: int = 0,
    ):
        """`derived`: that many more patients, derived from the seed when asked for."""
        self.seed = seed
        self.reference_date = reference_date
        self._pharmacies = {p.ura: p for p in pharmacies}
        self._patients: dict[str, WorldPatient] = {}
        self._lock = threading.Lock()
        self._test_serial = 5_000_000
        for patient in patients:
            self._put(patient)
        if not 0 <= derived <= MAX_DERIVED:
            raise ConfigError("patient count out of range", patients=derived, maximum=MAX_DERIVED)
        self._derived = (
            DerivedPatients(seed, derived, reference_date, tuple(self._pharmacies.values()))
            if derived
            else None
        )

    # ------------------------------------------------------------------ reading
    @property
    def pharmacies(self) -> tuple[Pharmacy, ...]:
        return tuple(self._pharmacies.values())

    @property
    def patients(self) -> tuple[WorldPatient, ...]:
        """Every patient (a derived world computes them all: prefer `bsns()`)."""
        derived = self._derived
        more = (derived.patient(b) for b in derived.bsns()) if derived is not None else ()
        return (*self._patients.values(), *(p for p in more if p is not None))

    def bsns(self) -> Iterator[Bsn]:
        """Every patient's BSN, without computing the patients."""
        yield from (p.bsn for p in tuple(self._patients.values()))
        if self._derived is not None:
            yield from (Bsn(b) for b in self._derived.bsns() if b not in self._patients)

    def pharmacy(self, ura: str) -> Pharmacy:
        return self._pharmacies[ura]

    def patient(self, bsn: Bsn | str) -> WorldPatient | None:
        """The patient with this BSN, or None when the index does not know them."""
        value = bsn.value if isinstance(bsn, Bsn) else bsn
        found = self._patients.get(value)
        if found is None and self._derived is not None:
            return self._derived.patient(value)
        return found

    def dispenses_for(
        self, bsn: Bsn, since: dt.date | None = None, *, pharmacies: Collection[str] | None = None
    ) -> list[Dispense]:
        """Every dispense a perfect client stores for `bsn` with look-back `since`.

        `pharmacies` restricts to those URAs (e.g. the client's region in regions mode).
        """
        patient = self.patient(bsn)
        if patient is None:
            return []
        return [
            d
            for reg in patient.registrations
            if pharmacies is None or reg.pharmacy_ura in pharmacies
            for d in reg.dispenses
            if in_window(d, since)
        ]

    # ------------------------------------------------------------------ writing
    def _put(self, patient: WorldPatient) -> None:
        for reg in patient.registrations:
            if reg.pharmacy_ura not in self._pharmacies:
                raise ConfigError("registration names an unknown pharmacy", ura=reg.pharmacy_ura)
        with self._lock:
            self._patients[patient.bsn.value] = patient

    def add_patient(self, bsn: Bsn, registrations: Sequence[Registration] = ()) -> WorldPatient:
        """Add (or replace) a patient; an empty `registrations` means not in the index."""
        patient = WorldPatient(bsn=bsn, registrations=tuple(registrations))
        self._put(patient)
        return patient

    def make_dispenses(
        self, pharmacy_ura: str, days: Sequence[dt.date], *, seed: int = 0
    ) -> tuple[Dispense, ...]:
        """Realistic dispenses by one pharmacy on the given days (for tests)."""
        rng = random.Random(f"{self.seed}:{pharmacy_ura}:{seed}")  # noqa: S311 - simulation
        pharmacy = self.pharmacy(pharmacy_ura)
        prescriber = random_prescriber(rng)
        out = []
        for day in days:
            with self._lock:
                self._test_serial += 1
                serial = self._test_serial
            out.append(make_dispense(rng, pharmacy.ref(), prescriber, day, serial=serial))
        return tuple(out)

    # ------------------------------------------------------------------ generation
    @classmethod
    def generate(cls, seed: int, patients: int, *, reference_date: dt.date | None = None) -> World:
        """A seeded world of `patients` patients; `reference_date` defaults to today (UTC).
        Above `MAX_PATIENTS` the patients are derived when asked for (`lspsim.derived`)."""
        if not 0 <= patients <= MAX_DERIVED:
            raise ConfigError("patient count out of range", patients=patients, maximum=MAX_DERIVED)
        if patients > MAX_PATIENTS:
            return cls.derive(seed, patients, reference_date=reference_date)
        ref = reference_date or dt.datetime.now(dt.UTC).date()
        rng = random.Random(seed)  # noqa: S311 - seeded simulation, not crypto
        pharmacies = make_pharmacies(rng, seed, patients)
        world = cls(seed=seed, reference_date=ref, pharmacies=pharmacies)
        prescribers = [random_prescriber(rng) for _ in range(max(10, patients // 4))]
        seen: set[str] = set()
        serials = dict.fromkeys((p.ura for p in pharmacies), 0)
        for _ in range(patients):
            bsn = random_bsn(rng)
            while bsn in seen:
                bsn = random_bsn(rng)
            seen.add(bsn)
            regs: list[Registration] = []
            if rng.random() < REGISTERED_SHARE:
                count = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
                for pharmacy in rng.sample(pharmacies, count):
                    regs.append(make_registration(rng, pharmacy, prescribers, serials, ref))
            details = make_demographics(random.Random(f"{seed}:person:{bsn}"), ref)  # noqa: S311
            world._put(WorldPatient(bsn=Bsn(bsn), registrations=tuple(regs), demographics=details))
        return world

    @classmethod
    def derive(cls, seed: int, patients: int, *, reference_date: dt.date | None = None) -> World:
        """A world of `patients` patients derived when asked for (`lspsim.derived`), with
        the pharmacies `generate` would make; any count up to `MAX_DERIVED`."""
        ref = reference_date or dt.datetime.now(dt.UTC).date()
        pharmacies = make_pharmacies(random.Random(seed), seed, patients)  # noqa: S311
        return cls(seed=seed, reference_date=ref, pharmacies=pharmacies, derived=patients)

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """The world as JSON; a derived world's patients as their count only."""
        derived = {"derived": self._derived.count} if self._derived is not None else {}
        return {
            "format": FORMAT,
            "seed": self.seed,
            **derived,
            "reference_date": self.reference_date.isoformat(),
            "pharmacies": [_pharmacy_json(p) for p in self._pharmacies.values()],
            "patients": [
                {
                    "bsn": p.bsn.value,
                    **({"demographics": p.demographics.to_json()} if p.demographics else {}),
                    "registrations": [
                        {
                            "pharmacy": r.pharmacy_ura,
                            "dispenses": [d.to_json() for d in r.dispenses],
                        }
                        for r in p.registrations
                    ],
                }
                for p in self._patients.values()
            ],
        }

    def save(self, path: Path | str) -> None:
        """Write the world as JSON (synthetic test data only); ConfigError when it cannot."""
        text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                "cannot write world file", path=str(path), error=exc.strerror or type(exc).__name__
            ) from None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> World:
        if data.get("format") != FORMAT:
            raise ConfigError("not a simulator world file", expected=FORMAT)
        try:
            pharmacies = [Pharmacy(**p) for p in data["pharmacies"]]
            patients = [
                WorldPatient(
                    bsn=Bsn(p["bsn"]),
                    registrations=tuple(
                        Registration(
                            pharmacy_ura=r["pharmacy"],
                            dispenses=tuple(dispense_from_json(d) for d in r["dispenses"]),
                        )
                        for r in p["registrations"]
                    ),
                    demographics=Demographics.from_json(p["demographics"])
                    if p.get("demographics")
                    else None,
                )
                for p in data["patients"]
            ]
            return cls(
                seed=int(data["seed"]),
                reference_date=dt.date.fromisoformat(data["reference_date"]),
                pharmacies=pharmacies,
                patients=patients,
                derived=int(data.get("derived", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError("world file is damaged", error=type(exc).__name__) from None

    @classmethod
    def load(cls, path: Path | str) -> World:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                "cannot read world file", path=str(path), error=type(exc).__name__
            ) from None
        return cls.from_json(data)


def _pharmacy_json(p: Pharmacy) -> dict[str, Any]:
    return {
        "ura": p.ura,
        "name": p.name,
        "application_id": p.application_id,
        "system_uzi": p.system_uzi,
        "dispense_root": p.dispense_root,
        "region": p.region,
        "pharmacist_uzi": p.pharmacist_uzi,
        "city": p.city,
        "kind_code": p.kind_code,
        "software_name": p.software_name,
    }
