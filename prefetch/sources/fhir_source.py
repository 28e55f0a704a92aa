"""FHIR `Appointment` resources and Bundles (JSON), R4 and STU3, read as plain JSON.

- A file holds one Appointment or a Bundle; bundled and contained Patient, Location and
  HealthcareService resources are looked up by reference (`Patient/123`, the entry's
  `fullUrl`, or `#id` for contained ones). Other resource types are ignored.
- BSN: the identifier with system `http://fhir.nl/fhir/NamingSystem/bsn` on the referenced
  Patient or on the participant's `actor.identifier`. Patient id: another identifier of the
  Patient, else the Patient's id. No standard element says the BSN was verified: not verified.
- Status: `cancelled` and `entered-in-error` are cancellations, `noshow` a no-show, the
  rest (proposed, pending, booked, arrived, fulfilled, checked-in, waitlist) planned.
- Clinic: the participant Location's identifier (else its id), else `specialty[0]`'s code;
  agenda: the participant HealthcareService's identifier (else id); type:
  `appointmentType.coding[0].code`, else `serviceType[0].coding[0].code`.
- `meta.lastUpdated` is the version that orders updates in the appointment book.

A bad entry is an `EntryError` ("entry 3", 1-based in the Bundle) and the others go on;
invalid JSON, or JSON that is neither an Appointment nor a Bundle, cannot be read at all.
"""

from __future__ import annotations

import json
from typing import Any

from prefetch.domain.people import Appointment, AppointmentStatus, Patient
from prefetch.errors import InvalidValueError
from prefetch.sources import values
from prefetch.sources.intake import EntryError, IntakeResult, Received, SourceUnreadable

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
_CANCELLED = {"cancelled", "entered-in-error"}
_STATUSES = {
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "checked-in",
    "waitlist",
    "noshow",
    *_CANCELLED,
}


class EntryProblem(ValueError):
    pass


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _code(concept: object) -> str:
    for coding in _list(_dict(concept).get("coding")):
        code = _str(_dict(coding).get("code"))
        if code:
            return code
    return ""


def _identifiers(resource: dict[str, Any]) -> tuple[str, str]:
    """(BSN text, first other identifier value) of a resource or reference."""
    bsn = ""
    other = ""
    for item in _list(resource.get("identifier")) or [resource.get("identifier")]:
        ident = _dict(item)
        value = _str(ident.get("value"))
        if _str(ident.get("system")) == BSN_SYSTEM:
            bsn = bsn or value
        elif value:
            other = other or value
    return bsn, other


class _Index:
    """Resources of a Bundle and of one Appointment's `contained`, by reference."""

    def __init__(self, bundle_entries: list[Any]) -> None:
        self.shared: dict[str, dict[str, Any]] = {}
        for entry in bundle_entries:
            resource = _dict(_dict(entry).get("resource"))
            kind, rid = _str(resource.get("resourceType")), _str(resource.get("id"))
            if kind and rid:
                self.shared[f"{kind}/{rid}"] = resource
            full = _str(_dict(entry).get("fullUrl"))
            if full:
                self.shared[full] = resource

    def find(self, reference: str, contained: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if reference.startswith("#"):
            return contained.get(reference[1:], {})
        if reference in self.shared:
            return self.shared[reference]
        tail = "/".join(reference.rstrip("/").split("/")[-2:])
        return self.shared.get(tail, {})


def _kind(reference: str, resource: dict[str, Any]) -> str:
    kind = _str(resource.get("resourceType"))
    if kind:
        return kind
    parts = reference.lstrip("#").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def appointment_from(resource: dict[str, Any], index: _Index) -> Received:
    """One Appointment resource -> the appointment it states; raises EntryProblem."""
    if _str(resource.get("resourceType")) != "Appointment":
        raise EntryProblem("not an Appointment resource")
    contained = {_str(_dict(c).get("id")): _dict(c) for c in _list(resource.get("contained"))}
    status_text = _str(resource.get("status"))
    if status_text not in _STATUSES:
        raise EntryProblem("status is missing or not an Appointment status")
    bsn_text, local, clinic, agenda = "", "", "", ""
    for participant in _list(resource.get("participant")):
        actor = _dict(_dict(participant).get("actor"))
        reference = _str(actor.get("reference"))
        target = index.find(reference, contained) if reference else {}
        kind = _kind(reference, target)
        if kind == "Patient" or (not kind and _identifiers(actor)[0]):
            found_bsn, other = _identifiers(target)
            ref_bsn, ref_other = _identifiers(actor)
            bsn_text = bsn_text or found_bsn or ref_bsn
            local = local or other or ref_other or _str(target.get("id"))
            if not local and reference:
                local = reference.rsplit("/", 1)[-1].lstrip("#")
        elif kind == "Location":
            clinic = clinic or _identifiers(target)[1] or _str(target.get("id"))
        elif kind == "HealthcareService":
            agenda = agenda or _identifiers(target)[1] or _str(target.get("id"))
    clinic = clinic or _code((_list(resource.get("specialty")) or [None])[0])
    kind_code = _code(resource.get("appointmentType")) or _code(
        (_list(resource.get("serviceType")) or [None])[0]
    )
    appt_id = _str(resource.get("id")) or _identifiers(resource)[1]
    if not local and bsn_text and appt_id:
        local = f"appointment:{appt_id}"  # only the BSN is known: group by it
    for what, value in (
        ("id", appt_id),
        ("start", _str(resource.get("start"))),
        ("clinic (participant Location or specialty)", clinic),
        ("appointmentType (or serviceType)", kind_code),
        ("patient (participant Patient)", local),
    ):
        if not value:
            raise EntryProblem(f"{what} is missing")
    try:
        start = values.when(_str(resource.get("start")))
        end_text = _str(resource.get("end"))
        updated = _str(_dict(resource.get("meta")).get("lastUpdated"))
        bsn, bsn_invalid = values.bsn(bsn_text)
        if status_text in _CANCELLED:
            status = AppointmentStatus.CANCELLED
        elif status_text == "noshow":
            status = AppointmentStatus.NOSHOW
        else:
            status = AppointmentStatus.BOOKED
        appointment = Appointment(
            id=values.code(appt_id),
            patient=Patient(local_id=values.code(local), bsn=bsn, bsn_invalid=bsn_invalid),
            clinic=values.code(clinic).upper(),
            start=start,
            end=values.when(end_text) if end_text else None,
            appointment_type=values.code(kind_code),
            status=status,
            agenda=values.code(agenda) or None,
        )
        return Received(appointment, values.when(updated) if updated else None)
    except values.ValueProblem as exc:
        raise EntryProblem(str(exc)) from None
    except InvalidValueError as exc:
        raise EntryProblem(exc.message) from None


def parse_fhir(text: str, *, file: str = "<fhir>") -> IntakeResult:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise SourceUnreadable(file, "not valid JSON") from None
    if not isinstance(document, dict):
        raise SourceUnreadable(file, "expected a JSON object: an Appointment or a Bundle")
    kind = document.get("resourceType")
    result = IntakeResult()
    if kind == "Appointment":
        try:
            result.received.append(appointment_from(document, _Index([])))
        except EntryProblem as exc:
            result.errors.append(EntryError(file, "entry 1", str(exc)))
        return result
    if kind != "Bundle":
        raise SourceUnreadable(file, "resourceType must be Appointment or Bundle")
    entries = _list(document.get("entry"))
    index = _Index(entries)
    for number, entry in enumerate(entries, start=1):
        resource = _dict(_dict(entry).get("resource"))
        if not resource:
            result.errors.append(EntryError(file, f"entry {number}", "entry without a resource"))
            continue
        if resource.get("resourceType") != "Appointment":
            continue
        try:
            result.received.append(appointment_from(resource, index))
        except EntryProblem as exc:
            result.errors.append(EntryError(file, f"entry {number}", str(exc)))
    return result


class FhirSource:
    """`AppointmentSource` for FHIR JSON (R4 and STU3 read alike)."""

    format = "fhir"

    def read_bytes(self, data: bytes, *, file: str) -> IntakeResult:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SourceUnreadable(file, "FHIR JSON must be UTF-8") from None
        return parse_fhir(text, file=file)
