"""HL7v3 values to FHIR datatypes: quantities (UCUM with the G-Standaard unit as
translation), codings by OID, identifiers, dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prefetch.domain import oids
from prefetch.domain.coded import Code, Identifier, Quantity
from prefetch.fhir.systems import EXT_PQ_TRANSLATION, UCUM, URI_SYSTEM, oid_uri
from prefetch.hl7v3.read import parse_date, parse_ts

_AMSTERDAM = ZoneInfo("Europe/Amsterdam")

Json = dict[str, Any]

#: FHIR `decimal` keeps the precision as written ("1.0000" stays "1.0000" in JSON text);
#: a JSON number is the closest a dict can carry, so integral values become ints.


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def coding(code: Code) -> Json | None:
    """A Coding for a code with a code system (OIDs as urn:oid:), or None."""
    if not code.code or not code.system:
        return None
    out: Json = {"system": oid_uri(code.system), "code": code.code}
    if code.display:
        out["display"] = code.display
    return out


def concept(code: Code | None) -> Json | None:
    """CodeableConcept from a code and its translations; original text as `text`."""
    if code is None:
        return None
    codings = [c for c in (coding(x) for x in code.all_codes()) if c is not None]
    out: Json = {}
    if codings:
        out["coding"] = codings
    text = code.original_text or (None if codings else code.display)
    if text:
        out["text"] = text
    return out or None


def quantity(q: Quantity | None) -> Json | None:
    """A UCUM Quantity (HL7 PQ without a unit is "1"), with the G-Standaard unit
    (table 2, 2.16.840.1.113883.2.4.4.1.900.2) as iso21090 PQ translation."""
    if q is None or q.value is None:
        return None
    unit = q.unit or "1"
    out: Json = {"value": number(q.value), "unit": unit, "system": UCUM, "code": unit}
    translations = []
    for t in q.translations:
        if t.code.system == oids.GSTD_UNIT and t.code.code:
            value = t.value if t.value is not None else q.value
            tq: Json = {
                "value": number(value),
                "system": oid_uri(oids.GSTD_UNIT),
                "code": t.code.code,
            }
            if t.code.display:
                tq["unit"] = t.code.display
            translations.append({"url": EXT_PQ_TRANSLATION, "valueQuantity": tq})
    if translations:
        out["extension"] = translations
    return out


def days(value: Decimal) -> Json:
    return {"value": number(value), "unit": "dag", "system": UCUM, "code": "d"}


def duration(q: Quantity | None) -> Json | None:
    """A UCUM time duration (HL7 width), None without value or unit."""
    if q is None or q.value is None or not q.unit:
        return None
    return {"value": number(q.value), "unit": q.unit, "system": UCUM, "code": q.unit}


def identifier(ident: Identifier) -> Json:
    """`urn:oid:<root>` | `<extension>`; an id with only a root is that OID as a URI."""
    if ident.extension:
        return {"system": oid_uri(ident.root or ""), "value": ident.extension}
    return {"system": URI_SYSTEM, "value": oid_uri(ident.root or "")}


def id_from_key(key: str | None) -> Identifier | None:
    """`root^extension` (how the store keeps message and query ids) to an Identifier."""
    if not key:
        return None
    root, _, extension = key.partition("^")
    return Identifier(root=root or None, extension=extension or None)


def fhir_date(day: dt.date) -> str:
    return day.isoformat()


def fhir_datetime(hl7_ts: str | None, day: dt.date | None) -> str | None:
    """The HL7 TS as a FHIR dateTime when it has a time of day (Europe/Amsterdam when it
    carries no offset), else the date alone."""
    if hl7_ts:
        moment = parse_ts(hl7_ts)
        if moment is not None and len(hl7_ts) > 8:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_AMSTERDAM)
            return moment.isoformat()
    return day.isoformat() if day else None


def hl7_date(value: str | None) -> str | None:
    """An HL7 TS (at least a day) as a FHIR date or dateTime; None if unreadable."""
    if not value or len(value) < 8:
        return None
    day = parse_date(value)
    return fhir_datetime(value, day) if day else None
