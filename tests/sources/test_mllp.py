"""Acceptance 3: a real-shaped S12 then S15 over a socket; the patient is in, then out of,
the day's worklist; malformed messages get AE or AR with the reason."""

from __future__ import annotations

import asyncio
import datetime as dt

from intake_samples import BSN, siu
from samples import OVERSEER, schedule
from sqlalchemy import Engine

from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Mandate
from prefetch.domain.schedule import Schedule
from prefetch.sources.hl7v2_source import VerifiedRule
from prefetch.sources.mllp import FeedHandler, serve
from prefetch.store.appointment_book import AppointmentBook
from prefetch.worklist import DayInputs, decide_day


def clinic_day() -> dt.date:
    return dt.datetime.now(AMSTERDAM).date() + dt.timedelta(days=2)


def message(event: str, control: str, sent: str) -> bytes:
    day = clinic_day().strftime("%Y%m%d")
    text = siu(event, control=control, sent=sent, start=f"{day}0930", end=f"{day}0945", sep="\n")
    text = text.replace("19700101|M", "19700101|M" + "|" * 24 + "VIDE")  # PID-32: verified
    return text.encode("latin-1")


async def exchange(port: int, blocks: list[bytes]) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    acks = []
    for block in blocks:
        writer.write(b"\x0b" + block + b"\x1c\r")
        await writer.drain()
        ack = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10)
        acks.append(ack.strip(b"\x0b\x1c\r").decode("latin-1"))
    writer.close()
    await writer.wait_closed()
    return acks


def msa(ack: str) -> list[str]:
    line = next(seg for seg in ack.split("\r") if seg.startswith("MSA"))
    return line.split("|")


def worklist(book: AppointmentBook, sched: Schedule) -> list[tuple[str, str, str | None]]:
    now = dt.datetime.now(dt.UTC)
    valid = Mandate(
        "m1",
        OVERSEER,
        "000000123",
        frozenset({"card"}),
        now - dt.timedelta(1),
        now + dt.timedelta(9),
    )
    inputs = DayInputs(
        now=now,
        fresh_default=dt.timedelta(hours=12),
        last_fetched_at_many=lambda _bsns: {},
        mandate_for=lambda _s: valid,
        appointments_for=lambda s: book.day(s.clinics, clinic_day()),
    )
    lines = decide_day(sched, clinic_day(), inputs)
    return [(line.appointment_id, line.decision, line.reason) for line in lines]


def test_s12_then_s15_over_mllp(migrated_engine: Engine) -> None:
    book = AppointmentBook(migrated_engine)
    handler = FeedHandler(
        lambda received: book.apply("epd", received, now=dt.datetime.now(dt.UTC)),
        VerifiedRule.from_mapping({"field": "PID-32", "value": "VIDE"}),
    )
    sched = schedule()

    async def scenario() -> tuple[list[str], list[list[tuple[str, str]]]]:
        server = await serve(handler, port=0)
        port = server.sockets[0].getsockname()[1]
        seen = []
        async with server:
            first = await exchange(port, [message("S12", "C1", "20261201100000+0100")])
            seen.append(worklist(book, sched))
            rest = await exchange(
                port,
                [
                    message("S15", "C2", "20261201110000+0100"),
                    message("S12", "C3", "20261201100000+0100"),  # replayed: stays cancelled
                    b"this is not HL7",
                    siu(start="x", control="C5").encode("latin-1"),
                    siu("S26", control="C6").encode("latin-1"),
                ],
            )
            seen.append(worklist(book, sched))
        return first + rest, seen

    acks, seen = asyncio.run(scenario())
    assert [msa(a)[1:3] for a in acks[:3]] == [["AA", "C1"], ["AA", "C2"], ["AA", "C3"]]
    assert seen == [[("F1", "eligible", None)], [("F1", "skipped", "cancelled")]]
    assert msa(acks[3])[1] == "AR" and "MSH" in msa(acks[3])[3]
    assert msa(acks[4])[1:3] == ["AE", "C5"] and "date-time" in msa(acks[4])[3]
    assert msa(acks[5])[1:3] == ["AR", "C6"] and "unsupported event" in msa(acks[5])[3]
    assert all(BSN not in a for a in acks)
    (appt,) = book.day({"CARD"}, clinic_day())
    assert appt.status.value == "cancelled"
    assert handler.counts == {"AA": 3, "AE": 1, "AR": 2}
