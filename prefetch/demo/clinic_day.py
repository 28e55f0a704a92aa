"""A synthetic clinic day as the EPD would export it (CSV), seeded and reproducible.

It holds the cases a real day has: patients the LSP knows (with and without
registrations), patients it has never heard of, no BSN, a BSN that fails the 11-check,
an identity not verified at the desk, a recorded objection, a cancelled appointment,
an excluded appointment type, and patients with appointments in two clinics.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass

from prefetch.domain.bsn import Bsn, passes_eleven_check

CLINICS = ("CARD", "INT", "LONG", "NEUR", "REUM")
TYPES = ("NP", "CON", "CON", "CON", "HC")  # new patient, follow-up, repeat consult
HEADER = (
    "appointment_id",
    "patient_id",
    "bsn",
    "bsn_verified",
    "consent",
    "clinic",
    "start",
    "appointment_type",
    "status",
    "clinician_uzi",
)


@dataclass(frozen=True, slots=True)
class DayMix:
    known: int = 180  # patients from the simulator's world
    unknown: int = 12  # valid BSNs the LSP has never heard of
    no_bsn: int = 6
    invalid_bsn: int = 4
    unverified: int = 6
    refused: int = 4
    cancelled: int = 4
    telephone: int = 4  # appointment type excluded by the schedule
    two_clinics: int = 10  # known patients with a second appointment elsewhere


def _fresh_bsn(rng: random.Random, taken: set[str]) -> str:
    while True:
        digits = f"{rng.randrange(10_000_000, 999_999_999):09d}"
        if passes_eleven_check(digits) and digits not in taken:
            taken.add(digits)
            return digits


def _invalid_bsn(rng: random.Random) -> str:
    while True:
        digits = f"{rng.randrange(100_000_000, 999_999_999):09d}"
        if not passes_eleven_check(digits):
            return digits


def clinic_day_csv(
    known_bsns: Sequence[Bsn],
    day: dt.date,
    *,
    seed: int = 7,
    mix: DayMix | None = None,
    earliest: dt.time | None = None,
) -> str:
    """The CSV export of `day` (local times, `;`-separated, as Dutch EPDs export).
    Appointments start between 08:00 and 16:30, or from `earliest` on (for a day that has
    begun: a run skips appointments already past)."""
    mix = mix or DayMix()
    start = earliest.hour * 60 + earliest.minute if earliest is not None else 8 * 60
    start = -(-start // 10) * 10  # on the ten minutes
    end = min(max(16 * 60 + 30, start + 60), 24 * 60)
    start = min(start, end - 1)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    taken = {b.value for b in known_bsns}
    pool = list(known_bsns)
    rng.shuffle(pool)
    rows: list[dict[str, str]] = []
    counter = iter(range(1, 100_000))

    def add(
        bsn: str,
        *,
        verified: str = "ja",
        consent: str = "",
        clinic: str | None = None,
        typ: str | None = None,
        status: str = "",
        patient: str | None = None,
    ) -> str:
        n = next(counter)
        minute = rng.randrange(start, end, 10)
        pid = patient or f"P{700000 + n:07d}"
        rows.append(
            {
                "appointment_id": f"A{day:%Y%m%d}{n:04d}",
                "patient_id": pid,
                "bsn": bsn,
                "bsn_verified": verified,
                "consent": consent,
                "clinic": clinic or rng.choice(CLINICS),
                "start": f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}",
                "appointment_type": typ or rng.choice(TYPES),
                "status": status,
                "clinician_uzi": f"90000{rng.randrange(1000, 9999)}",
            }
        )
        return pid

    known = pool[: mix.known]
    for i, bsn in enumerate(known):
        pid = add(bsn.value)
        if i < mix.two_clinics:
            first = rows[-1]["clinic"]
            add(bsn.value, clinic=next(c for c in CLINICS if c != first), patient=pid)
    for _ in range(mix.unknown):
        add(_fresh_bsn(rng, taken))
    for _ in range(mix.no_bsn):
        add("", verified="nee")
    for _ in range(mix.invalid_bsn):
        add(_invalid_bsn(rng))
    rest = pool[mix.known :]
    special = [
        ("unverified", mix.unverified),
        ("refused", mix.refused),
        ("cancelled", mix.cancelled),
        ("telephone", mix.telephone),
    ]
    for kind, count in special:
        for _ in range(count):
            bsn = rest.pop() if rest else Bsn(_fresh_bsn(rng, taken))
            if kind == "unverified":
                add(bsn.value, verified="nee")
            elif kind == "refused":
                add(bsn.value, consent="refused")
            elif kind == "cancelled":
                add(bsn.value, status="cancelled")
            else:
                add(bsn.value, typ="TEL")
    rows.sort(key=lambda r: (r["start"], r["appointment_id"]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, delimiter=";", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
