"""Cached XML Schema validators for what we send and what the simulator answers.

Our assembled interaction schemas (`QURX_IN990111NL.xsd`, `QURX_IN990113NL.xsd`,
`MCCI_IN200101_QURX_IN990113NL.xsd`) are package data; the HL7 / Nictiz XSDs they include
are read in place from the configured schema set (`schema_set`), never from the network.
Without a schema set every validator raises `SchemaSetMissingError`: nothing is called
valid that was not checked.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from lxml import etree

from prefetch.errors import MessageError
from prefetch.hl7v3.schema_set import own_schema_dir, schema_parser, schema_set_dir

QUERY_XSD = "QURX_IN990111NL.xsd"
ANSWER_ITEM_XSD = "QURX_IN990113NL.xsd"
BATCH_XSD = "MCCI_IN200101_QURX_IN990113NL.xsd"
ACCEPT_ACK_XSD = "MCCI_IN000002.xsd"
DISPENSE_EVENT_XSD = "COCT_MT924000NL02.xsd"


class SchemaValidationError(MessageError):
    """A document does not validate; `errors` lists every schema error (line: message)."""

    def __init__(self, schema: str, errors: tuple[str, ...]) -> None:
        super().__init__(
            "XML does not validate against the schema",
            schema=schema,
            count=len(errors),
            first=errors[0] if errors else None,
        )
        self.schema = schema
        self.errors = errors


_COMPILE_LOCK = threading.RLock()


def schema_dir() -> Path:
    """Directory of our interaction schemas (`hl7_schemas/`), for xmllint and tests."""
    return own_schema_dir()


def clear_cache() -> None:
    """Forget compiled schemas (after the schema set directory changed)."""
    with _COMPILE_LOCK:
        _compiled.cache_clear()
        _dispense_event_compiled.cache_clear()


def load_schema(name: str) -> etree.XMLSchema:
    """The compiled schema `name`: ours from the package, or a catalog file of the set.

    Compiled once, under a lock: two threads compiling at the same time (the simulator's
    first requests) made libxml2 miss an include through our resolver now and then."""
    directory = schema_set_dir()  # SchemaSetMissingError before anything is parsed
    with _COMPILE_LOCK:
        return _compiled(name, directory)


@functools.cache
def _compiled(name: str, directory: Path) -> etree.XMLSchema:
    """Cached per schema set directory: setting the same directory again (each in-process
    CLI call does) keeps what a simulator in this process already compiled."""
    path = schema_dir() / name
    if not path.is_file():
        from prefetch.hl7v3.schema_set import locate

        path = locate(name) or path
    doc = etree.parse(str(path), schema_parser())
    return etree.XMLSchema(doc)


def _errors(schema: etree.XMLSchema) -> tuple[str, ...]:
    entries = cast("Iterable[etree._LogEntry]", schema.error_log)
    return tuple(f"{e.line}: {e.message}" for e in entries)


def _validate(name: str, el: etree._Element) -> None:
    schema = load_schema(name)
    if schema.validate(el):
        return
    errors = _errors(schema)
    raise SchemaValidationError(name, errors)


def validate_query(el: etree._Element) -> None:
    """Validate a `QURX_IN990111NL`; raise `SchemaValidationError` listing the errors."""
    _validate(QUERY_XSD, el)


def validate_answer_item(el: etree._Element) -> None:
    """Validate one `QURX_IN990113NL` answer item."""
    _validate(ANSWER_ITEM_XSD, el)


def validate_batch(el: etree._Element) -> None:
    """Validate an `MCCI_IN200101` batch and every `QURX_IN990113NL` item in it."""
    _validate(BATCH_XSD, el)


def validate_accept_ack(el: etree._Element) -> None:
    """Validate an `MCCI_IN000002` accept acknowledgement."""
    _validate(ACCEPT_ACK_XSD, el)


def _dispense_event_schema() -> etree.XMLSchema:
    """COCT_MT924000NL02 with a global `medicationDispenseEvent` element, for fragments."""
    directory = schema_set_dir()
    with _COMPILE_LOCK:
        return _dispense_event_compiled(directory)


@functools.cache
def _dispense_event_compiled(directory: Path) -> etree.XMLSchema:
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:hl7-org:v3" '
        'targetNamespace="urn:hl7-org:v3" elementFormDefault="qualified">'
        f'<xs:include schemaLocation="{DISPENSE_EVENT_XSD}"/>'
        '<xs:element name="medicationDispenseEvent" '
        'type="COCT_MT924000NL02.MedicationDispenseEvent"/></xs:schema>'
    )
    doc = etree.fromstring(wrapper.encode(), schema_parser(), base_url=str(schema_dir()) + "/")
    return etree.XMLSchema(doc)


def validate_dispense_event(el: etree._Element) -> None:
    """Validate one `medicationDispenseEvent` against COCT_MT924000NL02."""
    schema = _dispense_event_schema()
    if schema.validate(el):
        return
    raise SchemaValidationError(DISPENSE_EVENT_XSD, _errors(schema))
