"""Cached XML Schema validators for what we send and what the simulator answers.

The schemas live in `prefetch/hl7v3/schemas/` (package data): unmodified copies of the
HL7 / Nictiz XSDs (see `schemas/NOTICE`) plus our assembled interaction schemas
`QURX_IN990111NL.xsd`, `QURX_IN990113NL.xsd` and `MCCI_IN200101_QURX_IN990113NL.xsd`.
Schema documents are loaded from the package directory only (no network).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import cast

from lxml import etree

from prefetch.errors import MessageError

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


def schema_dir() -> Path:
    """Directory of the interaction schemas (`hl7_schemas/`), for xmllint and tests."""
    return Path(str(resources.files("prefetch.hl7v3") / "schemas" / "hl7_schemas"))


@functools.cache
def load_schema(name: str) -> etree.XMLSchema:
    """The compiled schema `name` from `schemas/hl7_schemas/` (compiled once per process)."""
    path = schema_dir() / name
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    doc = etree.parse(str(path), parser)
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


@functools.cache
def _dispense_event_schema() -> etree.XMLSchema:
    """COCT_MT924000NL02 with a global `medicationDispenseEvent` element, for fragments."""
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:hl7-org:v3" '
        'targetNamespace="urn:hl7-org:v3" elementFormDefault="qualified">'
        f'<xs:include schemaLocation="{(schema_dir() / DISPENSE_EVENT_XSD).as_uri()}"/>'
        '<xs:element name="medicationDispenseEvent" '
        'type="COCT_MT924000NL02.MedicationDispenseEvent"/></xs:schema>'
    )
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    doc = etree.fromstring(wrapper.encode(), parser, base_url=str(schema_dir()) + "/")
    return etree.XMLSchema(doc)


def validate_dispense_event(el: etree._Element) -> None:
    """Validate one `medicationDispenseEvent` against COCT_MT924000NL02."""
    schema = _dispense_event_schema()
    if schema.validate(el):
        return
    raise SchemaValidationError(DISPENSE_EVENT_XSD, _errors(schema))
