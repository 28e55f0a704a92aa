"""HL7v2 SIU^S12/S13/S14/S15/S17 appointment messages (files and the MLLP feed).

Parsed with python-hl7. Per message:

- character set from MSH-18 (`8859/1` as Dutch senders declare, `UNICODE UTF-8`, `ASCII`;
  empty: UTF-8, else cp1252); bare line feeds and CR LF as segment separators are
  normalised to CR; MLLP frame bytes in files are dropped;
- appointment id SCH-2.1 (filler), else SCH-1.1 (placer); type SCH-8.1, else SCH-7.1;
  start and end TQ1-7/TQ1-8, else SCH-11.4/SCH-11.5; status: S15 and S17 cancel, else
  SCH-25 (Cancelled, Deleted, Noshow...); clinic AIL-3.1, else PV1-3.1; agenda AIG-3.1,
  else AIL-3.2;
- BSN: only the PID-3 repetition with identifier type (CX.5) `NNNLD` and assigning
  authority (CX.4.1) `NLMINBIZA`, wherever it stands; never another identifier that happens
  to pass the 11-check. Patient id: the first other PID-3 repetition (type PI when given);
- "BSN verified": no standard field says so; `VerifiedRule` (per source, in the settings)
  names the field and value that mean verified. Default: not verified;
- the message time (MSH-7) is the version that orders updates in the appointment book.

A bad message is an `EntryError` ("message 2") with the ACK code it deserves: AR when the
message cannot be taken at all (not HL7, not SIU, unsupported event or character set), AE
when it is SIU but its content is unusable. Messages never repeat a value from the input.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hl7

from prefetch.domain.people import Appointment, AppointmentStatus, Patient
from prefetch.errors import InvalidValueError
from prefetch.sources import values
from prefetch.sources.intake import EntryError, IntakeResult, Received

EVENTS = ("S12", "S13", "S14", "S15", "S17")
_CANCELLING = {"S15", "S17"}
_CHARSETS = {
    "": None,
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/15": "iso-8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
}
_FIELD_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,2}))?$")
_HL7_TS = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


class MessageProblem(ValueError):
    """A message cannot be used; `ack` is AR (reject) or AE (application error)."""

    def __init__(self, message: str, ack: str = "AE") -> None:
        super().__init__(message)
        self.ack = ack


@dataclass(frozen=True, slots=True)
class VerifiedRule:
    """Which field holding which value means "BSN verified" at this hospital."""

    segment: str = ""
    field: int = 0
    component: int = 1
    value: str = ""

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str] | None) -> VerifiedRule:
        """From `{"field": "PID-32", "value": "VIDE"}` (component optional: `ZPI-2.1`)."""
        if not mapping:
            return cls()
        m = _FIELD_PATH.match(str(mapping.get("field", "")).strip().upper())
        if m is None or not str(mapping.get("value", "")).strip():
            raise InvalidValueError('verified mapping must be like {field = "PID-32", value = "Y"}')
        return cls(m.group(1), int(m.group(2)), int(m.group(3) or 1), str(mapping["value"]))

    def applies(self, msg: Any) -> bool:
        if not self.segment:
            return False
        return any(
            pick(seg, self.field, 0, self.component - 1).strip() == self.value
            for seg in _segments(msg, self.segment)
        )


def pick(segment: Any, field: int, *path: int) -> str:
    """A field, repetition, component or subcomponent as text; "" when absent."""
    if field >= len(segment):
        return ""
    node: Any = segment[field]
    for index in path:
        if isinstance(node, str):
            if index != 0:
                return ""
            continue
        if index >= len(node):
            return ""
        node = node[index]
    return str(node)


def _segments(msg: Any, name: str) -> list[Any]:
    return [seg for seg in msg if str(seg[0]) == name]


def _repetitions(segment: Any, field: int) -> int:
    if field >= len(segment) or isinstance(segment[field], str):
        return 1
    return max(1, len(segment[field]))


def hl7_time(text: str) -> dt.datetime:
    """An HL7 TS to minute precision; without an offset it is Europe/Amsterdam."""
    m = _HL7_TS.match(text.strip())
    if m is None:
        raise values.ValueProblem("not an HL7 date-time to the minute (YYYYMMDDHHMM[SS][+ZZZZ])")
    year, month, day, hour, minute, second, offset = m.groups()
    try:
        naive = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0)
        )
        if offset is None:
            return values.local(naive)
        sign = 1 if offset[0] == "+" else -1
        delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        return values.in_range(naive.replace(tzinfo=dt.timezone(sign * delta)))
    except ValueError as exc:
        if isinstance(exc, values.ValueProblem):
            raise
        raise values.ValueProblem("not a valid date-time") from None


def split_messages(data: bytes) -> list[bytes]:
    """Messages of a file: MLLP frames dropped, any line ending to CR, split at MSH."""
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"\r")
    data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    messages: list[bytes] = []
    for segment in data.split(b"\r"):
        if not segment.strip():
            continue
        if segment.startswith((b"FHS", b"BHS", b"BTS", b"FTS")):
            continue
        if segment.startswith(b"MSH") or not messages:
            messages.append(segment)
        else:
            messages[-1] += b"\r" + segment
    return messages


def decode_message(raw: bytes) -> str:
    """The message text in the character set its MSH-18 declares."""
    raw = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\x0b\x1c\r ")
    if not raw.startswith(b"MSH") or len(raw) < 8:
        raise MessageProblem("not an HL7v2 message: it must start with an MSH segment", "AR")
    sep = raw[3:4]
    msh = raw.split(b"\r", 1)[0].split(sep)
    declared = msh[17].decode("latin-1").strip().upper() if len(msh) > 17 else ""
    rep_sep = raw[5:6] if len(raw) > 5 else b"~"
    declared = declared.split(rep_sep.decode("latin-1"), 1)[0] if rep_sep else declared
    if declared not in _CHARSETS:
        raise MessageProblem("MSH-18 names a character set we do not read", "AR")
    encoding = _CHARSETS[declared]
    try:
        if encoding is None:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("cp1252")
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise MessageProblem("bytes do not match the character set of MSH-18", "AR") from None


def parse_text(text: str) -> Any:
    try:
        return hl7.parse(text)
    except Exception:
        raise MessageProblem("not a parseable HL7v2 message", "AR") from None


def _identity(pid: Any) -> tuple[str, str]:
    """(the BSN text or "", the hospital patient id or "") from PID-3's repetitions."""
    bsn = ""
    local = ""
    fallback = ""
    for rep in range(_repetitions(pid, 3)):
        number = pick(pid, 3, rep, 0).strip()
        authority = pick(pid, 3, rep, 3, 0).strip().upper()
        kind = pick(pid, 3, rep, 4).strip().upper()
        if kind == "NNNLD" and authority == "NLMINBIZA":
            bsn = bsn or number
        elif number:
            if kind == "PI" and not local:
                local = number
            fallback = fallback or number
    return bsn, local or fallback


def _status(event: str, sch: Any) -> AppointmentStatus:
    if event in _CANCELLING:
        return AppointmentStatus.CANCELLED
    filler = pick(sch, 25, 0, 0).strip()
    try:
        return values.status(filler)
    except values.ValueProblem:
        return AppointmentStatus.BOOKED  # Pending, Waitlist, Overbook...: still planned


def _first(*candidates: str) -> str:
    return next((c.strip() for c in candidates if c.strip()), "")


def message_to_received(msg: Any, rule: VerifiedRule) -> Received:
    """One parsed SIU message -> the appointment it states; raises MessageProblem."""
    msh = msg.segment("MSH")
    if pick(msh, 9, 0, 0).strip() != "SIU":
        raise MessageProblem("not an SIU message (MSH-9 must be SIU)", "AR")
    event = pick(msh, 9, 0, 1).strip()
    if event not in EVENTS:
        raise MessageProblem(f"unsupported event: use one of {', '.join(EVENTS)}", "AR")
    schs = _segments(msg, "SCH")
    pids = _segments(msg, "PID")
    if not schs or not pids:
        raise MessageProblem("SIU message without SCH or PID segment")
    sch, pid = schs[0], pids[0]
    tq1 = _segments(msg, "TQ1")
    ail = _segments(msg, "AIL")
    aig = _segments(msg, "AIG")
    pv1 = _segments(msg, "PV1")
    appt_id = _first(pick(sch, 2, 0, 0), pick(sch, 1, 0, 0))
    start_text = _first(pick(tq1[0], 7, 0, 0) if tq1 else "", pick(sch, 11, 0, 3))
    end_text = _first(pick(tq1[0], 8, 0, 0) if tq1 else "", pick(sch, 11, 0, 4))
    clinic = _first(pick(ail[0], 3, 0, 0) if ail else "", pick(pv1[0], 3, 0, 0) if pv1 else "")
    agenda = _first(pick(aig[0], 3, 0, 0) if aig else "", pick(ail[0], 3, 0, 1) if ail else "")
    kind = _first(pick(sch, 8, 0, 0), pick(sch, 7, 0, 0))
    bsn_text, local = _identity(pid)
    for what, value in (
        ("appointment id (SCH-2 or SCH-1)", appt_id),
        ("start (TQ1-7 or SCH-11.4)", start_text),
        ("clinic (AIL-3 or PV1-3)", clinic),
        ("appointment type (SCH-8 or SCH-7)", kind),
        ("patient id (PID-3)", local),
    ):
        if not value:
            raise MessageProblem(f"{what} is missing")
    try:
        start = hl7_time(start_text)
        end = hl7_time(end_text) if end_text else None
        version_text = pick(msh, 7, 0, 0).strip()
        version = hl7_time(version_text) if version_text else None
        bsn, bsn_invalid = values.bsn(bsn_text)
        patient = Patient(
            local_id=values.code(local),
            bsn=bsn,
            bsn_verified=bsn is not None and rule.applies(msg),
            bsn_invalid=bsn_invalid,
        )
        appointment = Appointment(
            id=values.code(appt_id),
            patient=patient,
            clinic=values.code(clinic).upper(),
            start=start,
            end=end,
            appointment_type=values.code(kind),
            status=_status(event, sch),
            agenda=values.code(agenda) or None,
        )
    except (values.ValueProblem, InvalidValueError) as exc:
        text = exc.message if isinstance(exc, InvalidValueError) else str(exc)
        raise MessageProblem(text) from None
    return Received(appointment, version)


def control_id(text: str) -> str:
    """MSH-10 of a decoded message, "" when it cannot be found (for the ACK)."""
    first = text.split("\r", 1)[0]
    if len(first) < 4:
        return ""
    fields = first.split(first[3])
    return fields[9][:40] if len(fields) > 9 and fields[9].isprintable() else ""


class Hl7v2Source:
    """`AppointmentSource` for files of SIU messages."""

    format = "hl7v2"

    def __init__(self, rule: VerifiedRule | None = None) -> None:
        self.rule = rule or VerifiedRule()

    def read_bytes(self, data: bytes, *, file: str) -> IntakeResult:
        result = IntakeResult()
        for number, raw in enumerate(split_messages(data), start=1):
            try:
                msg = parse_text(decode_message(raw))
                result.received.append(message_to_received(msg, self.rule))
            except MessageProblem as exc:
                result.errors.append(EntryError(file, f"message {number}", str(exc)))
        return result
