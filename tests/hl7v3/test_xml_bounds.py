"""XML bounded in memory as well as size: element count and depth limits found while
parsing, size checked while reading; a 19 MB file of empty elements is refused within
100 MB of memory and `/dev/zero` is refused promptly (both measured in a subprocess)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.errors import XmlSecurityError
from prefetch.hl7v3.xmlparse import parse_xml, parse_xml_stream, read_bounded

runner = CliRunner()
EMPTY = b"<a/>"


def test_too_many_elements_and_too_deep_are_refused() -> None:
    with pytest.raises(XmlSecurityError, match="too many elements"):
        parse_xml(b"<r>" + EMPTY * 1001 + b"</r>", max_elements=1000)
    assert len(parse_xml(b"<r>" + EMPTY * 999 + b"</r>", max_elements=1000)) == 999
    with pytest.raises(XmlSecurityError, match="nested too deep"):
        parse_xml(b"<a>" * 65 + b"</a>" * 65)
    assert parse_xml(b"<a>" * 64 + b"</a>" * 64).tag == "a"


def test_blank_text_removal_still_works() -> None:
    root = parse_xml(b"<r>\n  <a/>\n</r>", remove_blank_text=True)
    assert root[0].tail is None


def test_a_declaration_after_a_long_prolog_is_refused_from_a_stream() -> None:
    comment = b"<!--" + b"x" * 200_000 + b"-->"
    doc = b"<?xml version='1.0'?>" + comment + b'<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>'
    with pytest.raises(XmlSecurityError, match="DTD or entity"):
        parse_xml_stream(io.BytesIO(doc))
    with pytest.raises(XmlSecurityError, match="DTD or entity"):
        parse_xml(doc)
    assert parse_xml_stream(io.BytesIO(comment + b"<r><![CDATA[<!DOCTYPE]]></r>")).tag == "r"


def test_read_bounded_stops_at_the_limit() -> None:
    assert read_bounded(io.BytesIO(b"x" * 100), 100) == b"x" * 100
    with pytest.raises(XmlSecurityError, match="too large"):
        read_bounded(io.BytesIO(b"x" * 101), 100)


_MEASURE = """
import json, sys, time
from pathlib import Path
from prefetch.errors import XmlSecurityError
from prefetch.hl7v3.parse import parse_answer_stream
started = time.monotonic()
try:
    with open(sys.argv[1], "rb") as stream:
        parse_answer_stream(stream)
    outcome = "accepted"
except XmlSecurityError as exc:
    outcome = str(exc)
# Peak memory of this process image: VmHWM (ru_maxrss carries the forking parent's peak
# over exec on Linux, so it would measure pytest rather than the parse).
hwm = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started,
                  "max_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def _measure(path: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, path],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.slow
def test_19_mb_of_empty_elements_is_refused_within_100_mb(tmp_path: Path) -> None:
    path = tmp_path / "empty-elements.xml"
    body = EMPTY * ((19 * 1024 * 1024 - 7) // len(EMPTY))
    path.write_bytes(b"<r>" + body + b"</r>")
    assert 18 * 1024 * 1024 < path.stat().st_size < 20 * 1024 * 1024
    found = _measure(str(path))
    assert "too many elements" in str(found["outcome"])
    assert float(found["max_rss_mb"]) < 100, found  # was 690 MB


def test_dev_zero_is_refused_promptly() -> None:
    started = time.monotonic()
    found = _measure("/dev/zero")
    assert "not well-formed" in str(found["outcome"])  # NUL is no XML: refused at once
    assert time.monotonic() - started < 10
    assert float(found["max_rss_mb"]) < 100, found


class _Endless(io.RawIOBase):
    """`<r>` and then spaces for ever: well-formed so far, never ending."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        head = b"<r>" if self.served == 0 else b""
        data = (head + b" " * len(buffer))[: len(buffer)]
        buffer[: len(data)] = data
        self.served += len(data)
        return len(data)


def test_an_endless_stream_is_refused_at_the_size_limit() -> None:
    stream = _Endless()
    with pytest.raises(XmlSecurityError, match="too large"):
        parse_xml_stream(io.BufferedReader(stream), max_bytes=1024 * 1024)
    assert stream.served <= 1024 * 1024 + 64 * 1024 + 8192  # stopped at the limit


def test_hl7_parse_of_dev_zero_is_one_line_exit_2() -> None:
    result = runner.invoke(app, ["hl7", "parse", "/dev/zero"])
    assert result.exit_code == 2
    assert "not well-formed" in result.output
    assert result.output.count("\n") == 1


PAD = b" " * 70_000  # whitespace text in the root: the same document above one chunk


@pytest.mark.parametrize("pad", [b"", PAD], ids=["one chunk", "chunked"])
def test_whole_and_chunked_parsing_refuse_and_accept_alike(pad: bytes) -> None:
    """Documents up to 64 KB are parsed in one call and checked on the tree; larger ones
    are counted while parsing. Both refuse and accept the same documents."""
    with pytest.raises(XmlSecurityError, match="too many elements"):
        parse_xml(b"<r>" + pad + EMPTY * 1001 + b"</r>", max_elements=1001)
    assert len(parse_xml(b"<r>" + pad + EMPTY * 1000 + b"</r>", max_elements=1001)) == 1000
    with pytest.raises(XmlSecurityError, match="nested too deep"):
        parse_xml(b"<a>" + pad + b"<a>" * 64 + b"</a>" * 65)
    with pytest.raises(XmlSecurityError, match="nested too deep"):
        parse_xml(b"<a>" + pad + b"<a>" * 12 + b"</a>" * 13, max_depth=12)
    assert parse_xml(b"<a>" + pad + b"<a>" * 63 + b"</a>" * 64).tag == "a"
    with pytest.raises(XmlSecurityError, match="not well-formed"):
        parse_xml(b"<r>" + pad + b"<a></r>")
    with pytest.raises(XmlSecurityError, match="DTD"):
        parse_xml(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>' + pad + b"&e;</r>")
    with pytest.raises(XmlSecurityError, match="XInclude"):
        parse_xml(
            b'<r xmlns:xi="http://www.w3.org/2001/XInclude">'
            + pad
            + b'<xi:include href="/etc/passwd" parse="text"/></r>'
        )


def test_whole_document_parse_equals_the_chunked_parse() -> None:
    data = (
        Path(__file__).resolve().parents[2]
        / ".."
        / "shared"
        / "hl7v3"
        / "examples"
        / "lsp-batch"
        / "999900444_Decker_QURX113-nf.xml"
    ).read_bytes()
    assert len(data) < 64 * 1024
    whole = parse_xml(b"\xef\xbb\xbf" + data)
    chunked = parse_xml_stream(io.BytesIO(data))
    assert etree.tostring(whole, method="c14n") == etree.tostring(chunked, method="c14n")
