"""Malformed input never crashes (issue 9, acceptance 1).

For each format at least 1,000 generated inputs mix good entries with bad ones (ragged rows,
header variants, huge fields, bad encodings, truncated segments, custom separators, invalid
JSON, extreme dates). Every bad entry is a typed error naming the file and the place, every
good entry is kept, and no error text holds a BSN (or any long digit run from the input).
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intake_samples import BSN, siu

from prefetch.sources.csv_source import CsvSource
from prefetch.sources.fhir_source import FhirSource
from prefetch.sources.hl7v2_source import Hl7v2Source
from prefetch.sources.intake import EntryError, IntakeResult, SourceUnreadable

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WHERE = re.compile(r"^(row|message|entry) \d+$|^file$")
DIGITS = re.compile(r"\d{8,}")


def check_errors(result: IntakeResult, file: str) -> None:
    for error in result.errors:
        assert isinstance(error, EntryError)
        assert error.file == file
        assert WHERE.match(error.where), error.where
        assert BSN not in str(error) and not DIGITS.search(error.message), error.message


junk_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\r\n\x00'),
    max_size=40,
)
extreme_dates = st.sampled_from(
    ["0001-01-01T00:00", "9999-12-31T23:59", "2026-03-29T02:30", "2026-10-25T02:30", "x", ""]
)

HEADERS = [
    ["appointment_id", "Afspraak_ID", " APPOINTMENT ID ", "afspraaknummer"],
    ["patient_id", "PatientNummer", "patnr"],
    ["bsn", "BSN", "Burgerservicenummer"],
    ["bsn_verified", "BSN geverifieerd", "bsn_geverifieerd"],
    ["consent", "Consent", "CONSENT", "toestemming"],
    ["clinic", "Poli", "CLINIC"],
    ["start", "Start", "starttijd"],
    ["appointment_type", "Type", "afspraaktype"],
    ["status", "Status", "afspraakstatus"],
]


def good_row(n: int) -> list[str]:
    return [f"G{n}", f"P{n}", BSN, "ja", "refused", "CARD", "2026-11-24T09:30", "NP", "booked"]


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    header = [draw(st.sampled_from(names)) for names in HEADERS]
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    rows: list[list[str]] = []
    good: set[str] = set()
    for n in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["good", "ragged", "junk", "date", "huge"]))
        if kind == "good":
            rows.append(good_row(n))
            good.add(f"G{n}")
        elif kind == "ragged":
            rows.append([*good_row(n), "extra"] if n % 2 else good_row(n)[:5])
        elif kind == "date":
            row = good_row(n)
            row[6] = draw(extreme_dates)
            row[0] = f"B{n}"
            rows.append(row)
        elif kind == "huge":
            row = good_row(n)
            row[draw(st.integers(0, 8))] = "9" * draw(st.sampled_from([300, 20_000]))
            row[0] = row[0] if row[0].startswith("9") else f"B{n}"
            rows.append(row)
        else:
            cells = draw(st.lists(junk_text, max_size=12))
            rows.append([c.replace(delimiter, "") for c in cells] or [""])
    text = "\r\n".join(delimiter.join(r) for r in [header, *rows]) + "\r\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=8)).replace(b"\n", b"").replace(b"\r", b"")
    return data, good


@FUZZ
@given(csv_files())
def test_csv_never_crashes_and_keeps_good_rows(case: tuple[bytes, set[str]]) -> None:
    data, good = case
    try:
        result = CsvSource().read_bytes(data, file="day.csv")
    except SourceUnreadable as exc:
        unreadable = str(exc)
    else:
        unreadable = ""
    if unreadable:
        assert BSN not in unreadable
        return
    check_errors(result, "day.csv")
    kept = {a.id for a in result.appointments}
    assert good <= kept


def mutate_hl7(draw: st.DrawFn, text: str) -> str:
    kind = draw(st.sampled_from(["truncate", "junk", "date", "sep", "bytes"]))
    if kind == "truncate":
        return text[: draw(st.integers(3, len(text) - 1))].replace("\r", "|") + "\r"
    if kind == "junk":
        return "MSH" + draw(junk_text).replace("\r", "") + "\r"
    if kind == "date":
        return siu(start=draw(st.sampled_from(["00010101", "99991231", "2026032902", "x"])))
    if kind == "sep":
        return siu(appt="").replace("|", "#").replace("SCH#PF", "SCH##")
    return "MSH|^~\\&|" + draw(st.text(max_size=30)).replace("\r", "").replace("\n", "") + "\r"


@st.composite
def hl7_files(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    parts: list[str] = []
    good: set[str] = set()
    for n in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            sep = draw(st.sampled_from(["|", "#", "!"]))
            parts.append(siu(appt=f"G{n}", control=f"C{n}").replace("|", sep))
            good.add(f"G{n}")
        else:
            parts.append(mutate_hl7(draw, siu(appt=f"B{n}")))
    newline = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    text = "".join(parts).replace("\r", newline)
    return text.encode("latin-1", errors="replace"), good


@FUZZ
@given(hl7_files())
def test_hl7v2_never_crashes_and_keeps_good_messages(case: tuple[bytes, set[str]]) -> None:
    data, good = case
    result = Hl7v2Source().read_bytes(data, file="feed.hl7")
    check_errors(result, "feed.hl7")
    assert good <= {a.id for a in result.appointments}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def fhir_appointment(aid: str, start: str = "2026-11-24T09:30:00+01:00") -> dict[str, object]:
    return {
        "resourceType": "Appointment",
        "id": aid,
        "status": "booked",
        "appointmentType": {"coding": [{"code": "NP"}]},
        "specialty": [{"coding": [{"code": "CARD"}]}],
        "start": start,
        "participant": [
            {
                "actor": {
                    "identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN}
                }
            }
        ],
    }


@st.composite
def fhir_files(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    entries: list[object] = []
    good: set[str] = set()
    for n in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["good", "junk", "date", "field"]))
        if kind == "good":
            entries.append({"resource": fhir_appointment(f"G{n}")})
            good.add(f"G{n}")
        elif kind == "junk":
            entries.append(draw(json_values))
        elif kind == "date":
            entries.append({"resource": fhir_appointment(f"B{n}", draw(extreme_dates))})
        else:
            bad = fhir_appointment(f"B{n}")
            bad[draw(st.sampled_from(sorted(bad)))] = draw(json_values)
            entries.append({"resource": bad})
    text = json.dumps({"resourceType": "Bundle", "entry": entries})
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # invalid JSON: unreadable
        good = set()
    return text.encode(), good


@FUZZ
@given(fhir_files())
def test_fhir_never_crashes_and_keeps_good_entries(case: tuple[bytes, set[str]]) -> None:
    data, good = case
    try:
        result = FhirSource().read_bytes(data, file="b.json")
    except SourceUnreadable as exc:
        unreadable = str(exc)
    else:
        unreadable = ""
    if unreadable:
        assert not good and BSN not in unreadable
        return
    check_errors(result, "b.json")
    assert good <= {a.id for a in result.appointments}
