"""Prometheus metrics of a daemon, with the official client library (prometheus-client).

One registry per daemon (not the library's global one), so tests and several daemons in
one process never share counters. What is measured:

| metric | type | what |
|---|---|---|
| `prefetch_lsp_queries_total{outcome}` | counter | answered queries by outcome kind |
| `prefetch_lsp_query_seconds` | histogram | time from send to classified answer |
| `prefetch_lsp_queries_in_flight` | gauge | queries of this daemon waiting for an answer |
| `prefetch_lsp_query_rate_per_second` | gauge | queries sent by this daemon in the last 10 s / 10 |
| `prefetch_rate_limit_per_second` | gauge | the configured global rate |
| `prefetch_breaker_state{state}` | gauge | 1 for the current state: closed/open/half_open |
| `prefetch_lsp_queries_resent_total` | counter | asked again: in flight in a process that died |
| `prefetch_runs_total{result}` | counter | executions by result (finished/stopped/failed) |
| `prefetch_run_duration_seconds{schedule}` | histogram | how long an execution took |
| `prefetch_run_items_left{run_id,schedule}` | gauge | items not yet final, per running run |
| `prefetch_daemon_leader` | gauge | 1 when this daemon schedules, else 0 |
| `prefetch_last_run_finished_timestamp_seconds` | gauge | when this daemon last saw a run end |

The cluster-wide query rate is `sum(rate(prefetch_lsp_queries_total[1m]))`.
Labels never carry patient data: outcomes, schedule ids and run ids only.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from prefetch.hl7v3.params import QueryParams
from prefetch.ports import LspGateway, LspReply, TwoPhaseGateway

BREAKER_STATES = ("closed", "open", "half_open")
QUERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0)
RUN_BUCKETS = (1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400)
RATE_WINDOW_S = 10.0


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queries = Counter(
            "prefetch_lsp_queries", "LSP queries answered, by outcome", ["outcome"], registry=r
        )
        self.query_seconds = Histogram(
            "prefetch_lsp_query_seconds", "LSP query latency", buckets=QUERY_BUCKETS, registry=r
        )
        self.in_flight = Gauge(
            "prefetch_lsp_queries_in_flight", "LSP queries waiting for an answer", registry=r
        )
        self._sent: collections.deque[float] = collections.deque()
        self._sent_lock = threading.Lock()
        Gauge(
            "prefetch_lsp_query_rate_per_second",
            f"LSP queries sent per second over the last {RATE_WINDOW_S:g} s",
            registry=r,
        ).set_function(self._rate)
        self.rate_limit = Gauge(
            "prefetch_rate_limit_per_second", "configured global query rate", registry=r
        )
        self.breaker = Gauge(
            "prefetch_breaker_state", "circuit breaker state (1 = current)", ["state"], registry=r
        )
        self.queries_resent = Counter(
            "prefetch_lsp_queries_resent",
            "LSP queries asked again after a crash (in flight in a process that stopped)",
            registry=r,
        )
        self.runs = Counter("prefetch_runs", "run executions by result", ["result"], registry=r)
        self.run_seconds = Histogram(
            "prefetch_run_duration_seconds",
            "duration of a run execution",
            ["schedule"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.leader = Gauge("prefetch_daemon_leader", "1 when this daemon leads", registry=r)
        self.last_run_finished = Gauge(
            "prefetch_last_run_finished_timestamp_seconds",
            "when this daemon last saw a run end (Unix time)",
            registry=r,
        )

    def _rate(self) -> float:
        with self._sent_lock:
            self._trim(time.monotonic())
            return len(self._sent) / RATE_WINDOW_S

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0] < now - RATE_WINDOW_S:
            self._sent.popleft()

    def query_sent(self) -> None:
        now = time.monotonic()
        with self._sent_lock:
            self._sent.append(now)
            self._trim(now)
        self.in_flight.inc()

    def query_answered(self, outcome: str, seconds: float) -> None:
        self.in_flight.dec()
        self.queries.labels(outcome=outcome).inc()
        self.query_seconds.observe(seconds)

    def breaker_from(self, state: Callable[[], str]) -> None:
        """Read the breaker's state at every scrape."""
        for name in BREAKER_STATES:
            self.breaker.labels(state=name).set_function(functools.partial(_is, state, name))

    def run_ended(self, schedule: str, result: str, seconds: float, *, resent: int = 0) -> None:
        self.runs.labels(result=result).inc()
        self.queries_resent.inc(resent)
        self.run_seconds.labels(schedule=schedule).observe(seconds)
        self.last_run_finished.set(time.time())

    def items_left_from(self, source: Callable[[], Sequence[tuple[str, str, int]]]) -> None:
        """`source()` gives (run_id, schedule, items left) of the running runs."""
        self.registry.register(_ItemsLeft(source))


def _is(state: Callable[[], str], name: str) -> float:
    return 1.0 if state() == name else 0.0


class _ItemsLeft(Collector):
    def __init__(self, source: Callable[[], Sequence[tuple[str, str, int]]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "prefetch_run_items_left",
            "items of a running run not yet final",
            labels=["run_id", "schedule"],
        )
        try:
            rows = self._source()
        except Exception:  # a scrape must not fail on a database hiccup
            rows = ()
        for run_id, schedule, left in rows:
            family.add_metric([run_id, schedule], float(left))
        yield family


class MeteredGateway:
    """An `LspGateway` that counts and times every query of the gateway it wraps."""

    def __init__(self, gateway: LspGateway, metrics: Metrics) -> None:
        self._gateway = gateway
        self._metrics = metrics

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
        def call(gate: Callable[[], None]) -> LspReply:
            gate()  # a one-phase gateway sends when called
            return self._gateway.query(params, mandate_token=mandate_token)

        return self._metered_from_wire(call, None)

    def _metered_from_wire(
        self, call: Callable[[Callable[[], None]], LspReply], on_wire: Callable[[], None] | None
    ) -> LspReply:
        """`call(gate)` counted from the moment it passes `gate` (the query leaves): a
        query that never leaves is neither counted nor timed."""
        started: list[float] = []

        def gate() -> None:
            if on_wire is not None:
                on_wire()
            self._metrics.query_sent()
            started.append(time.monotonic())

        outcome = "error"
        try:
            reply = call(gate)
            outcome = reply.outcome.kind.value
            return reply
        finally:
            if started:
                self._metrics.query_answered(outcome, time.monotonic() - started[0])


class MeteredTwoPhaseGateway(MeteredGateway):
    """`MeteredGateway` of a two-phase gateway (`prefetch.ports.TwoPhaseGateway`): the
    engine still signs before the send time; only the send is counted and timed."""

    def __init__(self, gateway: TwoPhaseGateway, metrics: Metrics) -> None:
        super().__init__(gateway, metrics)
        self._two_phase = gateway

    def envelope(self, params: QueryParams, *, mandate_token: bytes | None) -> bytes:
        return self._two_phase.envelope(params, mandate_token=mandate_token)

    def send(
        self, params: QueryParams, data: bytes, *, on_wire: Callable[[], None] | None = None
    ) -> LspReply:
        return self._metered_from_wire(
            lambda gate: self._two_phase.send(params, data, on_wire=gate), on_wire
        )


def metered_gateway(gateway: LspGateway, metrics: Metrics) -> MeteredGateway:
    """`gateway`, counted and timed; two-phase when `gateway` is."""
    if isinstance(gateway, TwoPhaseGateway):
        return MeteredTwoPhaseGateway(gateway, metrics)
    return MeteredGateway(gateway, metrics)
