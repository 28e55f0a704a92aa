"""Small, fast readers for HL7v3 elements (namespace-aware paths, II, TS)."""

from __future__ import annotations

import datetime as dt
import functools
import re

from lxml import etree

from prefetch.domain.coded import Identifier
from prefetch.hl7v3.xmlbuild import HL7

_TS = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,6}))?(?P<tz>[+-]\d{2,4})?$"
)


@functools.lru_cache(maxsize=512)
def _path(parts: tuple[str, ...]) -> str:
    return "/".join(f"{{{HL7}}}{p}" for p in parts)


def child(el: etree._Element, *path: str) -> etree._Element | None:
    """First descendant along `path` (HL7 namespace), or None."""
    found: etree._Element | None = el.find(_path(path))
    return found


def children(el: etree._Element, *path: str) -> list[etree._Element]:
    """All descendants along `path` (HL7 namespace)."""
    return list(el.iterfind(_path(path)))


def first_text(el: etree._Element, *path: str) -> str | None:
    """Whitespace-normalised text of the first element along `path`, or None."""
    found = child(el, *path)
    if found is None:
        return None
    return element_text(found)


def element_text(el: etree._Element) -> str | None:
    text = "".join(t for t in el.itertext() if isinstance(t, str))
    return text if text.strip() else None


def identifier(el: etree._Element) -> Identifier:
    return Identifier(
        root=el.get("root"), extension=el.get("extension"), null_flavor=el.get("nullFlavor")
    )


def id_key_of(el: etree._Element | None) -> str | None:
    """`root^extension` of an II element, as `params.id_key` writes it."""
    if el is None:
        return None
    return f"{el.get('root') or ''}^{el.get('extension') or ''}"


def parse_ts(value: str | None) -> dt.datetime | None:
    """HL7 TS to a datetime; aware when the value carries an offset. None if not a TS."""
    if not value:
        return None
    m = _TS.match(value.strip())
    if m is None:
        return None
    g = m.groupdict()
    try:
        tz: dt.tzinfo | None = None
        if g["tz"]:
            sign = -1 if g["tz"][0] == "-" else 1
            digits = g["tz"][1:].ljust(4, "0")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        micro = int((g["f"] or "0").ljust(6, "0")) if g["f"] else 0
        return dt.datetime(
            int(g["y"]),
            int(g["mo"] or 1),
            int(g["d"] or 1),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        return None


def parse_date(value: str | None) -> dt.date | None:
    """The date part of an HL7 TS with at least 8 digits; None otherwise."""
    if not value or len(value) < 8:
        return None
    moment = parse_ts(value)
    return moment.date() if moment is not None else None
