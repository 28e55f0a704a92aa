"""Patients derived on demand: the simulator's world for big days (more than
`world.MAX_PATIENTS`), without holding every patient's registrations and dispenses.

Patient k of a derived world has the k-th BSN of the 99xxxxxxx range that passes the
11-check (990000003, 990000015, ...; apart from the 999 range of generated worlds), and
everything about them comes from a generator seeded with the world's seed and their
BSN: the same seed, count and reference date give the same patients, in any order of
asking. Dispense serials are unique per pharmacy (derived from the BSN), as in a
generated world.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from prefetch.domain.bsn import Bsn
from prefetch.lspsim.dispgen import Prescriber, random_prescriber

if TYPE_CHECKING:
    from prefetch.lspsim.worldgen import Pharmacy, WorldPatient

FIRST_HEAD = 99_000_000  # the first eight digits of the first derived BSN
MAX_DERIVED = 5_000_000  # heads up to 99,999,999 hold about 900,000 valid BSNs per 1M
PRESCRIBERS = 2_000
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)


def _check_digit(head: int) -> int | None:
    """The ninth digit that makes `head` (8 digits) a valid BSN, None when there is none."""
    digits = f"{head:08d}"
    last = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=True)) % 11
    return last if last <= 9 else None


class DerivedPatients:
    """`count` patients computed from (seed, BSN) when asked for; a few thousand cached."""

    def __init__(
        self, seed: int, count: int, reference_date: dt.date, pharmacies: Sequence[Pharmacy]
    ) -> None:
        self.seed = seed
        self.count = count
        self.reference_date = reference_date
        self._pharmacies = tuple(pharmacies)
        prescriber_rng = random.Random(f"{seed}:prescribers")  # noqa: S311 - simulation
        self._prescribers: list[Prescriber] = [
            random_prescriber(prescriber_rng) for _ in range(min(PRESCRIBERS, max(10, count // 4)))
        ]
        self._last_head = FIRST_HEAD - 1
        for _ in self.bsns():
            pass  # walks the range once to find the last head
        self.patient = lru_cache(maxsize=4096)(self._make)

    def bsns(self) -> Iterator[str]:
        """The patients' BSNs in order (patient 0 first)."""
        head, found = FIRST_HEAD, 0
        while found < self.count:
            check = _check_digit(head)
            if check is not None:
                found += 1
                yield f"{head:08d}{check}"
            head += 1
        self._last_head = head - 1

    def __contains__(self, bsn: str) -> bool:
        if len(bsn) != 9 or not bsn.isdigit():
            return False
        head = int(bsn[:8])
        return FIRST_HEAD <= head <= self._last_head and _check_digit(head) == int(bsn[8])

    def _make(self, bsn: str) -> WorldPatient | None:
        from prefetch.lspsim.worldgen import (
            REGISTERED_SHARE,
            WorldPatient,
            make_demographics,
            make_registration,
        )

        if bsn not in self:
            return None
        rng = random.Random(f"{self.seed}:patient:{bsn}")  # noqa: S311 - simulation
        regs = []
        if rng.random() < REGISTERED_SHARE:
            count = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
            for pharmacy in rng.sample(self._pharmacies, count):
                # Serials unique per pharmacy: 20 per patient (a registration holds <= 15).
                serials = {pharmacy.ura: int(bsn[:8]) * 20}
                regs.append(
                    make_registration(
                        rng, pharmacy, self._prescribers, serials, self.reference_date
                    )
                )
        details = make_demographics(
            random.Random(f"{self.seed}:person:{bsn}"),  # noqa: S311 - simulation
            self.reference_date,
        )
        return WorldPatient(bsn=Bsn(bsn), registrations=tuple(regs), demographics=details)
