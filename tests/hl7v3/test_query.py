"""The QURX_IN990111NL query: schema-valid, every part where AORTA.md puts it, readable back."""

from __future__ import annotations

import datetime as dt

import pytest
from hl7_samples import BSN, NOW, make_params
from lxml import etree

from prefetch.domain import oids
from prefetch.errors import ConfigError, InvalidValueError, MessageError
from prefetch.hl7v3.aorta_settings import AortaSettings
from prefetch.hl7v3.params import QueryParams, look_back_start
from prefetch.hl7v3.query import build_query, parse_query
from prefetch.hl7v3.schema import validate_query

NS = {"h": "urn:hl7-org:v3"}


def xp(el: etree._Element, path: str) -> list[str]:
    return [str(v) for v in el.xpath(path, namespaces=NS)]


@pytest.mark.parametrize("system", [True, False])
@pytest.mark.parametrize("look_back", [None, dt.date(2025, 1, 31)])
def test_query_validates_and_reads_back(system: bool, look_back: dt.date | None) -> None:
    params = make_params(system=system, look_back=look_back)
    el = build_query(params)
    validate_query(el)
    back = parse_query(el)
    assert back.bsn == params.bsn
    assert back.message_id == params.message_id
    assert back.query_id == params.query_id
    assert back.created_at == params.created_at
    assert back.overseer == params.overseer
    assert back.author == params.author
    assert back.author_system_uzi == params.author_system_uzi
    assert back.look_back_from == look_back
    assert (back.hospital_ura, back.hospital_name) == (params.hospital_ura, params.hospital_name)
    assert back.sender_application_id == params.sender_application_id


def test_wire_positions(params: QueryParams) -> None:
    el = build_query(params)
    assert xp(el, "h:versionCode/@code") == ["NICTIZEd2005-Okt"]
    assert xp(el, "h:interactionId/@extension") == ["QURX_IN990111NL"]
    assert xp(el, "h:profileId[@root='2.16.840.1.113883.2.4.3.11.1']/@extension") == ["810"]
    assert xp(el, "h:receiver/h:device/h:id/@extension") == ["1"]
    assert xp(el, "h:sender/h:device/h:id/@extension") == ["4003"]
    assert xp(el, "h:creationTime/@value") == ["20261123010000+0000"]
    over = "h:ControlActProcess/h:overseer[@typeCode='RESP']/h:assignedEntity"
    assert xp(el, f"{over}/h:id[@root='{oids.UZI_PERSON}']/@extension") == ["123456782"]
    assert xp(el, f"{over}/h:code/@code") == ["01.015"]
    assert xp(el, f"{over}/h:code/@codeSystem") == [oids.UZI_ROLE]
    assert xp(el, f"{over}/h:assignedPrincipalChoiceList/h:assignedPerson/h:name/text()") == [
        "Dr. A. van Arts"
    ]
    assert xp(el, f"{over}/h:Organization/h:id[@root='{oids.URA}']/@extension") == ["12345678"]
    assert xp(el, f"{over}/h:Organization/h:code/@code") == ["V4"]
    qbp = "h:ControlActProcess/h:queryByParameter"
    assert xp(el, f"{qbp}/h:patientID/h:value[@root='{oids.BSN}']/@extension") == [BSN.value]
    assert xp(el, f"{qbp}/h:dispenseEventEffectiveTimeInterval/h:value/h:low/@value") == [
        "20251101"
    ]
    assert xp(el, f"{qbp}/h:statusCode/@code") == ["new"]
    assert xp(el, f"{qbp}/h:responseModalityCode/@code") == ["B"]
    assert xp(el, f"{qbp}/h:responsePriorityCode/@code") == ["I"]
    author = "h:ControlActProcess/h:authorOrPerformer[@typeCode='AUT']/h:participant"
    assert xp(el, f"{author}/h:AssignedDevice/h:id[@root='{oids.UZI_SYSTEM}']/@extension") == [
        "000143554"
    ]


def test_settings_change_the_wire(params: QueryParams) -> None:
    settings = AortaSettings(
        processing_code="T",
        query_status_code="executing",
        lsp_application_id="2",
        send_most_recent_dispense_indicator=True,
    )
    el = build_query(params, settings)
    validate_query(el)
    assert xp(el, "h:processingCode/@code") == ["T"]
    assert xp(el, "h:ControlActProcess/h:queryByParameter/h:statusCode/@code") == ["executing"]
    assert xp(el, "h:receiver/h:device/h:id/@extension") == ["2"]
    assert xp(el, "//h:mostRecentDispenseForEachRxIndicator/h:value/@value") == ["false"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("processing_code", "X"), ("query_status_code", "old"), ("soap_action", "")],
)
def test_settings_refuse_bad_values(field: str, value: str) -> None:
    with pytest.raises(ConfigError):
        AortaSettings(**{field: value})  # type: ignore[arg-type]


def test_parse_query_refuses_other_messages_and_missing_bsn(params: QueryParams) -> None:
    el = build_query(params)
    el.tag = "{urn:hl7-org:v3}QURX_IN990113NL"
    with pytest.raises(MessageError):
        parse_query(el)
    el = build_query(params)
    for node in el.iterfind(".//{urn:hl7-org:v3}patientID"):
        node.getparent().remove(node)
    with pytest.raises(MessageError):
        parse_query(el)


def test_parse_query_refuses_invalid_bsn(params: QueryParams) -> None:
    el = build_query(params)
    node = el.find(".//{urn:hl7-org:v3}patientID/{urn:hl7-org:v3}value")
    assert node is not None
    node.set("extension", "123456789")
    with pytest.raises(InvalidValueError):
        parse_query(el)


def test_naive_timestamp_refused() -> None:
    from prefetch.hl7v3.xmlbuild import format_ts

    with pytest.raises(InvalidValueError):
        format_ts(NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("now", "days", "start"),
    [
        # winter: UTC+1; 23:30 UTC is the next Amsterdam day
        (dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC), 1, dt.date(2026, 11, 22)),
        (dt.datetime(2026, 11, 22, 22, 59, tzinfo=dt.UTC), 1, dt.date(2026, 11, 21)),
        # summer: UTC+2
        (dt.datetime(2026, 6, 30, 22, 0, tzinfo=dt.UTC), 30, dt.date(2026, 6, 1)),
        (dt.datetime(2026, 6, 30, 21, 59, tzinfo=dt.UTC), 3650, dt.date(2016, 7, 2)),
    ],
)
def test_look_back_start_uses_the_amsterdam_day(
    now: dt.datetime, days: int, start: dt.date
) -> None:
    assert look_back_start(now, days) == start


@pytest.mark.parametrize("days", [0, -1, 3651, 99999999])
def test_look_back_start_is_bounded(days: int) -> None:
    with pytest.raises(InvalidValueError):
        look_back_start(dt.datetime(2026, 11, 22, tzinfo=dt.UTC), days)


def test_look_back_start_needs_an_aware_moment() -> None:
    with pytest.raises(InvalidValueError):
        look_back_start(dt.datetime(2026, 11, 22), 1)
