"""The schema set is read in place: nothing of ../shared in the tree, one setting to find it,
and without it nothing is called valid while the client and the simulator still work."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hl7_samples import make_params
from lxml import etree
from reference import SHARED, shared_path
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.hl7v3 import schema_set
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.schema import validate_query
from prefetch.hl7v3.schema_set import ENV_REQUIRE, ENV_SCHEMA_DIR, SchemaSetMissingError

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_tracked_file_equals_a_file_of_the_shared_material() -> None:
    shared = shared_path()
    shared_digests = {_digest(p) for p in shared.rglob("*") if p.is_file()}
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    copies = [
        name.decode()
        for name in tracked
        if name
        and (ROOT / name.decode()).is_file()
        and _digest(ROOT / name.decode()) in shared_digests
    ]
    assert copies == [], f"copies of {SHARED} in the tree"


def test_every_catalog_file_is_in_the_shared_schema_set() -> None:
    assert schema_set.missing_files(shared_path("hl7v3", "schemas")) == []


@pytest.fixture
def no_schema_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    missing = tmp_path / "no-schemas"
    monkeypatch.setenv(ENV_SCHEMA_DIR, str(missing))
    monkeypatch.delenv(ENV_REQUIRE, raising=False)
    schema_set.configure(None)
    yield missing
    monkeypatch.undo()
    schema_set.configure(None)


def test_without_a_schema_set_nothing_is_called_valid(no_schema_set: Path) -> None:
    with pytest.raises(SchemaSetMissingError, match="schema set not found"):
        validate_query(build_query(make_params()))


def test_a_setting_points_at_the_schema_set(no_schema_set: Path) -> None:
    schema_set.configure(str(shared_path("hl7v3", "schemas")))
    validate_query(build_query(make_params()))  # validates again: the setting wins


def test_an_include_outside_the_catalog_is_refused(tmp_path: Path) -> None:
    xsd = tmp_path / "evil.xsd"
    xsd.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:include schemaLocation="/etc/passwd-schema.xsd"/></xs:schema>'
    )
    with pytest.raises((SchemaSetMissingError, etree.XMLSchemaParseError)):
        etree.XMLSchema(etree.parse(str(xsd), schema_set.schema_parser()))


def test_config_check_says_the_schema_set_is_missing(no_schema_set: Path) -> None:
    result = runner.invoke(app, ["config", "check"], env={ENV_SCHEMA_DIR: str(no_schema_set)})
    assert f"warning: hl7v3.schema_dir: HL7v3 schema set not found at {no_schema_set}" in (
        result.stderr
    )


def test_config_check_requires_the_schema_set_when_told(no_schema_set: Path) -> None:
    result = runner.invoke(
        app, ["config", "check"], env={ENV_SCHEMA_DIR: str(no_schema_set), ENV_REQUIRE: "1"}
    )
    assert result.exit_code == 2
    assert "error: hl7v3.schema_dir: HL7v3 schema set not found" in result.stderr


def test_config_check_names_the_schema_set_it_uses() -> None:
    schemas = shared_path("hl7v3", "schemas")
    result = runner.invoke(app, ["config", "check"], env={ENV_SCHEMA_DIR: str(schemas)})
    assert f"ok: HL7v3 schema set at {schemas}" in result.stdout


@pytest.mark.slow
def test_demo_runs_without_a_schema_set(no_schema_set: Path, tmp_path: Path) -> None:
    from prefetch.cli.demo import run_demo

    result = run_demo(tmp_path / "demo", profile_name="ideal", key_size=2048)
    assert result.run.stopped is None
    assert result.run.summary.by_outcome.get("records", 0) > 50
    assert result.simulator_stats["by_outcome"].get("invalid_query", 0) == 0
