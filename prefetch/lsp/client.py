"""`LspClient`: one signed `QURX_IN990111NL` per call over mutual TLS -> `LspReply`.

Transport: a `requests.Session` with the UZI server certificate (`prefetch.security.tls
.mtls_session`), explicit connect/read time-outs, keep-alive. The envelope is built by
`prefetch.hl7v3` and signed by `prefetch.security`; it is sent byte for byte as signed.
Each query goes straight to the session's transport adapter (`adapter.send` with the
session's headers, proxies and pool): the session layer adds nothing the LSP needs (no
cookies, no auth, no environment) and cost a third of the send CPU; a redirect is not
followed (a signed query is never re-sent elsewhere) and maps like any unexpected status.

Why not zeep (DESIGN.md names it): the body is one HL7v3 interaction we build and validate
ourselves against the assembled XSDs, and the WS-Security header carries XML signatures
that any re-serialisation would break. zeep's part would be `Transport.post`, which is
`session.post` plus envelope logging at DEBUG (the thing STYLE.md warns about) and a
`file://` adapter mounted on the mTLS session. We keep the session and leave zeep out.

Failure mapping (the `LspGateway` contract):
- connection refused/reset, time-out, HTTP 5xx without a SOAP fault, 503/429 with
  Retry-After, truncated or malformed XML -> TRANSIENT with a code;
- the server's TLS certificate does not verify, or the server refuses our client
  certificate (expired, revoked, unknown CA) -> SecurityError (stop: fail closed);
- a SOAP fault or an HL7 answer -> parsed and classified by `prefetch.hl7v3.codes`;
- an answer that belongs to another query -> FAILED ("CORRELATION").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.structures import CaseInsensitiveDict

from prefetch.clock import SYSTEM_CLOCK
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.errors import CorrelationError, MessageError, SecurityError
from prefetch.hl7v3.aorta_settings import AortaSettings
from prefetch.hl7v3.codes import classify
from prefetch.hl7v3.params import QueryParams, QueryRef
from prefetch.hl7v3.parse import parse_answer
from prefetch.hl7v3.xmlparse import DEFAULT_MAX_BYTES
from prefetch.ports import Clock, LspReply
from prefetch.security.envelope_template import EnvelopeTemplates
from prefetch.security.keys import Credential
from prefetch.security.tls import MtlsAdapter, on_the_wire

_OVERLOAD_STATUS = frozenset({429, 503})
# TLS alerts with which a server refuses our client certificate (OpenSSL reason names).
_CLIENT_CERT_ALERTS = (
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_REVOKED",
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "UNSUPPORTED_CERTIFICATE",
    "CERTIFICATE_REQUIRED",
)


@dataclass(frozen=True, slots=True)
class LspEndpoint:
    url: str
    connect_timeout: float = 5.0
    read_timeout: float = 120.0  # also the bound on receiving the whole answer
    max_answer_bytes: int = DEFAULT_MAX_BYTES


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None


def _transient(code: str, detail: str, retry_after: float | None = None) -> Outcome:
    return Outcome(OutcomeKind.TRANSIENT, code=code, detail=detail, retry_after=retry_after)


class LspClient:
    """Implements `prefetch.ports.LspGateway` against the LSP (or the simulator)."""

    def __init__(
        self,
        *,
        endpoint: LspEndpoint,
        session: requests.Session,
        credential: Credential,
        aorta: AortaSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.endpoint = endpoint
        self.session = session
        self.credential = credential
        self.aorta = aorta or AortaSettings()
        self.clock = clock
        self.templates = EnvelopeTemplates(credential, settings=self.aorta)
        self._headers: dict[str, str] = {
            **{k: v.decode() if isinstance(v, bytes) else v for k, v in session.headers.items()},
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{self.aorta.soap_action}"',
        }
        self._url = requests.Request("POST", endpoint.url).prepare().url or endpoint.url
        # our mutual-TLS adapter takes the send time after connecting (`on_the_wire`)
        self._gated = isinstance(session.get_adapter(self._url), MtlsAdapter)

    def envelope(self, params: QueryParams, *, mandate_token: bytes | None) -> bytes:
        """The exact bytes that are sent for this query (also for `hl7 build-query --signed`):
        `secure_query`'s bytes, made from a per-run template (`EnvelopeTemplates`)."""
        return self.templates.envelope(params, mandate_token=mandate_token, now=self.clock.now())

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
        return self.send(params, self.envelope(params, mandate_token=mandate_token))

    def send(
        self, params: QueryParams, data: bytes, *, on_wire: Callable[[], None] | None = None
    ) -> LspReply:
        """Send the envelope `envelope(params, ...)` made, as it is, and classify the answer.
        `on_wire`: see `prefetch.ports.TwoPhaseGateway`; the answer's `elapsed_seconds`
        count from there."""
        wire = [time.monotonic()]
        if on_wire is None:
            return self._send(params, data, wire)
        if not self._gated:  # no gated connections: wait before connecting
            on_wire()
            wire[0] = time.monotonic()
            return self._send(params, data, wire)
        wait = on_wire

        def gate() -> None:
            wait()
            wire[0] = time.monotonic()

        with on_the_wire(gate):
            return self._send(params, data, wire)

    def _send(self, params: QueryParams, data: bytes, wire: list[float]) -> LspReply:
        try:
            response, content = self._exchange(data, wire)
        except _TooLarge:
            return self._reply(_transient("TOO_LARGE", "answer over the size limit"), wire)
        except _TooSlow:
            return self._reply(_transient("TIMEOUT", "answer not complete in time"), wire)
        except requests.exceptions.SSLError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "hostname" in text.lower():
                raise SecurityError(
                    "the LSP's TLS certificate does not verify", url=self.endpoint.url
                ) from None
            alert = next((a for a in _CLIENT_CERT_ALERTS if a in text), None)
            if alert is not None:  # retrying cannot help: stop the run, alert operations
                raise SecurityError(
                    "the LSP refused our TLS client certificate", alert=alert.lower()
                ) from None
            return self._reply(_transient("TLS", type(exc).__name__), wire)
        except requests.exceptions.Timeout as exc:
            return self._reply(_transient("TIMEOUT", type(exc).__name__), wire)
        except requests.exceptions.RequestException as exc:
            return self._reply(_transient("TRANSPORT", type(exc).__name__), wire)
        if response.status_code in _OVERLOAD_STATUS:
            return self._reply(
                _transient(
                    f"HTTP_{response.status_code}",
                    "LSP overloaded",
                    _retry_after(response.headers.get("Retry-After")),
                ),
                wire,
            )
        if response.status_code not in (200, 500):
            return self._reply(
                _transient(f"HTTP_{response.status_code}", "unexpected HTTP status"), wire
            )
        try:
            parsed = parse_answer(content, expect=QueryRef.of(params), expect_bsn=params.bsn)
        except CorrelationError as exc:
            return self._reply(
                Outcome(OutcomeKind.FAILED, code="CORRELATION", detail=exc.message), wire
            )
        except MessageError as exc:
            return self._reply(_transient("MALFORMED", exc.message), wire)
        return self._reply(classify(parsed), wire, parsed.batch_message_id)

    def _exchange(self, data: bytes, wire: list[float]) -> tuple[requests.Response, bytes]:
        """POST `data` through the session's adapter; the response and its bounded body."""
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = self._url
        request.headers = CaseInsensitiveDict(self._headers)
        request.headers["Content-Length"] = str(len(data))
        request.body = data
        adapter = self.session.get_adapter(self._url)
        response = adapter.send(
            request,
            stream=True,
            timeout=(self.endpoint.connect_timeout, self.endpoint.read_timeout),
            verify=True,
            cert=None,
            proxies=self.session.proxies,
        )
        return response, self._read_bounded(response, wire)

    def _read_bounded(self, response: requests.Response, wire: list[float]) -> bytes:
        """The body, refused past `max_answer_bytes` or past the overall deadline (the
        read time-out alone bounds each read, not a trickling answer). `wire[0]`: when the
        query left (the wait for its send slot is not the LSP's time)."""
        deadline = wire[0] + self.endpoint.connect_timeout + self.endpoint.read_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > self.endpoint.max_answer_bytes:
                    raise _TooLarge
                if time.monotonic() > deadline:
                    raise _TooSlow
                chunks.append(chunk)
        finally:
            response.close()
        return b"".join(chunks)

    @staticmethod
    def _reply(outcome: Outcome, wire: list[float], batch_id: str | None = None) -> LspReply:
        return LspReply(
            outcome=outcome, batch_message_id=batch_id, elapsed_seconds=time.monotonic() - wire[0]
        )
