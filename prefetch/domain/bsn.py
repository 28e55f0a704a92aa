"""The Burgerservicenummer (BSN) as a validated value.

Rules (Wet algemene bepalingen BSN; the "elfproef"): nine digits d1..d9 with
9*d1 + 8*d2 + ... + 2*d8 - 1*d9 divisible by 11, and not all zeros.

Eight-digit input: BSNs issued before 2007 (as SoFi numbers) can start with a 0, and
spreadsheet exports drop that leading zero. We accept exactly eight digits and pad one
leading zero, as `stdnum.nl.bsn.compact` does, and then apply the full check: a wrongly
padded number fails the 11-check, so padding never makes an invalid number valid. Fewer
than eight digits are refused. Spaces, dots and dashes used as separators are removed.

`str(bsn)` and `repr(bsn)` never show the number: logs and error messages cannot leak it by
accident. Use `bsn.value` where the number is really needed (the HL7 message, the store,
the audit log).
"""

from __future__ import annotations

from dataclasses import dataclass

from prefetch.errors import InvalidValueError

_SEPARATORS = str.maketrans("", "", " .-")
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def normalise_bsn(raw: str) -> str:
    """Strip separators and pad 8-digit input; raise InvalidValueError if not 8/9 digits."""
    digits = raw.strip().translate(_SEPARATORS)
    if not digits.isascii() or not digits.isdigit():
        raise InvalidValueError("BSN must contain only digits", length=len(digits))
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9:
        raise InvalidValueError(
            "BSN must have 9 digits (or 8 without the leading 0)", length=len(digits)
        )
    return digits


def passes_eleven_check(digits: str) -> bool:
    """True when nine ASCII digits pass the BSN 11-check (and are not all zero)."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return False
    if digits == "000000000":
        return False
    total = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=True))
    return total % 11 == 0


@dataclass(frozen=True, slots=True)
class Bsn:
    """A syntactically valid BSN. Construct with `Bsn.parse` for raw input."""

    value: str

    def __post_init__(self) -> None:
        if not passes_eleven_check(self.value):
            raise InvalidValueError("BSN fails the 11-check")

    @classmethod
    def parse(cls, raw: str) -> Bsn:
        return cls(normalise_bsn(raw))

    def __str__(self) -> str:
        return "Bsn(***)"

    def __repr__(self) -> str:
        return "Bsn(***)"

    @property
    def masked(self) -> str:
        """Last three digits only, for display at the desk where a hint helps."""
        return "******" + self.value[-3:]
