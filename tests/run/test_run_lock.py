"""Taking the run's lock: a start refused by a holder that releases before it can be
named tries again instead of reporting "another process"."""

from __future__ import annotations

import datetime as dt

import pytest

from prefetch.clock import FakeClock
from prefetch.errors import AlreadyRunningError
from prefetch.ports import LockHolder
from prefetch.run_day import _acquire

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)


class ScriptedLock:
    """`try_acquire` answers from a script; `holder` names who holds it (or nobody)."""

    def __init__(self, answers: list[bool], holder: LockHolder | None) -> None:
        self.answers = answers
        self.named = holder
        self.tries = 0

    def try_acquire(self, name: str) -> bool:
        self.tries += 1
        return self.answers.pop(0) if self.answers else False

    def holder(self, name: str) -> LockHolder | None:
        return self.named

    def release(self, name: str) -> None:
        pass


def test_released_between_refusal_and_naming_tries_again() -> None:
    lock = ScriptedLock([False, True], holder=None)
    _acquire(lock, "run:card:2026-11-24", FakeClock(NOW), wait=False, on_stage=print)  # type: ignore[arg-type]
    assert lock.tries == 2


def test_a_named_holder_is_reported_at_once() -> None:
    holder = LockHolder("run:card:2026-11-24", 4242, "node-a", NOW, NOW)
    lock = ScriptedLock([], holder=holder)
    with pytest.raises(AlreadyRunningError, match="already running: pid 4242"):
        _acquire(lock, "run:card:2026-11-24", FakeClock(NOW), wait=False, on_stage=print)  # type: ignore[arg-type]
    assert lock.tries == 1


def test_nobody_named_for_long_is_reported_as_another_process() -> None:
    lock = ScriptedLock([], holder=None)
    with pytest.raises(AlreadyRunningError, match="another process holds"):
        _acquire(lock, "run:card:2026-11-24", FakeClock(NOW), wait=False, on_stage=print)  # type: ignore[arg-type]
    assert lock.tries > 2
