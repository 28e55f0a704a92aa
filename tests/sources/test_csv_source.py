import datetime as dt
from pathlib import Path

import pytest

from prefetch.domain.people import AppointmentStatus, Consent
from prefetch.sources.csv_source import IntakeError, parse_appointments_csv, read_appointments_csv

HEADER = "appointment_id;patient_id;bsn;bsn_verified;consent;clinic;start;appointment_type;status"


def test_rows_become_appointments() -> None:
    text = (
        "\ufeff" + HEADER + "\nA1;P1;123456782;ja;granted;card;2026-11-24T09:30;NP;\n"
        "A2;P2;;no;;CARD;2026-11-24T10:00+01:00;CON;cancelled\nA3;P3;123456789;yes;;CARD;"
        "2026-11-24 11:00;NP;\n"
    )
    a1, a2, a3 = parse_appointments_csv(text)
    assert a1.patient.bsn is not None and a1.patient.bsn.value == "123456782"
    assert a1.patient.bsn_verified and a1.patient.consent is Consent.GRANTED
    assert a1.clinic == "CARD" and a1.start.utcoffset() == dt.timedelta(hours=1)
    assert a2.patient.bsn is None and a2.status is AppointmentStatus.CANCELLED
    assert a3.patient.bsn is None and a3.patient.bsn_invalid


def test_every_problem_reported_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_text(
        HEADER + "\nA1;P1;;maybe;;CARD;2026-03-29T02:30;NP;\n"
        "A1;P2;;;;CARD;2026-11-24T10:00;NP;\nA3;;;;nope;CARD;x;NP;gone\n",
        encoding="utf-8",
    )
    with pytest.raises(IntakeError) as info:
        read_appointments_csv(path)
    text = str(info.value)
    assert str(path) in text
    assert "line 2, column bsn_verified" in text
    assert "line 2, column start: non-existent local time" in text
    assert "line 3, column appointment_id: duplicate of line 2" not in text  # line 2 failed
    assert "line 4, column patient_id: required value is empty" in text
    assert "line 4, column consent" in text and "line 4, column status" in text
    assert "line 4, column start" in text


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="missing column"):
        parse_appointments_csv("appointment_id,patient_id\nA1,P1\n")
    with pytest.raises(IntakeError, match="file not found"):
        read_appointments_csv(tmp_path / "none.csv")


def test_invalid_bsn_never_in_error_text() -> None:
    text = HEADER + "\nA1;P1;123456789;x;;CARD;2026-11-24T09:30;NP;\n"
    with pytest.raises(IntakeError) as info:
        parse_appointments_csv(text)
    assert "123456789" not in str(info.value)
