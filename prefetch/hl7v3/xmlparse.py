"""The one hardened XML parser factory. Nothing else in the product parses XML.

Refuses DTDs (and so entity declarations and external entities), never touches the
network, refuses XInclude, and refuses documents above a size limit before parsing.
A UTF-8 byte-order mark is accepted.

Bounded in memory as well as in size: the document is fed to the parser in chunks and
the elements are counted and their depth measured while it is built, so a document of
millions of empty elements is refused after `max_elements` (not after the whole tree
took hundreds of megabytes), and `read_bounded` reads a stream (a file, a pipe,
`/dev/zero`) in chunks and stops as soon as it passes the size limit.

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

import itertools
import re
import threading
from collections.abc import Iterator
from typing import BinaryIO, TypedDict

from lxml import etree

from prefetch.errors import XmlSecurityError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: A real LSP batch answer has a few thousand elements, 16 deep; 1,000 dispenses ~100,000.
DEFAULT_MAX_ELEMENTS = 200_000
DEFAULT_MAX_DEPTH = 64
_CHUNK = 64 * 1024
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


class _Hardening(TypedDict):
    resolve_entities: bool
    no_network: bool
    dtd_validation: bool
    load_dtd: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool
    collect_ids: bool


# Every dangerous feature off: no entities, network, DTD (loaded or validated), huge trees.
_HARDENED = _Hardening(
    resolve_entities=False,
    no_network=True,
    dtd_validation=False,
    load_dtd=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    collect_ids=False,
)


def make_parser(*, remove_blank_text: bool = False) -> etree.XMLParser:
    """A fresh lxml parser with every dangerous feature off."""
    parser = etree.XMLParser(remove_blank_text=remove_blank_text, **_HARDENED)
    parser.resolvers.add(_DenyExternal())
    return parser


def _pull_parser(*, remove_blank_text: bool) -> etree.XMLPullParser:
    """`make_parser`'s settings on a parser fed in chunks that reports each element."""
    parser = etree.XMLPullParser(
        events=("start", "end"), remove_blank_text=remove_blank_text, **_HARDENED
    )
    parser.resolvers.add(_DenyExternal())
    return parser


def read_bounded(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read `stream` to its end in chunks; raise XmlSecurityError as soon as more than
    `max_bytes` arrived (an endless stream is refused after max_bytes + 1 bytes)."""
    return b"".join(_stream_chunks(stream, max_bytes))


def _stream_chunks(stream: BinaryIO, max_bytes: int) -> Iterator[bytes]:
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            return
        size += len(chunk)
        if size > max_bytes:
            raise XmlSecurityError("XML document too large", size=f">{max_bytes}", limit=max_bytes)
        yield chunk


def _byte_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(data), _CHUNK):
        yield bytes(view[offset : offset + _CHUNK])


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    remove_blank_text: bool = False,
) -> etree._Element:
    """Parse `data` safely and return the root element.

    Raises XmlSecurityError for oversize input, more than `max_elements` elements or
    nesting deeper than `max_depth` (found while parsing, before the rest is built), any
    DOCTYPE, entity declarations or references, XInclude, or documents lxml cannot parse.
    """
    if len(data) > max_bytes:
        raise XmlSecurityError("XML document too large", size=len(data), limit=max_bytes)
    if len(data) <= _CHUNK:
        return _parse_whole(data, max_elements, max_depth, remove_blank_text)
    return _parse_chunks(_byte_chunks(data), max_elements, max_depth, remove_blank_text)


class _PerThread(threading.local):
    """Each thread's own whole-document parsers and compiled bound checks (lxml parser
    and XPath objects are not shared between threads)."""

    def __init__(self) -> None:
        self.parsers: dict[bool, etree.XMLParser] = {}
        self.deeper: dict[int, etree.XPath] = {}


_THREAD = _PerThread()
_COUNT = "count(//*)"


def _parse_whole(
    data: bytes, max_elements: int, max_depth: int, remove_blank_text: bool
) -> etree._Element:
    """A document of at most one chunk, parsed in one call by `make_parser`'s parser; its
    element count and depth checked on the tree (in C, by XPath). At most 64 KB, such a
    tree is small whatever it holds, so the limits need not be applied while building it;
    the result and the refusals equal `_parse_chunks`'s (the pull parser reports each
    element to Python, which costs twice the parse itself on a typical answer)."""
    head = _checked_prolog(iter((data,)))
    mine = _THREAD
    parser = mine.parsers.get(remove_blank_text)
    if parser is None:
        parser = mine.parsers[remove_blank_text] = make_parser(remove_blank_text=remove_blank_text)
    try:
        root = etree.fromstring(head, parser)
    except etree.XMLSyntaxError as exc:
        raise XmlSecurityError("XML not well-formed", line=exc.lineno) from None
    if root is None:
        raise XmlSecurityError("XML not well-formed", line=1)
    if int(root.xpath(_COUNT)) > max_elements:  # type: ignore[arg-type]
        raise XmlSecurityError("XML has too many elements", limit=max_elements)
    deeper = mine.deeper.get(max_depth)
    if deeper is None:  # any element at depth max_depth + 1 (the root is at depth 1)
        deeper = mine.deeper[max_depth] = etree.XPath("/" + "/".join(["*"] * (max_depth + 1)))
    if deeper(root):
        raise XmlSecurityError("XML nested too deep", limit=max_depth)
    _check_tree(root)
    return root


def parse_xml_stream(
    stream: BinaryIO,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> etree._Element:
    """As `parse_xml`, reading `stream` chunk by chunk: the document is never held whole,
    and the size is checked while reading (an endless stream stops at `max_bytes`)."""
    return _parse_chunks(_stream_chunks(stream, max_bytes), max_elements, max_depth, False)


def _parse_chunks(
    chunks: Iterator[bytes], max_elements: int, max_depth: int, remove_blank_text: bool
) -> etree._Element:
    head = _checked_prolog(chunks)
    parser = _pull_parser(remove_blank_text=remove_blank_text)
    elements = depth = 0
    try:
        for chunk in itertools.chain((head,), chunks):
            parser.feed(chunk)
            for event, _node in parser.read_events():
                if event == "end":
                    depth -= 1
                    continue
                elements += 1
                depth += 1
                if elements > max_elements:
                    raise XmlSecurityError("XML has too many elements", limit=max_elements)
                if depth > max_depth:
                    raise XmlSecurityError("XML nested too deep", limit=max_depth)
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise XmlSecurityError("XML not well-formed", line=exc.lineno) from None
    _check_tree(root)
    return root


def _checked_prolog(chunks: Iterator[bytes]) -> bytes:
    """Read until what precedes the root element is known; refuse a declaration in it.
    Returns the bytes read (without a UTF-8 BOM), to be fed to the parser first."""
    head = b""
    for chunk in chunks:
        head += chunk
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        decided = _prolog_verdict(head)
        if decided is not None:
            if decided:
                raise XmlSecurityError("DTD or entity declaration not allowed in XML input")
            return head
    if _declaration_in_prolog(head):
        raise XmlSecurityError("DTD or entity declaration not allowed in XML input")
    return head


def _prolog_verdict(head: bytes) -> bool | None:
    """True: a declaration precedes the root; False: none does; None: read more."""
    prolog = _PROLOG.match(head)
    end = prolog.end() if prolog else 0
    rest = head[end : end + 4]
    if len(rest) < 4:
        return None
    if rest.startswith((b"<?", b"<!--")):
        return None  # a processing instruction or comment that goes on in the next chunk
    return rest.startswith(b"<!")


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
