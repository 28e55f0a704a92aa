"""What the simulator counts, for `GET /_sim/stats` (tests and benchmarks assert on it).

Outcomes (one per query received on the LSP endpoint):

    records            at least one pharmacy answered OK
    no_records         registered, every pharmacy answered NF
    not_registered     nobody registered the BSN (in the profile's wire form)
    partial            a partial batch: some pharmacy timed out (an LSP QABRTITI item next
                       to the pharmacies' answers); always present in `by_outcome`, 0 or more
    region_refused     some pharmacy outside the client's region (AUTERR_SWV_FALSE)
    fault_<form>       a transient failure from the profile (soap_fault, http_503, ...)
    outage             refused during the profile's outage
    overload_rate      refused: over the allowed rate (a violation)
    overload_concurrency  refused: too many in flight (a violation)
    signature_failure  the security token was rejected (HTTP 500 SOAP fault)
    bad_request        not a query the simulator understands (HTTP 500 SOAP fault)
    invalid_query      the query does not validate against the schema (VALIDATIEFOUT)
    ping               HL7 ping answered
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any, NamedTuple

from prefetch.lspsim.ratelimit import RateEnforcer


class LoggedQuery(NamedTuple):
    """One received query as `GET /_sim/log` shows it (the BSN only as its SHA-256)."""

    at: dt.datetime
    bsn_sha256: str | None
    client: str
    outcome: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "bsn_sha256": self.bsn_sha256,
            "client": self.client,
            "outcome": self.outcome,
        }


class SimStats:
    """Thread-safe counters; the rate enforcer supplies peaks and violations."""

    def __init__(self, enforcer: RateEnforcer) -> None:
        self._enforcer = enforcer
        self._lock = threading.Lock()
        self._outcomes: Counter[str] = Counter()
        self._signature_reasons: Counter[str] = Counter()
        self._queries = 0
        self._tls_failures = 0
        self._connections = 0
        self._dispenses_sent = 0
        self._log: list[LoggedQuery] = []

    def query_received(self) -> None:
        with self._lock:
            self._queries += 1

    def outcome(self, name: str, *, dispenses: int = 0) -> None:
        with self._lock:
            self._outcomes[name] += 1
            self._dispenses_sent += dispenses

    def log_query(
        self, *, at: dt.datetime, bsn_sha256: str | None, client: str, outcome: str
    ) -> None:
        with self._lock:
            self._log.append(LoggedQuery(at, bsn_sha256, client, outcome))

    def query_log(self) -> list[LoggedQuery]:
        """Every query received since start or reset, in the order they were answered."""
        with self._lock:
            return list(self._log)

    def signature_failure(self, reason: str) -> None:
        """Count the reason; the outcome itself is counted with the answer."""
        with self._lock:
            self._signature_reasons[reason] += 1

    def tls_failure(self) -> None:
        with self._lock:
            self._tls_failures += 1

    def connection_opened(self) -> None:
        with self._lock:
            self._connections += 1

    def reset(self) -> None:
        with self._lock:
            self._outcomes.clear()
            self._signature_reasons.clear()
            self._queries = 0
            self._tls_failures = 0
            self._connections = 0
            self._dispenses_sent = 0
            self._log.clear()
        self._enforcer.reset()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view; never holds a BSN."""
        clients = self._enforcer.report()
        with self._lock:
            violations = {
                "rate": sum(c.violations["rate"] for c in clients),
                "concurrency": sum(c.violations["concurrency"] for c in clients),
            }
            refused = {
                "rate": sum(c.refused["rate"] for c in clients),
                "concurrency": sum(c.refused["concurrency"] for c in clients),
            }
            by_outcome = {"partial": 0, **self._outcomes}
            return {
                "queries_received": self._queries,
                "by_outcome": dict(sorted(by_outcome.items())),
                "dispenses_sent": self._dispenses_sent,
                "peak_rate_per_s": self._enforcer.peak_rate,
                "rate_limit": {
                    "max_rate_per_s": self._enforcer.max_rate,
                    "window_s": self._enforcer.window_s,
                    "per_window": self._enforcer.capacity or None,
                    "jitter_tolerance_s": self._enforcer.tolerance_s,
                },
                "peak_concurrency": self._enforcer.peak_concurrency,
                "in_flight": self._enforcer.in_flight,
                "violations": {**violations, "total": sum(violations.values())},
                "refused": refused,
                "signature_failures": sum(self._signature_reasons.values()),
                "signature_failure_reasons": dict(sorted(self._signature_reasons.items())),
                "tls_failures": self._tls_failures,
                "connections": self._connections,
                "clients": [
                    {
                        "client": c.client,
                        "peak_rate_per_s": c.peak_rate,
                        "peak_concurrency": c.peak_concurrency,
                        "violations": c.violations,
                        "refused": c.refused,
                    }
                    for c in clients
                ],
            }
