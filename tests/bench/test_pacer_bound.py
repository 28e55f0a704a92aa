"""The perfect-pacer bound the throughput and baseline benches report (`bench/pacer_bound.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

from pacer_bound import Sent, perfect_pacer_wall


def sends(*rows: tuple[float, float, str]) -> list[Sent]:
    return [Sent(started, elapsed, patient) for started, elapsed, patient in rows]


def test_the_rate_spaces_the_sends() -> None:
    day = sends(*((float(i), 1.0, f"p{i}") for i in range(4)))
    assert perfect_pacer_wall(day, rate=1.0, in_flight=10) == 4.0  # sent at 0, 1, 2, 3


def test_the_in_flight_cap_waits_for_answers() -> None:
    day = sends(*((float(i), 1.0, f"p{i}") for i in range(4)))
    assert perfect_pacer_wall(day, rate=10.0, in_flight=1) == 4.0
    assert perfect_pacer_wall(day, rate=10.0, in_flight=2) == 2.1  # 0-1, .1-1.1, 1-2, 1.1-2.1


def test_a_retry_waits_for_its_first_answer_and_goes_before_new_patients() -> None:
    # a is asked twice (the real run retried it much later), b and c once
    day = sends((0.0, 1.0, "a"), (0.1, 1.0, "b"), (7.0, 0.5, "a"), (9.0, 3.0, "c"))
    # a at 0 (answer 1.0); b at 0.1; c at 0.2 (no retry ready yet) ends at 3.2;
    # a's retry at 1.0 ends at 1.5
    assert perfect_pacer_wall(day, rate=10.0, in_flight=10) == 3.2
    # with one in flight: a 0-1, then a's retry (ready at 1) 1-1.5, b 1.5-2.5, c 2.5-5.5
    assert perfect_pacer_wall(day, rate=10.0, in_flight=1) == 5.5


def test_no_sends_no_time() -> None:
    assert perfect_pacer_wall([], rate=20.0, in_flight=50) == 0.0
