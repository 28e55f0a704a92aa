"""Profiles: the built-in set, TOML loading, validation, time scaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefetch.errors import ConfigError
from prefetch.lspsim.profiles import (
    BUILTIN,
    FailureForm,
    Faults,
    NotRegistered,
    Profile,
    load_profile,
    profile_from_dict,
)


def test_builtin_profiles_exist_with_their_shape() -> None:
    assert {"ideal", "realistic", "flaky", "outage", "regions"} <= set(BUILTIN)
    ideal = BUILTIN["ideal"]
    assert ideal.latency.median_s == 0 and ideal.faults.total == 0
    assert ideal.effective_rate is None
    realistic = BUILTIN["realistic"]
    assert realistic.latency.median_s == pytest.approx(1.5)
    assert realistic.latency.cap_s == 60
    assert 0 < realistic.faults.total < 0.05
    assert realistic.rate.max_rate == 2.0 and realistic.rate.max_concurrency == 4
    assert BUILTIN["flaky"].faults.total == pytest.approx(0.30)
    assert BUILTIN["outage"].outage.duration_s > 0
    assert BUILTIN["regions"].regions.enabled


def test_time_scale_compresses_durations_and_widens_the_rate() -> None:
    fast = load_profile("realistic", time_scale=0.02)
    assert fast.scaled(1.5) == pytest.approx(0.03)
    assert fast.effective_rate == pytest.approx(100.0)
    assert fast.rate.max_concurrency == 4


def test_toml_profile_starts_from_a_base(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        """
[profile]
base = "realistic"
name = "mine"
seed = 9
not_registered = "empty_batch"

[latency]
median_s = 0.5

[faults]
soap_fault = 0.1

[rate]
max_rate = 5
max_concurrency = 0

[outage]
duration_s = 10
form = "soap_fault"

[regions]
enabled = true
client_regions = [2, 3]
""",
        encoding="utf-8",
    )
    profile = load_profile(path)
    assert profile.name == "mine" and profile.seed == 9
    assert profile.not_registered is NotRegistered.EMPTY_BATCH
    assert profile.latency.median_s == 0.5
    assert profile.latency.cap_s == 60.0  # from the base
    assert profile.faults.soap_fault == 0.1
    assert profile.faults.http_503 == BUILTIN["realistic"].faults.http_503
    assert profile.rate.max_rate == 5 and profile.rate.max_concurrency is None
    assert profile.outage.form is FailureForm.SOAP_FAULT
    assert profile.regions.client_regions == frozenset({2, 3})


@pytest.mark.parametrize(
    "text",
    [
        "[latency]\nmedian = 1\n",
        "[nonsense]\nx = 1\n",
        "[profile]\nnot_registered = 'maybe'\n",
        "[profile]\nbase = 'nope'\n",
        "[faults]\nsoap_fault = 0.7\nhttp_503 = 0.7\n",
        "[profile\n",
    ],
)
def test_bad_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_profile(path)


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ConfigError, match="choices"):
        load_profile("nope")


def test_probabilities_are_checked() -> None:
    with pytest.raises(ConfigError):
        Profile(name="x", faults=Faults(soap_fault=-0.1))


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"rate": {"max_rate": "x"}}, "rate.max_rate"),
        ({"rate": {"max_concurrency": 2.5}}, "rate.max_concurrency"),
        ({"regions": {"enabled": 1}}, "regions.enabled"),
        ({"regions": {"client_regions": [1, "a"]}}, "regions.client_regions"),
        ({"profile": {"time_scale": "fast"}}, "profile.time_scale"),
        ({"latency": {"median_s": -1.0}}, "latency.median_s"),
    ],
)
def test_a_profile_value_of_the_wrong_type_names_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        profile_from_dict(data, origin="bad.toml")
    assert f"key={key}" in str(caught.value)


def test_a_rate_window_not_longer_than_the_tolerance_is_refused() -> None:
    with pytest.raises(ConfigError):
        profile_from_dict({"rate": {"max_rate": 2, "window_s": 0.05}})
