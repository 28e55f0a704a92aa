"""The simulated world's records (pharmacies, registrations, patients) and their seeded
generation: `World.generate` and the derived patients of a big world (`lspsim.derived`)
draw them here with `random.Random` only, so that a seed gives the same world every time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn, passes_eleven_check
from prefetch.domain.dispense import Dispense
from prefetch.lspsim.catalogue import PHARMACY_KINDS, TOWNS, VENDOR_ROOTS
from prefetch.lspsim.dispgen import PharmacyRef, Prescriber, make_dispense

REGISTERED_SHARE = 0.75
OLD_ONLY_SHARE = 0.18  # registrations whose dispenses all lie more than 15 months back
HISTORY_DAYS = 730  # dispenses spread over the two years before the reference date
REGIONS = 4  # historical regions the pharmacies are spread over


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


def random_bsn(rng: random.Random) -> str:
    while True:
        head = "999" + f"{rng.randrange(10**5):05d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), head, strict=True))
        candidate = head + str(total % 11)
        if total % 11 != 10 and passes_eleven_check(candidate):
            return candidate


_GIVEN = {
    "F": ("Anna", "Els", "Fenna", "Ingrid", "Maria", "Noor", "Sanne", "Tess"),
    "M": ("Bram", "Daan", "Henk", "Jan", "Kees", "Luuk", "Piet", "Sem"),
    "UN": ("Alex", "Sam"),
}
_FAMILY = ("Testpatiënt", "Proefpersoon", "Simulant", "Voorbeeld", "Fictief", "Oefenpatiënt")
_STREETS = ("Simulatiestraat", "Testlaan", "Proefweg", "Voorbeeldplein", "Fictieve Gracht")
_SOFTWARE = ("SimAIS Apotheek 4.2", "Testapotheeksysteem 7", "ProefFarma 2.1", "DemoRx 11")


def make_demographics(rng: random.Random, ref: dt.date) -> Demographics:
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


def make_pharmacies(rng: random.Random, seed: int, patients: int) -> list[Pharmacy]:
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


def make_registration(
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
