import io
import json
import logging

from prefetch.logging import configure_logging, get_logger, redact_text


def test_redact_text_only_valid_bsns() -> None:
    assert redact_text("a 123456782 b") == "a [bsn] b"
    assert redact_text("id 123456789") == "id 123456789"  # fails the 11-check
    assert redact_text("1234.56.782") == "[bsn]"
    assert redact_text("1234567820") == "1234567820"  # ten digits: not a BSN


def test_structlog_and_stdlib_lines_are_redacted_json() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream)
    get_logger("t").info("query", bsn="123456782", name="Jansen", detail="for 123456782")
    logging.getLogger("signxml").debug("signed assertion with 123456782")
    logging.getLogger("other").warning("stdlib 123456782")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["bsn"] == "[redacted]" and lines[0]["name"] == "[redacted]"
    assert lines[0]["detail"] == "for [bsn]"
    assert len(lines) == 2  # signxml stays at WARNING
    assert "123456782" not in stream.getvalue()
