"""A medication dispense as received from one pharmacy through the LSP.

Every field of the `medicationDispenseEvent` (CMET COCT_MT924000NL02) that AORTA.md
section 3 lists has a place here. A dispense is identified by its own globally unique id
(root + extension): that is the deduplication key in the store. Provenance (which pharmacy,
which LSP message, which query, when, under whose responsibility) is kept next to it in
`DispenseProvenance`; the dispense itself is what the pharmacy said.

`to_json()` / `dispense_from_json()` give a lossless, JSON-ready form for the store and the
FHIR API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prefetch.domain import oids
from prefetch.domain.coded import (
    Code,
    CodedValue,
    Identifier,
    Quantity,
    QuantityRange,
    Timing,
)
from prefetch.errors import InvalidValueError


@dataclass(frozen=True, slots=True)
class Ingredient:
    """A magistral ingredient: active or other, with its strength as a ratio."""

    active: bool
    code: Code
    numerator: Quantity | None = None
    denominator: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Product:
    """The dispensed product: coded (ZI/HPK/GPK/PRK) or magistral (ingredients)."""

    code: Code
    description: str | None = None
    ingredients: tuple[Ingredient, ...] = ()
    form: Code | None = None  # MedicationKind/formCode (added by hl7v3)

    @property
    def display_name(self) -> str | None:
        return self.code.display or self.code.original_text or self.description

    def code_in(self, system: str) -> str | None:
        found = self.code.in_system(system)
        return found.code if found else None


@dataclass(frozen=True, slots=True)
class Dosage:
    """One `medicationAdministrationRequest`: instructions, structured where present."""

    text: str | None = None
    status: str | None = None
    timing: tuple[Timing, ...] = ()
    dose: QuantityRange | None = None
    max_dose: tuple[Quantity, ...] = ()
    route: Code | None = None
    instructions: tuple[Code, ...] = ()  # NHG table 25 (2.16.840.1.113883.2.4.4.5)
    # Added by hl7v3: `precondition/observationEventCriterion/code` (e.g. NHG-25 1137
    # "zo nodig"), and the denominators of `maxDoseQuantity` (RTO), parallel to `max_dose`
    # (None where a max dose has no denominator).
    preconditions: tuple[Code, ...] = ()
    max_dose_per: tuple[Quantity | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Party:
    """A person/role in the dispense (prescriber, pharmacist, performer)."""

    ids: tuple[Identifier, ...] = ()
    role: Code | None = None
    name: str | None = None
    organization_ids: tuple[Identifier, ...] = ()
    organization_name: str | None = None

    def id_in(self, root: str) -> str | None:
        return next((i.extension for i in self.ids if i.root == root), None)


@dataclass(frozen=True, slots=True)
class Dispense:
    """What one pharmacy reported for one dispense event."""

    id: Identifier
    status: str | None = None
    dispensed_on: dt.date | None = None  # effectiveTime/@value
    period_start: dt.date | None = None  # effectiveTime/low (clinical "virtual")
    period_end: dt.date | None = None  # effectiveTime/high
    quantity: Quantity | None = None
    expected_use: Quantity | None = None  # expectedUseTime/width (usually days)
    product: Product | None = None
    dosages: tuple[Dosage, ...] = ()
    prescriber: Party | None = None
    prescription_id: Identifier | None = None
    performer: Party | None = None
    responsible: Party | None = None  # pharmacist (role 17.000) + pharmacy URA
    deviations: tuple[str, ...] = ()  # schema deviations seen while parsing
    # Added by hl7v3: effectiveTime/@value as written (HL7 TS) when it has a time of day.
    dispensed_time: str | None = None

    def __post_init__(self) -> None:
        if not self.id.root:
            raise InvalidValueError("dispense id must have a root")

    @property
    def key(self) -> tuple[str, str]:
        """The deduplication key: (root, extension or "")."""
        return (self.id.root or "", self.id.extension or "")

    @property
    def product_code(self) -> Code | None:
        return self.product.code if self.product else None

    @property
    def expected_use_days(self) -> Decimal | None:
        q = self.expected_use
        if q is None or q.value is None:
            return None
        factors = {"d": Decimal(1), "wk": Decimal(7), "h": Decimal(1) / 24}
        factor = factors.get(q.unit or "d")
        return q.value * factor if factor is not None else None

    @property
    def pharmacy_ura(self) -> str | None:
        for party in (self.responsible, self.performer):
            if party:
                for org in party.organization_ids:
                    if org.root == oids.URA and org.extension:
                        return org.extension
        return None

    def to_json(self) -> dict[str, Any]:
        encoded = _encode(self)
        assert isinstance(encoded, dict)
        return encoded


@dataclass(frozen=True, slots=True)
class DispenseProvenance:
    """Where a stored dispense came from (BgZ "external data" metadata)."""

    pharmacy_ura: str | None
    pharmacy_name: str | None
    source_application_id: str | None  # AORTA application id of the pharmacy system
    source_system_uzi: str | None  # UZI system number of the pharmacy system
    batch_message_id: str | None  # MCCI_IN200101 id (root^extension)
    item_message_id: str | None  # QURX_IN990113NL id (root^extension)
    query_id: str  # our queryId (root^extension)
    fetched_at: dt.datetime  # aware UTC
    run_id: str | None
    responsible_uzi: str  # the overseer under whose responsibility we asked
    responsible_name: str | None = None

    def __post_init__(self) -> None:
        if self.fetched_at.tzinfo is None:
            raise InvalidValueError("fetched_at must be timezone-aware")


# ---------------------------------------------------------------- JSON encoding
_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Identifier,
        Code,
        CodedValue,
        Quantity,
        QuantityRange,
        Timing,
        Ingredient,
        Product,
        Dosage,
        Party,
        Dispense,
    )
}


# Per class: (field name, default or _REQUIRED). dataclasses.fields() is slow on a hot path.
_REQUIRED = object()
_FIELDS: dict[type, tuple[tuple[str, object], ...]] = {
    cls: tuple(
        (f.name, _REQUIRED if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(cls)
    )
    for cls in _TYPES.values()
}


def _encode(value: object) -> object:
    fields = _FIELDS.get(type(value))
    if fields is not None:
        out: dict[str, object] = {"_t": type(value).__name__}
        for name, default in fields:
            v = getattr(value, name)
            if default is not _REQUIRED and v == default:
                continue  # defaults are left out; a required None is kept as null
            out[name] = _encode(v)
        return out
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Decimal):
        return {"_d": str(value)}
    if isinstance(value, dt.date):
        return {"_date": value.isoformat()}
    return value


def _decode(value: object) -> object:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        if "_d" in value:
            return Decimal(value["_d"])
        if "_date" in value:
            return dt.date.fromisoformat(value["_date"])
        cls = _TYPES[value["_t"]]
        kwargs = {k: _decode(v) for k, v in value.items() if k != "_t"}
        for name, default in _FIELDS[cls]:  # rows written before required nulls were kept
            if default is _REQUIRED and name not in kwargs:
                kwargs[name] = None
        return cls(**kwargs)
    return value


def dispense_from_json(data: dict[str, Any]) -> Dispense:
    """Inverse of `Dispense.to_json()`."""
    result = _decode(data)
    if not isinstance(result, Dispense):
        raise InvalidValueError("JSON does not describe a Dispense")
    return result
