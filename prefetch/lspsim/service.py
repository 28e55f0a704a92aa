"""The simulated LSP behind the HTTP layer: one call per request on the LSP endpoint.

Order of work for a request, like the real switch point:

1. parse the SOAP envelope with the hardened parser; an HL7 ping is answered at once;
2. rate and concurrency check per client (refused: HTTP 503 + Retry-After, a violation);
3. security: with a verifier, the WS-Security tokens are checked against the TLS client
   (refused: HTTP 500 SOAP fault whose faultstring is the reason, a signature failure);
4. the `QURX_IN990111NL` is validated against the schema; an invalid query (a second
   `patientID`, a missing element) is refused like the LSP does, with an `MCCI_IN000002`
   accept acknowledgement `CE` carrying `VALIDATIEFOUT` (outcome `invalid_query`);
   in plain mode the query is then read with `parse_query`;
5. the seeded plan (faults, outage, per-pharmacy latency), the wait, the fan-out.

The query counts as in flight from admission until its answer is ready. Every query
received (not pings) is written to the query log (`GET /_sim/log`) with its arrival time,
the SHA-256 of its BSN (read leniently, also from a query that is refused), the client and
the outcome.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import threading
from collections import Counter
from typing import Any, Protocol

import structlog
from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.errors import PrefetchError, SecurityError
from prefetch.hl7v3.answer import build_accept_ack
from prefetch.hl7v3.params import QueryParams, QueryRef
from prefetch.hl7v3.query import parse_query
from prefetch.hl7v3.schema import (
    QUERY_XSD,
    SchemaValidationError,
    load_schema,
    validate_query,
)
from prefetch.hl7v3.schema_set import SchemaSetMissingError, schema_set_problem, schemas_required
from prefetch.hl7v3.soap import unwrap, wrap_soap_body
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lspsim.clock import Clock, SystemClock
from prefetch.lspsim.fanout import MessageIds, SimAnswer, answer_query, overload, soap_fault
from prefetch.lspsim.faults import plan_query
from prefetch.lspsim.ping import PING, answer_ping
from prefetch.lspsim.profiles import Profile
from prefetch.lspsim.ratelimit import RateEnforcer
from prefetch.lspsim.stats import SimStats
from prefetch.lspsim.world import World
from prefetch.security.verify import EnvelopeVerifier

log = structlog.get_logger("prefetch.lspsim")


class Verified(Protocol):
    """What a verifier returns: at least the query read from the verified message."""

    @property
    def params(self) -> QueryParams: ...


class Verifier(Protocol):
    """Checks the WS-Security header of an envelope; raises `SecurityError` with `.reason`.

    `prefetch.security`'s `EnvelopeVerifier` fits.
    """

    def verify(self, envelope: bytes, *, client_identity: Any) -> Verified: ...


def _reason(exc: SecurityError) -> tuple[str, str]:
    """(fault code, fault string) for a refusal: the reason's value is the fault string."""
    from prefetch.security.envelope import fault_code
    from prefetch.security.errors import RejectReason

    reason = getattr(exc, "reason", None)
    if isinstance(reason, RejectReason):
        return fault_code(reason), reason.value
    value = getattr(reason, "value", None)
    return "wsse:FailedAuthentication", str(value) if value is not None else "rejected"


QUERY_INTERACTION = "QURX_IN990111NL"
VALIDATION_ERROR = "VALIDATIEFOUT"
"""Transmission-level code for a query that does not validate (AORTA.md section 3)."""

_QUOTED = re.compile(r"'[^']*'")
_HL7 = {"hl7": "urn:hl7-org:v3"}


def _text(payload: etree._Element, path: str) -> str | None:
    xpath = "/".join(part if part.startswith("@") else f"hl7:{part}" for part in path.split("/"))
    found = payload.xpath(f"./{xpath}", namespaces=_HL7)
    return str(found[0]) if isinstance(found, list) and found else None


class _PerThread(threading.local):
    """Each thread's compiled XPath (lxml XPath objects are not shared between threads)."""

    def __init__(self) -> None:
        self.bsn = etree.XPath(
            "./hl7:ControlActProcess/hl7:queryByParameter/hl7:patientID/hl7:value"
            f"[@root='{oids.BSN}']/@extension",
            namespaces=_HL7,
        )


_THREAD = _PerThread()


def _bsn_sha256(payload: etree._Element) -> str | None:
    """Hex SHA-256 of the query's BSN, read without validating anything (None: no BSN)."""
    found = _THREAD.bsn(payload)
    if not isinstance(found, list) or not found:
        return None
    return hashlib.sha256(str(found[0]).encode()).hexdigest()


def _query_ref(payload: etree._Element) -> QueryRef:
    """The ids an acknowledgement echoes, read leniently from a query that did not validate."""
    message = Identifier(
        root=_text(payload, "id/@root") or "0", extension=_text(payload, "id/@extension")
    )
    query = Identifier(
        root=_text(payload, "ControlActProcess/queryByParameter/queryId/@root") or "0",
        extension=_text(payload, "ControlActProcess/queryByParameter/queryId/@extension"),
    )
    return QueryRef(message_id=message, query_id=query)


class LspService:
    """World + profile + clock + limits: turns request bodies into `SimAnswer`s."""

    def __init__(
        self,
        world: World,
        profile: Profile,
        *,
        clock: Clock | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.world = world
        self.profile = profile
        self.clock: Clock = clock or SystemClock()
        self.verifier = verifier
        self.enforcer = RateEnforcer(
            max_rate=profile.effective_rate,
            max_concurrency=profile.rate.max_concurrency,
            clock=self.clock,
            window_s=profile.rate.window_s,
            tolerance_s=profile.rate.tolerance_s,
        )
        self.stats = SimStats(self.enforcer)
        self.ids = MessageIds()
        self._attempts: Counter[str] = Counter()
        self._first_query_at: float | None = None
        self._lock = threading.Lock()
        self._schema_lock = threading.Lock()
        # Without a schema set queries are not validated (said once, here); with
        # PREFETCH_REQUIRE_SCHEMAS=1 that is a configuration error.
        problem = schema_set_problem()
        if problem is not None and schemas_required():
            raise SchemaSetMissingError(problem)
        if problem is not None:
            log.warning("lsp_sim_schema_validation_off", reason=problem)
        self.validates_queries = problem is None
        if self.validates_queries:
            # Compiled here, not by the first requests' threads: compiling in a connection
            # thread made libxml2 miss an include now and then (that request then failed).
            load_schema(QUERY_XSD)

    def reset(self) -> None:
        """Forget counters, attempts and the outage start (the world stays)."""
        self.stats.reset()
        with self._lock:
            self._attempts.clear()
            self._first_query_at = None

    def _next_attempt(self, bsn: str) -> tuple[int, float]:
        now = self.clock.monotonic()
        with self._lock:
            attempt = self._attempts[bsn]
            self._attempts[bsn] += 1
            if self._first_query_at is None:
                self._first_query_at = now
            return attempt, now - self._first_query_at

    def _in_outage(self, elapsed: float) -> bool:
        outage = self.profile.outage
        if outage.duration_s <= 0:
            return False
        start = self.profile.scaled(outage.start_after_s)
        return start <= elapsed < start + self.profile.scaled(outage.duration_s)

    def handle(self, body: bytes, *, client: str, client_identity: Any = None) -> SimAnswer:
        """Answer one POST to the LSP endpoint (sleeps for the simulated latency)."""
        arrived = self.clock.monotonic()
        arrived_at = self.clock.now()
        try:
            tree = parse_xml(body)
            payload = unwrap(tree)
        except PrefetchError:
            answer = soap_fault("soap:Client", "Bericht is geen geldige XML", "bad_request")
            return self._received(answer, arrived_at, None, client)
        if not isinstance(payload, etree._Element):
            answer = soap_fault("soap:Client", payload.reason, "bad_request")
            return self._received(answer, arrived_at, None, client)
        if etree.QName(payload).localname == PING:
            return self._ping(payload)
        bsn_sha256 = _bsn_sha256(payload)
        refusal = self.enforcer.admit(client, at=arrived)
        if refusal is not None:
            answer = overload(
                self.profile, f"overload_{refusal.value}", self.profile.rate.retry_after_s
            )
            return self._received(answer, arrived_at, bsn_sha256, client)
        try:
            answer = self._query(body, tree, payload, client_identity)
        finally:
            self.enforcer.release(client)
        return self._received(answer, arrived_at, bsn_sha256, client)

    def _received(
        self, answer: SimAnswer, at: dt.datetime, bsn_sha256: str | None, client: str
    ) -> SimAnswer:
        """Count a received query and write it to the query log."""
        self.stats.query_received()
        self.stats.log_query(at=at, bsn_sha256=bsn_sha256, client=client, outcome=answer.outcome)
        return self._done(answer)

    def _done(self, answer: SimAnswer) -> SimAnswer:
        self.stats.outcome(answer.outcome, dispenses=answer.dispenses)
        return answer

    def _ping(self, payload: etree._Element) -> SimAnswer:
        try:
            pong = answer_ping(payload, message_id=self.ids.next(), now=self.clock.now())
        except PrefetchError as exc:
            return self._done(soap_fault("soap:Client", exc.message, "bad_request"))
        return self._done(SimAnswer(status=200, body=wrap_soap_body(pong), outcome="ping"))

    def _invalid(self, payload: etree._Element) -> SimAnswer | None:
        """None when the query validates against the schema; else the LSP's refusal:
        an `MCCI_IN000002` accept acknowledgement `CE` with `VALIDATIEFOUT`. Another
        interaction is left to `parse_query` (a SOAP fault: not a query we answer)."""
        if etree.QName(payload).localname != QUERY_INTERACTION or not self.validates_queries:
            return None
        try:
            with self._schema_lock:
                validate_query(payload)
        except SchemaValidationError as exc:
            first = _QUOTED.sub("'…'", exc.errors[0]) if exc.errors else "onbekende fout"
            ack = build_accept_ack(
                query=_query_ref(payload),
                code=VALIDATION_ERROR,
                code_system=oids.AORTA_ACK_DETAIL,
                text=f"Bericht voldoet niet aan het schema {QUERY_XSD}: {first}"[:500],
                message_id=self.ids.next(),
                receiver_application_id=_text(payload, "sender/device/id/@extension") or "0",
                now=self.clock.now(),
            )
            return SimAnswer(status=200, body=wrap_soap_body(ack), outcome="invalid_query")
        return None

    def _query(
        self, body: bytes, tree: etree._Element, payload: etree._Element, identity: Any
    ) -> SimAnswer:
        try:
            if isinstance(self.verifier, EnvelopeVerifier):  # reads the tree parsed here
                params = self.verifier.verify(body, client_identity=identity, parsed=tree).params
            elif self.verifier is not None:
                params = self.verifier.verify(body, client_identity=identity).params
            else:
                params = None
        except SecurityError as exc:
            code, reason = _reason(exc)
            self.stats.signature_failure(reason)
            return SimAnswer(
                status=500, outcome="signature_failure", body=soap_fault(code, reason, "").body
            )
        except PrefetchError as exc:
            return soap_fault("soap:Client", exc.message, "bad_request")
        refused = self._invalid(payload)
        if refused is not None:
            return refused
        try:
            if params is None:
                params = parse_query(payload)
        except PrefetchError as exc:
            return soap_fault("soap:Client", exc.message, "bad_request")
        attempt, elapsed = self._next_attempt(params.bsn.value)
        patient = self.world.patient(params.bsn)
        pharmacies = [r.pharmacy_ura for r in patient.registrations] if patient else []
        in_outage = self._in_outage(elapsed)
        plan = plan_query(
            self.profile,
            bsn=params.bsn.value,
            attempt=attempt,
            pharmacies=pharmacies,
            in_outage=in_outage,
        )
        self.clock.sleep(plan.delay_s)
        try:
            answer = answer_query(
                world=self.world,
                profile=self.profile,
                params=params,
                plan=plan,
                now=self.clock.now(),
                ids=self.ids,
            )
        except PrefetchError as exc:
            log.error(
                "lspsim.answer_failed", error=type(exc).__name__, query_id=params.query_id.extension
            )
            return soap_fault("soap:Server", "Interne fout in de simulator", "internal_error")
        if in_outage:
            answer = dataclasses.replace(answer, outcome="outage", dispenses=0)
        return answer
