"""`stream_csv`: a big export read a row at a time, with the same answers as `read_csv`."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from prefetch.sources.csv_source import read_csv, stream_csv
from prefetch.sources.intake import SourceUnreadable

HEADER = "appointment_id;patient_id;bsn;bsn_verified;consent;clinic;start;appointment_type;status"
GOOD_BSN = "123456782"
ROWS = (
    "A1;P1;;maybe;;CARD;2026-03-29T02:30;NP;\n"
    f"A2;P2;{GOOD_BSN};ja;;CARD;2026-11-24T10:00;NP;\n"
    "A3;;;;nope;CARD;x;NP;gone\n"
    "A2;P9;;;;CARD;2026-11-24T10:00;NP;\n"
    "A5;P5;;;;CARD;2026-11-24T11:00;NP;cancelled\n"
)


def test_same_appointments_and_row_errors_as_read_csv(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_text(HEADER + "\n" + ROWS, encoding="utf-8")
    with capture_logs() as logs:
        streamed = list(stream_csv(path))
    assert streamed == read_csv(path).appointments
    assert [a.id for a in streamed] == ["A2", "A5"]
    skipped = [e["where"] for e in logs if e["event"] == "intake_row_skipped"]
    assert skipped == [e.where for e in read_csv(path).errors] == ["row 2", "row 4", "row 5"]
    assert GOOD_BSN not in repr(logs)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "utf-8-sig", "utf-8"])
def test_encodings_as_read_csv(tmp_path: Path, encoding: str) -> None:
    text = (
        "afspraak_id,patientnummer,poli,start,type,agenda\r\n"
        "A1,P1,CARD,2026-11-24 09:30,NP,Dr. Müller\r\n"
    )
    path = tmp_path / "day.csv"
    path.write_bytes(text.encode(encoding))
    (appt,) = stream_csv(path)
    assert appt.agenda == "Dr. Müller"


def test_rows_come_before_the_file_is_read_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for n in range(50_000):
            out.write(f"A{n};P{n};;;;CARD;2026-11-24T10:00;NP;\n")
        out.write("broken;\n")
    stream = stream_csv(path)
    first = list(itertools.islice(stream, 3))
    assert [a.id for a in first] == ["A0", "A1", "A2"]
    with capture_logs() as logs:
        rest = list(stream)
    assert len(rest) == 50_000 - 3
    assert [e["where"] for e in logs] == ["row 50002"]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SourceUnreadable):
        list(stream_csv(tmp_path / "missing.csv"))
    with pytest.raises(SourceUnreadable):
        list(stream_csv(tmp_path))
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(SourceUnreadable):
        list(stream_csv(empty))
