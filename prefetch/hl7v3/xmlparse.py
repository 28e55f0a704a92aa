"""The one hardened XML parser factory. Nothing else in the product parses XML.

Refuses DTDs (and so entity declarations and external entities), never touches the
network, refuses XInclude, and refuses documents above a size limit before parsing.
A UTF-8 byte-order mark is accepted.

Defence in depth: a DOCTYPE (the only place an entity can be declared) in the prolog, the
bytes before the root element, is refused *before* libxml2 sees the document. Only the
prolog is scanned: `<!DOCTYPE` inside a comment, a CDATA section or text (a dosage text)
is harmless and is accepted. The parser itself is configured not to load DTDs, not to
resolve entities and not to use the network, with a resolver that answers every external
reference with nothing (see `_DenyExternal`); after parsing, the tree is checked again
(DOCTYPE, entity references, XInclude elements), which also covers encodings the prolog
scan cannot read (UTF-16).
"""

from __future__ import annotations

import re

from lxml import etree

from prefetch.errors import XmlSecurityError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
# What may precede the root element besides a DOCTYPE: whitespace, the XML declaration and
# processing instructions, comments. One alternative per character or construct, so the
# match never backtracks.
_PROLOG = re.compile(rb"(?:[ \t\r\n]|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)


class _DenyExternal(etree.Resolver):
    """Answers every external reference (DTD, entity, XInclude) with nothing.

    Needed: with libxml2 2.14 / lxml 6, `load_dtd=False` alone still *opens* a file named
    in `<!DOCTYPE r SYSTEM "file://...">` (measured with strace). The resolver is asked
    first and its empty answer means libxml2 never opens the file or the URL.
    """

    def resolve(  # type: ignore[override]  # lxml-stubs omit the context argument
        self, system_url: str, public_id: str, context: object
    ) -> object:
        return self.resolve_string("", context, base_url=None)


def make_parser(*, remove_blank_text: bool = False) -> etree.XMLParser:
    """A fresh lxml parser with every dangerous feature off."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=remove_blank_text,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )
    parser.resolvers.add(_DenyExternal())
    return parser


def parse_xml(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, remove_blank_text: bool = False
) -> etree._Element:
    """Parse `data` safely and return the root element.

    Raises XmlSecurityError for oversize input, any DOCTYPE, entity declarations or
    references, XInclude, or documents lxml cannot parse.
    """
    if len(data) > max_bytes:
        raise XmlSecurityError("XML document too large", size=len(data), limit=max_bytes)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if _declaration_in_prolog(data):
        raise XmlSecurityError("DTD or entity declaration not allowed in XML input")
    try:
        root = etree.fromstring(data, make_parser(remove_blank_text=remove_blank_text))
    except etree.XMLSyntaxError as exc:
        raise XmlSecurityError("XML not well-formed", line=exc.lineno) from None
    _check_tree(root)
    return root


def _declaration_in_prolog(data: bytes) -> bool:
    """True when markup declarations (`<!DOCTYPE`, `<!ENTITY`, any `<!` that is not a
    comment) come before the root element. Bytes that are not ASCII-compatible (UTF-16)
    end the scan at once; the post-parse check covers them."""
    prolog = _PROLOG.match(data)
    end = prolog.end() if prolog else 0
    return data.startswith(b"<!", end)


def _check_tree(root: etree._Element) -> None:
    doc = root.getroottree()
    info = doc.docinfo
    has_dtd = (
        bool(getattr(info, "doctype", ""))
        or getattr(info, "internalDTD", None) is not None
        or getattr(info, "externalDTD", None) is not None
    )
    if has_dtd:
        raise XmlSecurityError("DTD not allowed in XML input")
    for node in root.iter(etree.Entity):
        raise XmlSecurityError("entity reference not allowed", name=str(node.text))
    for namespace in _XINCLUDE_NAMESPACES:
        for _ in root.iter(f"{{{namespace}}}*"):
            raise XmlSecurityError("XInclude not allowed in XML input")
