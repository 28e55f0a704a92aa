"""The hardened parser: the defusedxml attack files each give XmlSecurityError, and
nothing is read from disk or fetched from the network while refusing them.

Proof of "no file read": the external entity / DTD points at a named pipe (FIFO). Opening a
FIFO for reading blocks until a writer appears, and a writer can open it (non-blocking) only
while a reader has it open; a watcher thread tries to open it for writing during the whole
parse and records whether it ever could. The FIFO is also given canary content, which must
not appear anywhere. Proof of "no connection": a listening socket on loopback, the target
of every http:// reference, must accept nothing.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefetch.errors import XmlSecurityError
from prefetch.hl7v3.parse import parse_answer
from prefetch.hl7v3.xmlparse import parse_xml

CANARY = "CANARY-7f3e"


class FifoWatch:
    """Detects any attempt to open `path` for reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader has it open
                    raise
                self._stop.wait(0.0005)
                continue
            self.opened = True
            try:
                os.write(fd, f"<x>{CANARY}</x>".encode())
            except BrokenPipeError:
                pass  # the reader went away first; the open itself is the evidence
            finally:
                os.close(fd)
            return

    def __enter__(self) -> FifoWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class Listener:
    """A loopback TCP socket that records every accepted connection."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0

    def drain(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                return self.connections
            self.connections += 1
            conn.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.sock.close()


def attacks(fifo: Path, port: int) -> dict[str, bytes]:
    url = f"http://127.0.0.1:{port}"
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return {
        "billion_laughs": (
            f'<?xml version="1.0"?><!DOCTYPE lolz [{lol}]><lolz>&lol9;</lolz>'
        ).encode(),
        "quadratic_blowup": (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
            + "x" * 50_000
            + '">]><r>'
            + "&a;" * 2_000
            + "</r>"
        ).encode(),
        "external_entity_file": (
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file://{fifo}">]><r>&e;</r>'
        ).encode(),
        "external_entity_http": (
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "{url}/e.xml">]><r>&e;</r>'
        ).encode(),
        "parameter_entity": (
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><r/>'
        ).encode(),
        "external_dtd_file": f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "file://{fifo}"><r/>'.encode(),
        "external_dtd_http": f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}/r.dtd"><r/>'.encode(),
        "xinclude_file": (
            '<r xmlns:xi="http://www.w3.org/2001/XInclude">'
            f'<xi:include href="file://{fifo}" parse="text"/></r>'
        ).encode(),
        "xinclude_http": (
            f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{url}/x.xml"/></r>'
        ).encode(),
        "utf16_entity": (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY e '
            f'SYSTEM "file://{fifo}">]><r>&e;</r>'
        ).encode("utf-16"),
        "utf16_xinclude": (
            '<?xml version="1.0" encoding="UTF-16"?>'
            '<r xmlns:xi="http://www.w3.org/2001/XInclude">'
            f'<xi:include href="file://{fifo}"/></r>'
        ).encode("utf-16"),
    }


ATTACKS = [
    "billion_laughs",
    "quadratic_blowup",
    "external_entity_file",
    "external_entity_http",
    "parameter_entity",
    "external_dtd_file",
    "external_dtd_http",
    "xinclude_file",
    "xinclude_http",
    "utf16_entity",
    "utf16_xinclude",
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("entry", ["parse_xml", "parse_answer"])
def test_attack_refused_without_reading_or_connecting(
    tmp_path: Path, listener: Listener, attack: str, entry: str
) -> None:
    fifo = tmp_path / "canary.fifo"
    with FifoWatch(fifo) as watch:
        data = attacks(fifo, listener.port)[attack]
        with pytest.raises(XmlSecurityError) as info:
            if entry == "parse_xml":
                parse_xml(data)
            else:
                parse_answer(data)
    assert not watch.opened, "the parser opened the file"
    assert listener.drain() == 0, "the parser connected to the network"
    assert CANARY not in str(info.value)


def test_watchers_do_detect_a_read_and_a_connection(tmp_path: Path, listener: Listener) -> None:
    """The detectors are not blind: a plain open and a plain connect are both seen."""
    fifo = tmp_path / "canary.fifo"
    with FifoWatch(fifo) as watch, fifo.open("rb") as fh:
        assert CANARY.encode() in fh.read()
    assert watch.opened
    with socket.create_connection(("127.0.0.1", listener.port), timeout=1):
        pass
    assert listener.drain() == 1


def test_oversize_refused_before_parsing() -> None:
    big = b"<r>" + b"x" * 2048 + b"</r>"
    with pytest.raises(XmlSecurityError) as info:
        parse_xml(big, max_bytes=1024)
    assert info.value.context["limit"] == 1024
    with pytest.raises(XmlSecurityError):
        parse_answer(big, max_bytes=1024)


def test_bom_is_accepted() -> None:
    assert parse_xml(b"\xef\xbb\xbf<r/>").tag == "r"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("attack", ATTACKS)
def test_parser_factory_alone_is_safe(tmp_path: Path, listener: Listener, attack: str) -> None:
    """Defence in depth: even without the byte scan, `make_parser` reads and fetches nothing."""
    from lxml import etree

    from prefetch.hl7v3.xmlparse import make_parser

    fifo = tmp_path / "canary.fifo"
    with FifoWatch(fifo) as watch:
        data = attacks(fifo, listener.port)[attack]
        try:
            root = etree.fromstring(data, make_parser())
        except etree.XMLSyntaxError:
            text = ""
        else:
            text = etree.tostring(root, encoding="unicode")
            assert len(text) < 200_000, "entities were expanded"
    assert not watch.opened
    assert listener.drain() == 0
    assert CANARY not in text


@pytest.mark.parametrize(
    "harmless",
    [
        b"<r><!-- <!DOCTYPE --></r>",
        b"<r><!-- <!ENTITY x 'y'> --></r>",
        b"<!-- <!DOCTYPE r [<!ENTITY x 'y'>]> --><r/>",
        b'<?xml version="1.0"?>\n<?pi <!DOCTYPE?>\n<!-- c -->\n<r/>',
        b"<r><![CDATA[<!DOCTYPE r [<!ENTITY x 'y'>]>]]></r>",
        b"<r>see http://www.w3.org/2001/XInclude</r>",
        b"<r>&lt;!DOCTYPE&gt; &amp; &#60;!ENTITY</r>",
    ],
)
def test_declarations_outside_the_prolog_are_harmless_text(harmless: bytes) -> None:
    root = parse_xml(harmless)
    assert root.tag == "r"
    assert parse_xml(b"\xef\xbb\xbf" + harmless).tag == "r"


@pytest.mark.parametrize(
    "refused",
    [
        b"<!DOCTYPE r><r/>",
        b' \n\t<?xml version="1.0"?><!-- a --><?pi x?>\n<!DOCTYPE r><r/>',
        b"<!-- <!DOCTYPE --><!DOCTYPE r [<!ENTITY x 'y'>]><r>&x;</r>",
        b"<!ENTITY x 'y'><r/>",
        b"\xef\xbb\xbf<!DOCTYPE r><r/>",
        b"<r>&undeclared;</r>",
        b'<r xmlns:xi="http://www.w3.org/2003/XInclude"><a><xi:include href="x"/></a></r>',
        "<!DOCTYPE r><r/>".encode("utf-16"),
        "<!-- c --><!DOCTYPE r><r/>".encode("utf-16-le"),
    ],
)
def test_declarations_in_the_prolog_are_refused(refused: bytes) -> None:
    with pytest.raises(XmlSecurityError):
        parse_xml(refused)


def test_cdata_dosage_text_with_markup_is_kept(examples: Path) -> None:
    """A real answer whose dosage text (CDATA) contains `<!ENTITY` and `<!DOCTYPE`."""
    text = (examples / "official" / "QURX_EX990113NL_01.xml").read_text(encoding="utf-8-sig")
    plain = '<text mediaType="text/plain">gebruik volgens schema</text>'
    assert plain in text
    odd = "gebruik volgens schema <!ENTITY x 'y'> <!DOCTYPE r> &amp;"
    edited = text.replace(plain, f'<text mediaType="text/plain"><![CDATA[{odd}]]></text>', 1)
    original = parse_answer(text.encode("utf-8"))
    parsed = parse_answer(edited.encode("utf-8"))
    assert len(parsed.dispenses) == len(original.dispenses)
    texts = [x.text for d in parsed.dispenses for x in d.dosages]
    assert odd in texts
