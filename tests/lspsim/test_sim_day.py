"""A compressed clinic day against the `realistic` and `flaky` profiles with a careful
reference client (keeps to the limits, retries transient failures): every dispense in the
look-back window arrives, no rate violation is counted, every failure has a reason."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator

import pytest
import requests
from lspsim_helpers import (
    HL7,
    REFERENCE_DATE,
    issue_code,
    items_of,
    make_params,
    query_body,
    response_code,
)
from lxml import etree

from prefetch.domain.dispense import Dispense
from prefetch.errors import XmlSecurityError
from prefetch.hl7v3.dispense_read import read_dispense
from prefetch.hl7v3.soap import unwrap
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lspsim.profiles import Profile, load_profile
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World, WorldPatient

SINCE = REFERENCE_DATE - dt.timedelta(days=365)


class _Limiter:
    """At most 90% of `rate` sends in any sliding second (widened by a margin for the time
    between here and the server's clock) and `cap` in flight (client side). The headroom
    is for this test's process: the simulator's threads share its GIL, so at 100 queries/s
    an arrival can be stamped 100 ms after its send, more than a window margin allows."""

    window = 1.05

    def __init__(self, rate: float, cap: int) -> None:
        self.rate, self.sent = int(rate * 0.9), deque[float]()
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(cap)

    def acquire(self) -> None:
        self.slots.acquire()
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and self.sent[0] <= now - self.window:
                    self.sent.popleft()
                if len(self.sent) < self.rate:
                    self.sent.append(now)
                    return
                wait = self.sent[0] + self.window - now
            time.sleep(wait)


def _fetch(
    http: requests.Session,
    url: str,
    limiter: _Limiter,
    patient: WorldPatient,
) -> tuple[str, list[Dispense]]:
    """One patient: retry transient failures; ("ok"|"none"|"failed:<why>", dispenses)."""
    why = ""
    for _ in range(10):
        limiter.acquire()
        try:
            response = http.post(
                url,
                data=query_body(make_params(patient.bsn, since=SINCE)),
                headers={"Content-Type": "text/xml"},
                timeout=30,
            )
        except requests.ConnectionError:
            why = "connection"
            continue
        finally:
            limiter.slots.release()
        if response.status_code == 503:
            why = "503"
            time.sleep(float(response.headers["Retry-After"]) * 0.02)
            continue
        try:
            payload = unwrap(parse_xml(response.content))
        except XmlSecurityError:
            why = "xml"
            continue
        if not isinstance(payload, etree._Element):
            why = f"fault:{payload.reason}"
            continue
        items = items_of(payload)
        if any(issue_code(i) == "QABRTITI" for i in items):
            why = "QABRTITI"
            continue
        dispenses = [
            d
            for d in map(read_dispense, payload.iter(f"{HL7}medicationDispenseEvent"))
            if d is not None
        ]
        codes = {response_code(i) for i in items}
        return ("ok" if "OK" in codes else "none"), dispenses
    return f"failed:{why}", []


def _run_day(
    world: World, profile: Profile, patients: list[WorldPatient]
) -> Iterator[tuple[dict[str, object], dict[str, tuple[str, list[Dispense]]]]]:
    with SimulatorServer(world, profile, tls=None) as sim:
        limiter = _Limiter(profile.effective_rate or 1000, profile.rate.max_concurrency or 8)
        results: dict[str, tuple[str, list[Dispense]]] = {}
        todo = list(patients)
        lock = threading.Lock()

        def worker() -> None:
            with requests.Session() as http:
                while True:
                    with lock:
                        if not todo:
                            return
                        patient = todo.pop()
                    results[patient.bsn.value] = _fetch(http, sim.url, limiter, patient)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        yield sim.stats(), results


@pytest.mark.parametrize("name", ["realistic", "flaky"])
def test_a_compressed_day(world: World, name: str) -> None:
    profile = load_profile(name, time_scale=0.02)
    patients = list(world.patients[:120])
    start = time.monotonic()
    for stats, results in _run_day(world, profile, patients):
        assert time.monotonic() - start < 40
        assert stats["violations"]["total"] == 0, stats
        outcomes = Counter(kind for kind, _ in results.values())
        for patient in patients:
            kind, got = results[patient.bsn.value]
            assert not kind.startswith("failed"), (kind, stats)
            assert got == world.dispenses_for(patient.bsn, SINCE)
            assert (kind == "ok") == bool(got)
        assert outcomes["ok"] > outcomes["none"] > 0
        by_outcome = stats["by_outcome"]
        assert isinstance(by_outcome, dict)
        assert by_outcome["records"] == outcomes["ok"]
        if name == "flaky":
            faults = sum(v for k, v in by_outcome.items() if k.startswith("fault_"))
            assert faults > 0.15 * int(stats["queries_received"])  # type: ignore[call-overload]
