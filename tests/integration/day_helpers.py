"""A clinic day of tomorrow for the integration tests, through the real CSV intake."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from prefetch.demo.clinic_day import DayMix, clinic_day_csv
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment
from prefetch.lspsim.world import World
from prefetch.sources.csv_source import parse_appointments_csv

ONLY_KNOWN = DayMix(
    known=0,
    unknown=0,
    no_bsn=0,
    invalid_bsn=0,
    unverified=0,
    refused=0,
    cancelled=0,
    telephone=0,
    two_clinics=0,
)


def tomorrow() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(AMSTERDAM).date() + dt.timedelta(days=1)


def clinic_day(world: World, *, seed: int, mix: DayMix) -> tuple[dt.date, list[Appointment]]:
    day = tomorrow()
    text = clinic_day_csv([p.bsn for p in world.patients], day, seed=seed, mix=mix)
    return day, parse_appointments_csv(text)


def known_patients_day(world: World, count: int, *, seed: int) -> tuple[dt.date, list[Appointment]]:
    """`count` patients the world knows, one appointment each, nothing to skip."""
    return clinic_day(world, seed=seed, mix=replace(ONLY_KNOWN, known=count))
