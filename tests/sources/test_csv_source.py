import datetime as dt
from pathlib import Path

import pytest

from prefetch.domain.people import AppointmentStatus, Consent
from prefetch.sources.csv_source import parse_csv, read_appointments_csv, read_csv
from prefetch.sources.intake import SourceUnreadable

HEADER = "appointment_id;patient_id;bsn;bsn_verified;consent;clinic;start;appointment_type;status"
GOOD_BSN = "123456782"


def test_rows_become_appointments() -> None:
    text = (
        "\ufeff" + HEADER + f"\nA1;P1;{GOOD_BSN};ja;granted;card;2026-11-24T09:30;NP;\n"
        "A2;P2;;no;;CARD;2026-11-24T10:00+01:00;CON;cancelled\nA3;P3;123456789;yes;;CARD;"
        "24-11-2026 11:00;NP;\n"
    )
    result = parse_csv(text)
    assert result.errors == []
    a1, a2, a3 = result.appointments
    assert a1.patient.bsn is not None and a1.patient.bsn.value == GOOD_BSN
    assert a1.patient.bsn_verified and a1.patient.consent is Consent.GRANTED
    assert a1.clinic == "CARD" and a1.start.utcoffset() == dt.timedelta(hours=1)
    assert a2.patient.bsn is None and a2.status is AppointmentStatus.CANCELLED
    assert a3.patient.bsn is None and a3.patient.bsn_invalid
    assert a3.start == dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def test_bad_rows_are_reported_and_skipped_good_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_text(
        HEADER + "\nA1;P1;;maybe;;CARD;2026-03-29T02:30;NP;\n"
        "A2;P2;;;;CARD;2026-11-24T10:00;NP;\nA3;;;;nope;CARD;x;NP;gone\n"
        "A2;P9;;;;CARD;2026-11-24T10:00;NP;\nA5;P5;;;;CARD;0001-01-01T10:00;NP;\n"
        f"A6;P6;CARD;{GOOD_BSN};;CARD;2026-11-24T10:00;NP;;extra\n",
        encoding="utf-8",
    )
    result = read_csv(path)
    assert [a.id for a in result.appointments] == ["A2"]
    by_row = {e.where: e.message for e in result.errors}
    assert all(e.file == str(path) for e in result.errors)
    assert by_row["row 2"].startswith("bsn_verified")
    assert by_row["row 4"] == "patient_id: required value is empty"
    assert by_row["row 5"].startswith("appointment_id: same id as row 3")
    assert by_row["row 6"] == "start: year outside 2000-2100"
    assert "fields where the header has" in by_row["row 7"]
    assert all(GOOD_BSN not in str(e) for e in result.errors)


def test_non_existent_local_time_is_a_row_error() -> None:
    result = parse_csv(HEADER + "\nA1;P1;;;;CARD;2026-03-29T02:30;NP;\n")
    assert result.errors[0].where == "row 2"
    assert "non-existent local time" in result.errors[0].message


@pytest.mark.parametrize(
    "header",
    [
        "Appointment ID;Patient_ID;BSN;BSN Verified;Consent;Clinic;Start;Appointment Type;Status",
        "APPOINTMENT_ID;PATIENT_ID;BSN;BSN_VERIFIED;CONSENT;CLINIC;START;APPOINTMENT_TYPE;STATUS",
        "\ufeffappointment_id;patient_id;bsn;bsn_verified;consent;clinic;start;type;status",
        "afspraak_id;patientnummer;bsn;bsn_geverifieerd;toestemming;poli;starttijd;afspraaktype;"
        "afspraakstatus",
    ],
)
def test_header_variants_keep_objections_and_cancellations(header: str) -> None:
    rows = (
        f"A1;P1;{GOOD_BSN};ja;refused;CARD;2026-11-24T09:30;NP;\n"
        "A2;P2;;;;CARD;2026-11-24T10:00;NP;cancelled\n"
    )
    result = parse_csv(header + "\n" + rows)
    assert result.errors == []
    a1, a2 = result.appointments
    assert a1.patient.consent is Consent.REFUSED
    assert a2.status is AppointmentStatus.CANCELLED


def test_cp1252_and_utf16_exports(tmp_path: Path) -> None:
    text = (
        "afspraak_id,patientnummer,poli,start,type,agenda\r\n"
        "A1,P1,CARD,2026-11-24 09:30,NP,Dr. Müller\r\n"
    )
    for encoding in ("cp1252", "utf-16", "utf-8-sig"):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        (appt,) = read_csv(path).appointments
        assert appt.agenda == "Dr. Müller"


def test_column_mapping_for_other_exports() -> None:
    text = "Nr;Pat;Wanneer;Poli;Soort\nA1;P1;2026-11-24T09:30;CARD;NP\n"
    columns = {"appointment_id": "Nr", "patient_id": "Pat", "start": "Wanneer"}
    (appt,) = parse_csv(text, columns=columns).appointments
    assert appt.id == "A1" and appt.patient.local_id == "P1"


def test_huge_field_is_a_row_error_not_a_traceback() -> None:
    text = HEADER + "\nA1;P1;;;;CARD;2026-11-24T09:30;" + "N" * 200_000 + ";\n"
    text += "A2;P2;;;;CARD;2026-11-24T09:30;NP;\n"
    result = parse_csv(text)
    assert [a.id for a in result.appointments] == ["A2"]
    assert result.errors[0].message == "appointment_type: longer than 256 characters"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SourceUnreadable, match="missing required column"):
        parse_csv("appointment_id,patient_id\nA1,P1\n")
    with pytest.raises(SourceUnreadable, match="file not found"):
        read_csv(tmp_path / "none.csv")
    with pytest.raises(SourceUnreadable, match="empty"):
        parse_csv("")
    with pytest.raises(SourceUnreadable, match="two columns"):
        parse_csv("appointment_id;afspraak_id;patient_id;clinic;start;type\n")


def test_read_appointments_csv_keeps_good_rows(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_text(HEADER + "\nA1;P1;;;;CARD;2026-11-24T09:30;NP;\nA2;;;;;;;;\n", encoding="utf-8")
    assert [a.id for a in read_appointments_csv(path)] == ["A1"]
