from pathlib import Path

import pytest

from prefetch.settings import SettingsProblems, load_settings

EXAMPLE = Path(__file__).parents[1] / "config" / "prefetch.example.toml"


def test_defaults_and_env_override() -> None:
    s = load_settings(
        None,
        env={
            "PREFETCH_THROTTLE_RATE_PER_SECOND": "1.5",
            "PREFETCH_DATABASE_URL": "postgresql+psycopg://x/y",
        },
    )
    assert s.throttle.rate_per_second == 1.5
    assert s.database_url == "postgresql+psycopg://x/y"


def test_example_file_is_valid_and_documents_every_key() -> None:
    settings = load_settings(EXAMPLE, env={})
    text = EXAMPLE.read_text()
    for section in (
        "hospital",
        "database",
        "lsp",
        "throttle",
        "run",
        "security",
        "logging",
        "aorta",
    ):
        for key in type(getattr(settings, section)).__dataclass_fields__:
            assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key} undocumented"


def test_every_problem_reported_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[throttle]\nrate_per_second = "fast"\nmax_in_flight = 0\n'
        '[hospital]\nura = "12"\ncolour = "red"\n[aorta]\nprocessing_code = "X"\n'
        "[nonsense]\n"
    )
    with pytest.raises(SettingsProblems) as info:
        load_settings(path, env={})
    keys = {k for k, _ in info.value.problems}
    assert {
        "throttle.rate_per_second",
        "throttle.max_in_flight",
        "hospital.ura",
        "hospital.colour",
        "aorta.processing_code",
        "nonsense",
    } <= keys


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[lsp\n")
    with pytest.raises(SettingsProblems, match="not valid TOML"):
        load_settings(path, env={})
    with pytest.raises(SettingsProblems, match="file not found"):
        load_settings(tmp_path / "none.toml", env={})


def test_lists_from_toml_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[security]\ntrust_anchors = ["/etc/uzi/root.pem"]\ncrls = 5\n')
    with pytest.raises(SettingsProblems) as info:
        load_settings(path, env={})
    assert [k for k, _ in info.value.problems] == ["security.crls"]
    s = load_settings(None, env={"PREFETCH_SECURITY_TRUST_ANCHORS": "/a.pem, /b.pem"})
    assert s.security.trust_anchors == ("/a.pem", "/b.pem")


def test_removed_exports_dir_names_its_replacement(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[daemon]\nexports_dir = "/srv/exports"\n')
    with pytest.raises(SettingsProblems) as info:
        load_settings(path, env={})
    [(key, message)] = info.value.problems
    assert key == "daemon.exports_dir"
    assert "appointment book" in message and "prefetch intake load" in message
