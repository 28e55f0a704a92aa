import datetime as dt

from intake_samples import BSN, OTHER_VALID, fhir_bundle, siu

from prefetch.domain.people import AppointmentStatus
from prefetch.sources.fhir_source import FhirSource
from prefetch.sources.hl7v2_source import Hl7v2Source, VerifiedRule


def read_hl7(data: bytes, rule: VerifiedRule | None = None):  # type: ignore[no-untyped-def]
    return Hl7v2Source(rule).read_bytes(data, file="feed.hl7")


def test_siu_s12_with_bsn_from_the_nnnld_repetition_only() -> None:
    result = read_hl7(siu().encode("latin-1"))
    assert result.errors == []
    (received,) = result.received
    a = received.appointment
    assert a.id == "F1" and a.clinic == "CARD" and a.appointment_type == "NP"
    assert a.agenda == "Spreekuur Müller"  # 8859/1 decoded as declared
    assert a.patient.bsn is not None and a.patient.bsn.value == BSN
    assert a.patient.local_id == OTHER_VALID and not a.patient.bsn_verified
    assert a.start == dt.datetime(2026, 11, 24, 8, 30, tzinfo=dt.UTC)
    assert a.end is not None and received.version is not None


def test_no_nnnld_repetition_means_no_bsn_even_if_another_id_passes_the_check() -> None:
    text = siu().replace("^^^NLMINBIZA^NNNLD", "^^^NLMINBIZA^PPN")
    (a,) = read_hl7(text.encode("latin-1")).appointments
    assert a.patient.bsn is None and not a.patient.bsn_invalid


def test_bare_line_feeds_and_utf8_and_several_messages_per_file() -> None:
    data = (
        siu(sep="\n", charset="UNICODE UTF-8").encode("utf-8")
        + siu("S15", control="MSG0002", sep="\r\n").encode("latin-1")
        + b"\x0bMSH|^~\\&|A|B|C|D|20261123||ADT^A01|X|P|2.5\r\x1c\r"
    )
    result = read_hl7(data)
    first, second = result.appointments
    assert first.agenda == "Spreekuur Müller" and first.status is AppointmentStatus.BOOKED
    assert second.status is AppointmentStatus.CANCELLED
    assert [(e.where, e.message) for e in result.errors] == [
        ("message 3", "not an SIU message (MSH-9 must be SIU)")
    ]


def test_verified_mapping_per_source() -> None:
    text = siu().replace("Jansen^Jan||19700101|M", "Jansen^Jan||19700101|M" + "|" * 24 + "VIDE")
    rule = VerifiedRule.from_mapping({"field": "PID-32", "value": "VIDE"})
    (a,) = read_hl7(text.encode("latin-1"), rule).appointments
    assert a.patient.bsn_verified
    (b,) = read_hl7(text.encode("latin-1")).appointments
    assert not b.patient.bsn_verified


def test_bad_messages_are_errors_without_values() -> None:
    bad = [
        siu(start="20260329023000"),  # the spring-forward gap
        siu(start="00010101"),
        siu(charset="KLINGON"),
        siu("S26"),
        siu().replace("SCH|PF1^EPD|F1^EPD|", "SCH|||"),
        "MSH|^~\\&|truncated\r",
        siu(bsn="123456789"),  # invalid BSN: kept as bsn_invalid, not an error
    ]
    result = read_hl7("".join(bad).encode("latin-1"))
    assert len(result.errors) == 6
    assert result.appointments[0].patient.bsn_invalid
    assert all(BSN not in str(e) and "123456789" not in str(e) for e in result.errors)


def test_fhir_r4_bundle() -> None:
    result = FhirSource().read_bytes(fhir_bundle("R4").encode(), file="b.json")
    by_id = {a.id: a for a in result.appointments}
    assert set(by_id) == {"A1", "A2", "A3", "A5"}
    assert by_id["A1"].patient.bsn is not None and by_id["A1"].patient.local_id == "P1"
    assert by_id["A1"].clinic == "CARD" and by_id["A1"].appointment_type == "NP"
    assert by_id["A2"].status is AppointmentStatus.CANCELLED
    assert by_id["A3"].status is AppointmentStatus.CANCELLED
    assert by_id["A5"].clinic == "INT" and by_id["A5"].appointment_type == "CON"
    assert by_id["A5"].patient.bsn is not None and by_id["A5"].patient.local_id == "P5"
    assert [e.where for e in result.errors] == ["entry 6", "entry 8"]


def test_fhir_stu3_participant_identifier() -> None:
    result = FhirSource().read_bytes(fhir_bundle("STU3").encode(), file="b.json")
    a6 = next(a for a in result.appointments if a.id == "A6")
    assert a6.patient.bsn is not None and a6.patient.bsn.value == BSN
