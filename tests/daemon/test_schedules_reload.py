"""Schedule files are re-read on change and used only when the whole set passes the
check; otherwise the old set stays in force and the log says which file and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from daemon_helpers import write_schedule
from structlog.testing import capture_logs

from prefetch.daemon.schedules import ScheduleBook
from prefetch.errors import ConfigError


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_valid_change_is_taken_bad_change_is_refused_and_said(tmp_path: Path) -> None:
    write_schedule(tmp_path, "card", run_at="19:00")
    book = ScheduleBook(tmp_path)
    assert not book.reload_if_changed()  # nothing changed
    write_schedule(tmp_path, "neur", run_at="18:00")
    assert book.reload_if_changed()
    assert sorted(s.id for s in book.schedules()) == ["card", "neur"]

    bad = write_schedule(tmp_path, "card", run_at="25:00")
    _touch_later(bad)
    with capture_logs() as logs:
        assert not book.reload_if_changed()
    card = book.get("card")
    assert card is not None and card.run_at.hour == 19  # the old one stays
    refused = [e for e in logs if e["event"] == "schedules_reload_refused"]
    assert len(refused) == 1
    assert "card.toml:3" in refused[0]["reason"] and "run_at" in refused[0]["reason"]
    assert book.refused is not None
    with capture_logs() as logs:
        assert not book.reload_if_changed()  # judged once, not on every poll
    assert logs == []

    write_schedule(tmp_path, "card", run_at="20:00")
    _touch_later(tmp_path / "card.toml")
    assert book.reload_if_changed()
    card = book.get("card")
    assert card is not None and card.run_at.hour == 20 and book.refused is None


def test_a_bad_set_at_start_is_an_error(tmp_path: Path) -> None:
    write_schedule(tmp_path, "card", run_at="7pm")
    with pytest.raises(ConfigError, match=r"card\.toml:3"):
        ScheduleBook(tmp_path)
