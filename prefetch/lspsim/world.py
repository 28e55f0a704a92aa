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

import dataclasses
import datetime as dt
import json
import random
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn, passes_eleven_check
from prefetch.domain.dispense import Dispense, dispense_from_json
from prefetch.errors import ConfigError
from prefetch.lspsim.catalogue import PHARMACY_KINDS, TOWNS, VENDOR_ROOTS
from prefetch.lspsim.derived import MAX_DERIVED, DerivedPatients
from prefetch.lspsim.dispgen import (
    PharmacyRef,
    Prescriber,
    in_window,
    make_dispense,
    random_prescriber,
)

FORMAT = "prefetch-lspsim-world/1"
REGISTERED_SHARE = 0.75
OLD_ONLY_SHARE = 0.18  # registrations whose dispenses all lie more than 15 months back
HISTORY_DAYS = 730  # dispenses spread over the two years before the reference date
REGIONS = 4  # historical regions the pharmacies are spread over
MAX_PATIENTS = 50_000  # generated up front; the 999xxxxxx range holds about 90,000 BSNs


@dataclass(frozen=True, slots=True)
class Pharmacy:
    """A pharmacy information system connected to the LSP."""

    ura: str  # 8 digits, 2.16.528.1.1007.3.3
    name: str
    application_id: str  # AORTA application id, 2.16.840.1.113883.2.4.6.6
    system_uzi: str  # UZI system number, 2.16.528.1.1007.3.2
    dispense_root: str  # root of this pharmacy's dispense ids
    region: int = 1  # historical LSP region (for the regions mode)
    pharmacist_uzi: str | None = None
    city: str | None = None  # Organization/addr/city
    kind_code: str | None = None  # Organization/code (J8: openbare apotheek)
    software_name: str | None = None  # assignedDevice/softwareName (the pharmacy system)

    def ref(self) -> PharmacyRef:
        return PharmacyRef(
            ura=self.ura, dispense_root=self.dispense_root, pharmacist_uzi=self.pharmacist_uzi
        )


@dataclass(frozen=True, slots=True)
class Registration:
    """A pharmacy registered the patient in the index; what it holds for them."""

    pharmacy_ura: str
    dispenses: tuple[Dispense, ...] = ()


@dataclass(frozen=True, slots=True)
class Demographics:
    """Synthetic, obviously fake patient details (family names start with "XXX_", the
    Nictiz convention for test patients; streets are "Simulatiestraat" and the like)."""

    given: str
    family: str
    gender: str  # M, F or UN (HL7 AdministrativeGender)
    birth_date: dt.date
    street: str
    house_number: str
    postal_code: str
    city: str

    def to_json(self) -> dict[str, str]:
        return {
            "given": self.given,
            "family": self.family,
            "gender": self.gender,
            "birth_date": self.birth_date.isoformat(),
            "street": self.street,
            "house_number": self.house_number,
            "postal_code": self.postal_code,
            "city": self.city,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Demographics:
        return cls(**{**data, "birth_date": dt.date.fromisoformat(data["birth_date"])})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class WorldPatient:
    """A patient known to the simulated LSP. No registrations: not in the index."""

    bsn: Bsn
    registrations: tuple[Registration, ...] = ()
    demographics: Demographics | None = None


def _random_bsn(rng: random.Random) -> str:
    while True:
        head = "999" + f"{rng.randrange(10**5):05d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), head, strict=True))
        candidate = head + str(total % 11)
        if total % 11 != 10 and passes_eleven_check(candidate):
            return candidate


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
        pharmacies = _pharmacies(rng, seed, patients)
        world = cls(seed=seed, reference_date=ref, pharmacies=pharmacies)
        prescribers = [random_prescriber(rng) for _ in range(max(10, patients // 4))]
        seen: set[str] = set()
        serials = dict.fromkeys((p.ura for p in pharmacies), 0)
        for _ in range(patients):
            bsn = _random_bsn(rng)
            while bsn in seen:
                bsn = _random_bsn(rng)
            seen.add(bsn)
            regs: list[Registration] = []
            if rng.random() < REGISTERED_SHARE:
                count = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
                for pharmacy in rng.sample(pharmacies, count):
                    regs.append(_registration(rng, pharmacy, prescribers, serials, ref))
            details = _demographics(random.Random(f"{seed}:person:{bsn}"), ref)  # noqa: S311
            world._put(WorldPatient(bsn=Bsn(bsn), registrations=tuple(regs), demographics=details))
        return world

    @classmethod
    def derive(cls, seed: int, patients: int, *, reference_date: dt.date | None = None) -> World:
        """A world of `patients` patients derived when asked for (`lspsim.derived`), with
        the pharmacies `generate` would make; any count up to `MAX_DERIVED`."""
        ref = reference_date or dt.datetime.now(dt.UTC).date()
        pharmacies = _pharmacies(random.Random(seed), seed, patients)  # noqa: S311
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


_GIVEN = {
    "F": ("Anna", "Els", "Fenna", "Ingrid", "Maria", "Noor", "Sanne", "Tess"),
    "M": ("Bram", "Daan", "Henk", "Jan", "Kees", "Luuk", "Piet", "Sem"),
    "UN": ("Alex", "Sam"),
}
_FAMILY = ("Testpatiënt", "Proefpersoon", "Simulant", "Voorbeeld", "Fictief", "Oefenpatiënt")
_STREETS = ("Simulatiestraat", "Testlaan", "Proefweg", "Voorbeeldplein", "Fictieve Gracht")
_SOFTWARE = ("SimAIS Apotheek 4.2", "Testapotheeksysteem 7", "ProefFarma 2.1", "DemoRx 11")


def _demographics(rng: random.Random, ref: dt.date) -> Demographics:
    gender = rng.choices(("F", "M", "UN"), weights=(50, 49, 1))[0]
    born = ref - dt.timedelta(days=rng.randint(365, 98 * 365))
    return Demographics(
        given=rng.choice(_GIVEN[gender]),
        family=f"XXX_{rng.choice(_FAMILY)}",
        gender=gender,
        birth_date=born,
        street=rng.choice(_STREETS),
        house_number=str(rng.randint(1, 250)),
        postal_code=f"{rng.randint(1000, 9999)} {rng.choice('ABCDEFGHJKLMNPRSTVWX')}Z",
        city=rng.choice(TOWNS),
    )


def _pharmacies(rng: random.Random, seed: int, patients: int) -> list[Pharmacy]:
    return [
        _with_details(p, random.Random(f"{seed}:pharmacy:{p.ura}"))  # noqa: S311
        for p in _generate_pharmacies(rng, max(6, min(400, patients // 15 + 4)))
    ]


def _with_details(pharmacy: Pharmacy, rng: random.Random) -> Pharmacy:
    """Kind and software name of a generated pharmacy (from its own seeded generator)."""
    return dataclasses.replace(
        pharmacy,
        kind_code="J8",
        software_name=rng.choice(_SOFTWARE),
    )


def _generate_pharmacies(rng: random.Random, count: int) -> list[Pharmacy]:
    out: list[Pharmacy] = []
    uras: set[str] = set()
    for i in range(count):
        ura = f"{rng.randrange(10**5, 10**8):08d}"
        while ura in uras:
            ura = f"{rng.randrange(10**5, 10**8):08d}"
        uras.add(ura)
        town = rng.choice(TOWNS)
        if rng.random() < 0.5:
            root = f"{oids.URA}.{int(ura)}.3"
        else:
            root = f"{rng.choice(VENDOR_ROOTS)}.{rng.randrange(100, 999)}.3"
        out.append(
            Pharmacy(
                ura=ura,
                name=f"{rng.choice(PHARMACY_KINDS)} {town}",
                application_id=f"{10_000_000 + rng.randrange(10**6) + i}",
                system_uzi=f"{rng.randrange(10**6):09d}",
                dispense_root=root,
                region=1 + i % REGIONS,
                pharmacist_uzi=f"{rng.randrange(10**6):09d}",
                city=town,
            )
        )
    return out


def _registration(
    rng: random.Random,
    pharmacy: Pharmacy,
    prescribers: list[Prescriber],
    serials: dict[str, int],
    ref: dt.date,
) -> Registration:
    roll = rng.random()
    if roll < 0.04:
        return Registration(pharmacy_ura=pharmacy.ura)  # registered, nothing dispensed
    old_only = roll < 0.04 + OLD_ONLY_SHARE
    count = (
        rng.randint(1, 4)
        if old_only
        else rng.choices(range(1, 16), weights=[8, 9, 9, 8, 8, 7, 6, 6, 5, 4, 3, 3, 2, 2, 1])[0]
    )
    low = 460 if old_only else 0
    prescriber = rng.choice(prescribers)
    dispenses = []
    for _ in range(count):
        serials[pharmacy.ura] += 1
        day = ref - dt.timedelta(days=rng.randint(low, HISTORY_DAYS))
        if rng.random() < 0.2:
            prescriber = rng.choice(prescribers)
        dispenses.append(
            make_dispense(rng, pharmacy.ref(), prescriber, day, serial=serials[pharmacy.ura])
        )
    dispenses.sort(key=lambda d: (d.dispensed_on or d.period_start or ref, d.key))
    return Registration(pharmacy_ura=pharmacy.ura, dispenses=tuple(dispenses))
