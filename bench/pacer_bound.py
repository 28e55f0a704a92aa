"""The shortest run a perfect client could have made with the answers the LSP gave.

Not a benchmark itself: `throughput.py` and `baseline.py` use it to say how much of a
run's wall time is ours and how much is the LSP's. `SendLog` records every query our
client sent (when, how long the answer took, for which patient); `perfect_pacer_wall`
replays those queries through an ideal client: one send every 1/rate seconds and never
more than the in-flight cap at once, the same order of patients, each patient's next
attempt sent the moment the previous answer is in (no backoff), every answer taking
exactly as long as it did in the real run. No client can do better without knowing the
latencies in advance, so `efficiency` / `perfect_efficiency` is how close the run came
to what the LSP allowed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sent:
    started: float  # time.monotonic() when the query left
    elapsed: float  # seconds until its answer (or failure) was in
    patient: str  # SHA-256 of the BSN: no BSN kept in the bench's memory longer than needed
    wall: float = 0.0  # time.time() when the query left (to compare with the simulator's log)


@dataclass
class SendLog:
    """Wraps `LspClient.send` while installed and keeps one `Sent` per query."""

    sends: list[Sent] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)  # seconds to write each request
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> SendLog:
        from prefetch.lsp.client import LspClient

        send = LspClient.send
        log = self

        def recorded(client: LspClient, params: Any, data: bytes, **kwargs: Any) -> Any:
            reply = send(client, params, data, **kwargs)
            started = time.monotonic() - reply.elapsed_seconds  # when it went on the wire
            wall = time.time() - reply.elapsed_seconds
            patient = hashlib.sha256(params.bsn.value.encode()).hexdigest()
            with log._lock:
                log.sends.append(Sent(started, reply.elapsed_seconds, patient, wall))
            return reply

        LspClient.send = recorded  # type: ignore[method-assign]
        self._time_writes()
        return self

    def _time_writes(self) -> None:
        """Keep how long writing each request took once the gate let it go (urllib3's
        `request`, which `_GatedConnection.request` calls after the gate): the part of
        the way to the LSP that is this process's."""
        import urllib3.connection

        request = urllib3.connection.HTTPConnection.request
        log = self

        def timed(conn: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return request(conn, *args, **kwargs)
            finally:
                with log._lock:
                    log.writes.append(time.monotonic() - started)

        urllib3.connection.HTTPConnection.request = timed  # type: ignore[method-assign]

    def clear(self) -> None:
        with self._lock:
            self.sends.clear()

    def mean_latency(self) -> float:
        return sum(s.elapsed for s in self.sends) / max(len(self.sends), 1)


def perfect_pacer_wall(sends: list[Sent], rate: float, in_flight: int) -> float:
    """Seconds from the first send to the last answer for the ideal client (module doc)."""
    if not sends:
        return 0.0
    attempts: dict[str, deque[float]] = {}
    order: list[str] = []
    for s in sorted(sends, key=lambda s: s.started):
        if s.patient not in attempts:
            attempts[s.patient] = deque()
            order.append(s.patient)
        attempts[s.patient].append(s.elapsed)
    first_attempts = deque(order)
    retries: list[tuple[float, int, str]] = []  # (ready at, tie-break, patient)
    answers: list[float] = []  # heap of answer times of queries in flight
    gap, now, end, sequence = 1.0 / rate, -1.0 / rate, 0.0, 0
    while first_attempts or retries:
        at = now + gap
        while answers and answers[0] <= at:
            heapq.heappop(answers)
        if len(answers) >= in_flight:  # wait for the first slot to free
            at = heapq.heappop(answers)
        if retries and (retries[0][0] <= at or not first_attempts):
            ready, _, patient = heapq.heappop(retries)
            at = max(at, ready)
        else:
            patient = first_attempts.popleft()
        elapsed = attempts[patient].popleft()
        done = at + elapsed
        heapq.heappush(answers, done)
        if attempts[patient]:
            sequence += 1
            heapq.heappush(retries, (done, sequence, patient))
        now, end = at, max(end, done)
    return end


def transit_seconds(sends: list[Sent], log: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(arrival, arrival - left) per query: from our gate letting it onto the wire to the
    simulator's arrival stamp (`/_sim/log` `at`), pairing each patient's queries in order.
    Arrivals are seconds since the epoch. Where a rate window at the simulator is fuller
    than our pacing allowed, this says whether the query left late or arrived late."""
    left: dict[str, deque[float]] = {}
    for s in sorted(sends, key=lambda s: s.wall):
        left.setdefault(s.patient, deque()).append(s.wall)
    pairs: list[tuple[float, float]] = []
    for q in sorted(log, key=lambda q: q["at"]):
        mine = left.get(q.get("bsn_sha256") or "")
        if mine:
            arrival = dt.datetime.fromisoformat(q["at"]).timestamp()
            pairs.append((arrival, arrival - mine.popleft()))
    return pairs
