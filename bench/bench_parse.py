"""Median time to parse the real 65-dispense LSP batch into domain values.

    python bench/bench_parse.py [--rounds N] [--file PATH]

Prints the median (and p90) of `parse_answer` (hardened parse + SOAP/batch handling +
every dispense into `Dispense`) next to plain `lxml.etree.fromstring` on the same bytes.
Bound (issue 3): under 15 ms median on the reference machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from prefetch.hl7v3.parse import parse_answer

DEFAULT = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "hl7v3"
    / "examples"
    / "lsp-batch"
    / "999900444_Decker-multi-QURX113.xml"
)
BOUND_MS = 15.0


def measure(fn: Callable[[], object], rounds: int) -> list[float]:
    fn()  # warm-up: schema-free, but imports and caches
    times = []
    gc.collect()
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--file", type=Path, default=DEFAULT)
    args = ap.parse_args()
    data = args.file.read_bytes()
    parsed = parse_answer(data)
    count = len(parsed.dispenses)
    lxml_times = measure(lambda: etree.fromstring(data), args.rounds)
    ours = measure(lambda: parse_answer(data), args.rounds)
    med = statistics.median(ours)
    p90 = statistics.quantiles(ours, n=10)[-1]
    print(
        f"file: {args.file.name} ({len(data)} bytes, {count} dispenses, "
        f"{len(parsed.sources)} sources)"
    )
    print(f"lxml.etree.fromstring   median {statistics.median(lxml_times):6.2f} ms")
    print(
        f"parse_answer -> domain  median {med:6.2f} ms   p90 {p90:6.2f} ms   "
        f"({args.rounds} rounds; bound {BOUND_MS:.0f} ms: {'ok' if med < BOUND_MS else 'OVER'})"
    )
    return 0 if med < BOUND_MS else 1


if __name__ == "__main__":
    sys.exit(main())
