"""Lenient readers for HL7v3 data types (II, CD, PQ, IVL_PQ, GTS) into domain values.

Readers never raise on odd content: a value that cannot be read is recorded in the
`Deviations` collector and kept as far as possible (an unparsable number becomes `None`
with the unit kept). Child elements are visited once, in document order, and checked
against the expected order of the schema type, so that wrong order and unknown elements
are reported without a second pass (see `scan`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from lxml import etree

from prefetch.domain.coded import Code, CodedValue, Identifier, Quantity, QuantityRange, Timing
from prefetch.hl7v3.xmlbuild import HL7, XSI_TYPE

_PREFIX = "{" + HL7 + "}"
_PLEN = len(_PREFIX)


class Deviations:
    """Collects schema deviations seen while reading one dispense (or one message)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)


Kids = dict[str, list[etree._Element]]
_ELEMENT = etree.Element  # iterchildren filter: elements only (no comments / PIs)
_LOCAL: dict[str, str] = {}


def _local_name(tag: str) -> str:
    """Local name of an HL7-namespace tag (memoised); other namespaces keep Clark form."""
    name = tag[_PLEN:] if tag.startswith(_PREFIX) else tag
    if len(_LOCAL) < 4096:
        _LOCAL[tag] = name
    return name


def scan(el: etree._Element, order: dict[str, int], where: str, dev: Deviations) -> Kids:
    """Group the element children of `el` by local name, checking names and order.

    `order` maps each child name the schema allows to its position in the sequence.
    Unknown names and out-of-order children are recorded as deviations and still returned.
    """
    kids: Kids = {}
    last = -1
    prev = ""
    local = _LOCAL
    for c in el.iterchildren(_ELEMENT):
        tag = c.tag
        name = local.get(tag)
        if name is None:
            name = _local_name(tag)
        pos = order.get(name)
        if pos is None:
            dev.add(f"unexpected element {name} in {where}")
        else:
            if pos < last:
                dev.add(f"element {prev} out of order (before {name}) in {where}")
            last = pos
            prev = name
        found = kids.get(name)
        if found is None:
            kids[name] = [c]
        else:
            found.append(c)
    return kids


def one(kids: Kids, name: str) -> etree._Element | None:
    found = kids.get(name)
    return found[0] if found else None


def text_of(el: etree._Element | None) -> str | None:
    """The element's text content (all descendants), or None when empty/whitespace."""
    if el is None:
        return None
    text = el.text if len(el) == 0 else "".join(t for t in el.itertext() if isinstance(t, str))
    if text is None or not text.strip():
        return None
    return text


def identifier(el: etree._Element) -> Identifier:
    get = el.get
    return Identifier(root=get("root"), extension=get("extension"), null_flavor=get("nullFlavor"))


def decimal(raw: str | None, where: str, dev: Deviations) -> Decimal | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        dev.add(f"not a number in {where}")
        return None
    if not value.is_finite():
        dev.add(f"not a finite number in {where}")
        return None
    return value


def code(el: etree._Element, dev: Deviations) -> Code:
    """CD/CE/CV/CS with original text and nested translations."""
    get = el.get
    original: str | None = None
    translations: list[Code] = []
    for c in el.iterchildren(_ELEMENT):
        tag = c.tag
        name = tag[_PLEN:] if tag.startswith(_PREFIX) else tag
        if name == "translation":
            translations.append(code(c, dev))
        elif name == "originalText":
            original = text_of(c)
        elif name in ("qualifier", "group"):
            dev.add(f"not kept: code {name}")
        else:
            dev.add(f"unexpected element {name} in a code")
    return Code(
        code=get("code"),
        system=get("codeSystem"),
        display=get("displayName"),
        original_text=original,
        null_flavor=get("nullFlavor"),
        translations=tuple(translations),
    )


def quantity(el: etree._Element, dev: Deviations) -> Quantity:
    """PQ with PQR translations (value in a coded unit)."""
    get = el.get
    translations: list[CodedValue] = []
    for c in el.iterchildren(_ELEMENT):
        if c.tag == _PREFIX + "translation":
            translations.append(
                CodedValue(
                    value=decimal(c.get("value"), "a quantity translation", dev), code=code(c, dev)
                )
            )
        else:
            dev.add("unexpected element in a quantity")
    return Quantity(
        value=decimal(get("value"), "a quantity", dev),
        unit=get("unit"),
        null_flavor=get("nullFlavor"),
        translations=tuple(translations),
    )


_IVL_PQ = {"low": 0, "center": 1, "width": 2, "high": 3}


def quantity_range(el: etree._Element, dev: Deviations) -> QuantityRange:
    """IVL_PQ as used for doses: center, or low/high. A plain @value reads as center."""
    kids = scan(el, _IVL_PQ, "doseQuantity", dev)
    low, center, high = one(kids, "low"), one(kids, "center"), one(kids, "high")
    if center is None and low is None and high is None and el.get("value") is not None:
        return QuantityRange(center=quantity(el, dev))
    return QuantityRange(
        low=quantity(low, dev) if low is not None else None,
        center=quantity(center, dev) if center is not None else None,
        high=quantity(high, dev) if high is not None else None,
    )


_KINDS = {
    "IVL_TS": "IVL",
    "PIVL_TS": "PIVL",
    "SXPR_TS": "SXPR",
    "TS": "TS",
    "SXCM_TS": "TS",
    "EIVL_TS": "EIVL",
    "IVXB_TS": "TS",
}
_IVL_TS = {"low": 0, "center": 1, "width": 2, "high": 3}
_PIVL_TS = {"phase": 0, "period": 1}
_SXPR_TS = {"comp": 0}


def timing(el: etree._Element, dev: Deviations) -> Timing:
    """GTS: TS, IVL_TS, PIVL_TS or SXPR_TS (nested), kept as written."""
    raw_type = el.get(XSI_TYPE)
    if raw_type is not None:
        local = raw_type.rsplit(":", 1)[-1]
        kind = _KINDS.get(local)
        if kind is None:
            dev.add(f"unknown timing type {local}")
            kind = local
    elif len(el):
        kind = "IVL"
    else:
        kind = "TS"
    operator = el.get("operator")
    if kind == "SXPR":
        kids = scan(el, _SXPR_TS, "an SXPR_TS", dev)
        comps = tuple(timing(c, dev) for c in kids.get("comp", ()))
        return Timing(kind="SXPR", operator=operator, components=comps)
    if kind == "PIVL":
        kids = scan(el, _PIVL_TS, "a PIVL_TS", dev)
        phase = one(kids, "phase")
        period = one(kids, "period")
        phase_low: str | None = None
        phase_center: str | None = None
        phase_width: Quantity | None = None
        if phase is not None:
            pk = scan(phase, _IVL_TS, "a PIVL_TS phase", dev)
            low_el, width_el = one(pk, "low"), one(pk, "width")
            center_el = one(pk, "center")
            phase_low = low_el.get("value") if low_el is not None else None
            phase_center = center_el.get("value") if center_el is not None else None
            if one(pk, "high") is not None:
                dev.add("not kept: PIVL_TS/phase/high")
            phase_width = quantity(width_el, dev) if width_el is not None else None
        inst = el.get("institutionSpecified")
        return Timing(
            kind="PIVL",
            operator=operator,
            period=quantity(period, dev) if period is not None else None,
            phase_low=phase_low,
            phase_width=phase_width,
            phase_center=phase_center,
            institution_specified=None if inst is None else inst == "true",
        )
    if kind == "IVL":
        kids = scan(el, _IVL_TS, "an IVL_TS", dev)
        low_el, high_el, width_el = one(kids, "low"), one(kids, "high"), one(kids, "width")
        if "center" in kids:
            dev.add("not kept: IVL_TS/center")
        return Timing(
            kind="IVL",
            operator=operator,
            low=low_el.get("value") if low_el is not None else el.get("value"),
            high=high_el.get("value") if high_el is not None else None,
            width=quantity(width_el, dev) if width_el is not None else None,
        )
    if len(el):
        dev.add(f"not kept: content of a {kind} timing")
    return Timing(kind=kind, operator=operator, low=el.get("value"))
