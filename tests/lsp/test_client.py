"""How the client maps what comes back. The transport is a real `requests` session with a
canned adapter (httpx-style mock transport); the message and its signature are real."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import requests
from lsp_helpers import make_params
from requests.adapters import HTTPAdapter

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Code, Identifier
from prefetch.domain.dispense import Dispense, Product
from prefetch.domain.outcome import OutcomeKind
from prefetch.errors import SecurityError
from prefetch.hl7v3.answer import (
    SourceSystem,
    build_batch,
    build_dispense_item,
    build_lsp_issue_item,
)
from prefetch.hl7v3.params import QueryParams, QueryRef
from prefetch.hl7v3.query import parse_query
from prefetch.hl7v3.soap import build_soap_fault, wrap_soap_body
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lsp.client import LspClient, LspEndpoint
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki

Responder = Callable[[requests.PreparedRequest], requests.Response | Exception]


class CannedAdapter(HTTPAdapter):
    def __init__(self, responder: Responder) -> None:
        super().__init__()
        self.responder = responder
        self.requests: list[requests.PreparedRequest] = []

    def send(
        self, request: requests.PreparedRequest, *args: object, **kwargs: object
    ) -> requests.Response:
        self.requests.append(request)
        result = self.responder(request)
        if isinstance(result, Exception):
            raise result
        return result


def response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body
    r._content_consumed = True  # type: ignore[attr-defined]
    r.headers.update(headers or {})
    return r


def client_with(
    responder: Responder, credential: Credential, *, max_bytes: int = 20 * 1024 * 1024
) -> tuple[LspClient, CannedAdapter]:
    session = requests.Session()
    adapter = CannedAdapter(responder)
    session.mount("https://", adapter)
    client = LspClient(
        endpoint=LspEndpoint("https://lsp.test/lsp", max_answer_bytes=max_bytes),
        session=session,
        credential=credential,
    )
    return client, adapter


def answer_for(request: requests.PreparedRequest, *, with_item: bool = True) -> bytes:
    """A real batch answering the query in `request` (ids echoed from its body)."""
    assert isinstance(request.body, bytes)
    envelope = parse_xml(request.body)
    body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    params: QueryParams = parse_query(body[0])
    ref = QueryRef.of(params)
    now = dt.datetime.now(dt.UTC)
    items = []
    if with_item:
        items.append(
            build_lsp_issue_item(
                query=ref,
                code="KEY204",
                code_system="2.16.840.1.113883.2.4.6.6.1.1000",
                text="unknown key",
                message_id=Identifier("2.9", "1"),
                receiver_application_id="10008890",
                now=now,
            )
        )
    return wrap_soap_body(
        build_batch(
            query=ref,
            items=items,
            message_id=Identifier("2.9", "b1"),
            receiver_application_id="10008890",
            now=now,
        )
    )


def test_sends_signed_soap_with_headers(
    client_pki: DevPki, hospital_credential: Credential
) -> None:
    client, adapter = client_with(lambda r: response(200, answer_for(r)), hospital_credential)
    reply = client.query(make_params(client_pki), mandate_token=None)
    assert reply.outcome.kind is OutcomeKind.NO_REGISTRATIONS
    assert reply.batch_message_id == "2.9^b1"
    sent = adapter.requests[0]
    assert sent.headers["SOAPAction"] == '"urn:hl7-org:v3/QURX_IN990111NL"'
    assert sent.headers["Content-Type"].startswith("text/xml")
    assert b"wsse:Security" in sent.body  # type: ignore[operator]
    assert b"SignatureValue" in sent.body  # type: ignore[operator]


@pytest.mark.parametrize(
    ("responder", "kind", "code", "retry_after"),
    [
        (
            lambda r: response(503, b"busy", {"Retry-After": "7"}),
            OutcomeKind.TRANSIENT,
            "HTTP_503",
            7.0,
        ),
        (lambda r: response(429, b""), OutcomeKind.TRANSIENT, "HTTP_429", None),
        (lambda r: response(502, b"bad gateway"), OutcomeKind.TRANSIENT, "HTTP_502", None),
        (  # a redirect is not followed: the signed query goes nowhere else
            lambda r: response(302, b"", {"Location": "https://elsewhere.test/lsp"}),
            OutcomeKind.TRANSIENT,
            "HTTP_302",
            None,
        ),
        (
            lambda r: requests.exceptions.ConnectionError("reset by peer"),
            OutcomeKind.TRANSIENT,
            "TRANSPORT",
            None,
        ),
        (lambda r: requests.exceptions.ReadTimeout("slow"), OutcomeKind.TRANSIENT, "TIMEOUT", None),
        (lambda r: response(200, answer_for(r)[:300]), OutcomeKind.TRANSIENT, "MALFORMED", None),
        (lambda r: response(200, b"<html>proxy error</html>"), OutcomeKind.TRANSIENT, None, None),
        (
            lambda r: response(500, build_soap_fault("soap:Server", "busy")),
            OutcomeKind.TRANSIENT,
            "soap:Server",
            None,
        ),
        (
            lambda r: response(500, build_soap_fault("wsse:FailedCheck", "bad_signature")),
            OutcomeKind.FAILED,
            "wsse:FailedCheck",
            None,
        ),
    ],
)
def test_failure_mapping(
    client_pki: DevPki,
    hospital_credential: Credential,
    responder: Responder,
    kind: OutcomeKind,
    code: str | None,
    retry_after: float | None,
) -> None:
    client, _ = client_with(responder, hospital_credential)
    outcome = client.query(make_params(client_pki), mandate_token=None).outcome
    assert outcome.kind is kind
    if code is not None:
        assert outcome.code == code
    assert outcome.retry_after == retry_after


def test_answer_for_another_query_is_refused(
    client_pki: DevPki, hospital_credential: Credential
) -> None:
    other = make_params(client_pki)

    def foreign(_: requests.PreparedRequest) -> requests.Response:
        ref = QueryRef.of(other)
        item = build_dispense_item(
            query=ref,
            source=SourceSystem("00063703", "Apotheek", "10011427", "000277280"),
            bsn=other.bsn,
            dispenses=(),
            message_id=Identifier("2.9", "2"),
            receiver_application_id="1",
            now=dt.datetime.now(dt.UTC),
        )
        return response(
            200,
            build_batch(
                query=ref,
                items=[item],
                message_id=Identifier("2.9", "3"),
                receiver_application_id="1",
                now=dt.datetime.now(dt.UTC),
            ),
        )

    client, _ = client_with(foreign, hospital_credential)
    outcome = client.query(make_params(client_pki), mandate_token=None).outcome
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.code == "CORRELATION"


def test_unverifiable_server_certificate_stops(
    client_pki: DevPki, hospital_credential: Credential
) -> None:
    error = requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    client, _ = client_with(lambda r: error, hospital_credential)
    with pytest.raises(SecurityError):
        client.query(make_params(client_pki), mandate_token=None)


def test_oversize_answer_is_refused_before_parsing(
    client_pki: DevPki, hospital_credential: Credential
) -> None:
    client, _ = client_with(
        lambda r: response(200, answer_for(r)), hospital_credential, max_bytes=500
    )
    outcome = client.query(make_params(client_pki), mandate_token=None).outcome
    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.code == "TOO_LARGE"


def test_answer_about_another_patient_is_refused(
    client_pki: DevPki, hospital_credential: Credential
) -> None:
    def other_patient(request: requests.PreparedRequest) -> requests.Response:
        params = parse_query(
            parse_xml(request.body).find(  # type: ignore[arg-type, union-attr]
                "{http://schemas.xmlsoap.org/soap/envelope/}Body"
            )[0]
        )
        ref = QueryRef.of(params)
        now = dt.datetime.now(dt.UTC)
        item = build_dispense_item(
            query=ref,
            source=SourceSystem("00063703", "Apotheek", "10011427", "000277280"),
            bsn=Bsn("111222333"),
            dispenses=(
                Dispense(
                    id=Identifier("2.16.528.1.1007.3.3.1234567.3", "x1"),
                    dispensed_on=dt.date(2026, 10, 1),
                    product=Product(code=Code("16778685", "2.16.840.1.113883.2.4.4.8")),
                ),
            ),
            message_id=Identifier("2.9", "2"),
            receiver_application_id="1",
            now=now,
        )
        return response(
            200,
            build_batch(
                query=ref,
                items=[item],
                message_id=Identifier("2.9", "3"),
                receiver_application_id="1",
                now=now,
            ),
        )

    client, _ = client_with(other_patient, hospital_credential)
    outcome = client.query(make_params(client_pki), mandate_token=None).outcome
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.code == "CORRELATION"
