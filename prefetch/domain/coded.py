"""HL7v3 data types as plain values: identifiers, codes, quantities, null flavors.

A `nullFlavor` is kept as a value, never turned into an empty string: the desk shows
"unknown" / "masked" where the source said so, and an absent element stays `None`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

NULL_FLAVOR_MEANINGS = {
    "NI": "no information",
    "NA": "not applicable",
    "UNK": "unknown",
    "ASKU": "asked but unknown",
    "NAV": "temporarily unavailable",
    "NASK": "not asked",
    "MSK": "masked",
    "OTH": "other",
    "NINF": "negative infinity",
    "PINF": "positive infinity",
    "TRC": "trace",
    "QS": "sufficient quantity",
}


def null_flavor_meaning(code: str | None) -> str | None:
    """Human meaning of a nullFlavor code ("unknown", "masked", ...); None for None."""
    if code is None:
        return None
    return NULL_FLAVOR_MEANINGS.get(code, f"null ({code})")


@dataclass(frozen=True, slots=True)
class Identifier:
    """II: root + extension, or a nullFlavor."""

    root: str | None = None
    extension: str | None = None
    null_flavor: str | None = None

    @property
    def is_null(self) -> bool:
        return self.null_flavor is not None or (self.root is None and self.extension is None)


@dataclass(frozen=True, slots=True)
class Code:
    """CD/CE/CV: a code in a code system, with translations and original text."""

    code: str | None = None
    system: str | None = None
    display: str | None = None
    original_text: str | None = None
    null_flavor: str | None = None
    translations: tuple[Code, ...] = ()

    def all_codes(self) -> tuple[Code, ...]:
        """This code followed by every translation, depth first."""
        out: list[Code] = [self]
        for t in self.translations:
            out.extend(t.all_codes())
        return tuple(out)

    def in_system(self, system: str) -> Code | None:
        """The first code (this or a translation) in `system`, if any."""
        return next((c for c in self.all_codes() if c.system == system), None)


@dataclass(frozen=True, slots=True)
class CodedValue:
    """A PQR translation: a value in a coded unit (e.g. 30 "Stuk" in G-Std table 2)."""

    value: Decimal | None
    code: Code


@dataclass(frozen=True, slots=True)
class Quantity:
    """PQ: value + UCUM unit, optional coded translations, or a nullFlavor."""

    value: Decimal | None = None
    unit: str | None = None
    null_flavor: str | None = None
    translations: tuple[CodedValue, ...] = ()


@dataclass(frozen=True, slots=True)
class QuantityRange:
    """IVL_PQ as used for doses: center, or low/high."""

    low: Quantity | None = None
    center: Quantity | None = None
    high: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    """One component of a GTS / SXPR_TS dosage timing.

    kind "IVL": low/high/width (a use period); kind "PIVL": period (+ phase, a frequency);
    kind "TS": a single point (low). `operator` is the SXPR operator ("A", "I", "E", "P").
    Values are kept as written (HL7 TS strings, PQ value + unit).
    """

    kind: str
    low: str | None = None
    high: str | None = None
    width: Quantity | None = None
    period: Quantity | None = None
    phase_low: str | None = None
    phase_width: Quantity | None = None
    operator: str | None = None
    institution_specified: bool | None = None
    components: tuple[Timing, ...] = field(default=())
    phase_center: str | None = None  # added by hl7v3: PIVL phase/center (a time of day)
