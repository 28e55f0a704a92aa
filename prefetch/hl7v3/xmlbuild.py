"""Small helpers for building HL7v3 elements with lxml (namespace, II, TS, CD, PQ).

Builders here never guess: a value the wire cannot hold raises `InvalidValueError`
instead of being dropped silently.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from lxml import etree

from prefetch.domain.coded import Code, CodedValue, Identifier, Quantity
from prefetch.errors import InvalidValueError

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NSMAP: dict[str | None, str] = {None: HL7, "xsi": XSI}
XSI_TYPE = f"{{{XSI}}}type"


def q(tag: str) -> str:
    """Clark name of an HL7 v3 element."""
    return f"{{{HL7}}}{tag}"


def root_element(tag: str) -> etree._Element:
    """A new root element in the HL7 namespace (default namespace + xsi prefix)."""
    return etree.Element(q(tag), nsmap=NSMAP)  # type: ignore[arg-type]  # None = default ns


_UNHOLDABLE = "text contains a character XML cannot hold"


def set_attr(el: etree._Element, key: str, value: str) -> None:
    """`el.set`, raising `InvalidValueError` (not lxml's bare ValueError) for a value XML
    1.0 cannot hold (control character, NUL, lone surrogate)."""
    try:
        el.set(key, value)
    except ValueError as exc:
        raise InvalidValueError(
            _UNHOLDABLE, element=etree.QName(el).localname, attribute=key
        ) from exc


def set_text(el: etree._Element, text: str) -> None:
    """`el.text = text`, raising `InvalidValueError` for text XML 1.0 cannot hold."""
    try:
        el.text = text
    except ValueError as exc:
        raise InvalidValueError(_UNHOLDABLE, element=etree.QName(el).localname) from exc


_CLARK: dict[str, str] = {}


def sub(parent: etree._Element, tag: str, **attrs: str | None) -> etree._Element:
    """Append a child in the HL7 namespace; attributes whose value is None are left out.

    The attributes go to lxml in one dict (one call instead of one per attribute: this is
    the answer builders' hot path). A value XML cannot hold raises `InvalidValueError` and
    leaves `parent` as it was.
    """
    name = _CLARK.get(tag)
    if name is None:
        name = _CLARK.setdefault(tag, q(tag))
    given = {key: value for key, value in attrs.items() if value is not None}
    try:
        return etree.SubElement(parent, name, given)
    except ValueError:
        pass
    # lxml refused a value (and appended nothing): name the attribute in the error
    for key, value in given.items():
        try:
            etree.Element("probe").set(key, value)
        except ValueError as exc:
            raise InvalidValueError(_UNHOLDABLE, element=tag, attribute=key) from exc
    raise InvalidValueError(_UNHOLDABLE, element=tag)


def text_el(parent: etree._Element, tag: str, text: str, **attrs: str | None) -> etree._Element:
    """A child holding `text`; text that XML 1.0 cannot hold raises `InvalidValueError`."""
    el = sub(parent, tag, **attrs)
    try:
        set_text(el, text)
    except InvalidValueError:
        parent.remove(el)
        raise
    return el


def format_ts(moment: dt.datetime) -> str:
    """HL7 TS to the second in UTC with an explicit offset: YYYYMMDDHHMMSS+0000."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValueError("timestamps must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def format_date(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def format_decimal(value: Decimal) -> str:
    """A decimal as HL7 writes it: plain notation, no exponent."""
    text = format(value, "f")
    return text


def ii(parent: etree._Element, tag: str, ident: Identifier) -> etree._Element:
    """An II element: root/extension, or nullFlavor."""
    return sub(
        parent, tag, root=ident.root, extension=ident.extension, nullFlavor=ident.null_flavor
    )


def ii_values(parent: etree._Element, tag: str, root: str, extension: str) -> etree._Element:
    return sub(parent, tag, root=root, extension=extension)


def cd(
    parent: etree._Element,
    tag: str,
    code: Code,
    *,
    allow_translations: bool = True,
    allow_original_text: bool = True,
) -> etree._Element:
    """A CD/CE/CV element with original text and (nested) translations."""
    el = sub(
        parent,
        tag,
        code=code.code,
        codeSystem=code.system,
        displayName=code.display,
        nullFlavor=code.null_flavor,
    )
    if code.original_text is not None:
        if not allow_original_text:
            raise InvalidValueError("original text not allowed here", element=tag)
        text_el(el, "originalText", code.original_text)
    if code.translations and not allow_translations:
        raise InvalidValueError("translations not allowed here", element=tag)
    for translation in code.translations:
        cd(el, "translation", translation)
    return el


def pq(
    parent: etree._Element, tag: str, quantity: Quantity, *, xsi_type: str | None = None
) -> etree._Element:
    """A PQ element with its coded translations (PQR)."""
    el = sub(parent, tag)
    if xsi_type:
        set_attr(el, XSI_TYPE, xsi_type)
    if quantity.value is not None:
        set_attr(el, "value", format_decimal(quantity.value))
    if quantity.unit is not None:
        set_attr(el, "unit", quantity.unit)
    if quantity.null_flavor is not None:
        set_attr(el, "nullFlavor", quantity.null_flavor)
    for translation in quantity.translations:
        _pqr(el, translation)
    return el


def _pqr(parent: etree._Element, coded: CodedValue) -> None:
    code = coded.code
    if code.translations or code.original_text is not None:
        raise InvalidValueError("a unit translation holds one plain code")
    el = sub(parent, "translation")
    if coded.value is not None:
        set_attr(el, "value", format_decimal(coded.value))
    for key, value in (
        ("code", code.code),
        ("codeSystem", code.system),
        ("displayName", code.display),
        ("nullFlavor", code.null_flavor),
    ):
        if value is not None:
            set_attr(el, key, value)


def to_bytes(el: etree._Element) -> bytes:
    """Serialise with an XML declaration, UTF-8."""
    return bytes(etree.tostring(el, xml_declaration=True, encoding="UTF-8"))
