"""`prefetch hl7 build-query` and `prefetch hl7 parse` through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hl7_samples import BSN
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.hl7v3.query import parse_query
from prefetch.hl7v3.schema import validate_query
from prefetch.hl7v3.xmlparse import parse_xml

runner = CliRunner()
NS = {"h": "urn:hl7-org:v3", "s": "http://schemas.xmlsoap.org/soap/envelope/"}
BASE = [
    "hl7",
    "build-query",
    "--bsn",
    BSN.value,
    "--clinician-uzi",
    "123456782",
    "--clinician-role",
    "01.015",
    "--clinician-name",
    "Dr. A. van Arts",
    "--ura",
    "12345678",
    "--hospital-name",
    "Ziekenhuis Oost",
]


def test_build_query_prints_a_valid_query() -> None:
    result = runner.invoke(
        app,
        [
            *BASE,
            "--look-back-days",
            "30",
            "--message-id",
            "2.16.528.1.1007.3.3.12345678.1^m1",
            "--query-id",
            "2.16.528.1.1007.3.3.12345678.2^q1",
        ],
    )
    assert result.exit_code == 0, result.output
    root = parse_xml(result.stdout.encode())
    validate_query(root)
    params = parse_query(root)
    assert params.bsn == BSN
    assert params.overseer.uzi_number == "123456782"
    assert params.query_id.extension == "q1"
    assert params.look_back_from is not None


def test_build_query_with_author_and_soap() -> None:
    result = runner.invoke(app, [*BASE, "--author-uzi", "987654321", "--soap"])
    assert result.exit_code == 0, result.output
    env = parse_xml(result.stdout.encode())
    (query,) = env.xpath("/s:Envelope/s:Body/h:QURX_IN990111NL", namespaces=NS)
    validate_query(query)
    assert query.xpath(
        "//h:authorOrPerformer//h:AssignedPerson/h:id/@extension", namespaces=NS
    ) == ["987654321"]


@pytest.mark.parametrize(
    ("option", "value"), [("--bsn", "123456789"), ("--clinician-role", "doctor")]
)
def test_build_query_bad_input_is_one_line(option: str, value: str) -> None:
    args = list(BASE)
    args[args.index(option) + 1] = value
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert BSN.value not in result.stderr


def test_parse_json_shape(examples: Path) -> None:
    path = examples / "lsp-batch" / "999900444_Decker-multi-QURX113.xml"
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"sources", "issues"}
    for source in data["sources"]:
        assert set(source) >= {"organization_ura", "query_response_code", "issues", "dispenses"}
        for d in source["dispenses"]:
            assert set(d) >= {
                "id_root",
                "id_extension",
                "dispensed_on",
                "product_code",
                "product_system",
            }
    assert [s["query_response_code"] for s in data["sources"]] == ["NF", "OK", "OK"]
    assert sum(len(s["dispenses"]) for s in data["sources"]) == 65
    assert data["outcome"]["kind"] == "records"


def test_parse_text_summary(examples: Path) -> None:
    path = examples / "lsp-error" / "episodes_bundle_01.xml"
    result = runner.invoke(app, ["hl7", "parse", str(path)])
    assert result.exit_code == 0, result.output
    assert "AUTERR_SWV_FALSE" in result.stdout
    assert "outcome: refused (AUTERR_SWV_FALSE)" in result.stdout


def test_parse_with_expectation(examples: Path) -> None:
    path = examples / "lsp-batch" / "999900444_Decker-multi-QURX113.xml"
    good = [
        "--expect-message-id",
        "2.16.528.1.1007.3.3.69665.10008890.12^311422",
        "--expect-query-id",
        "2.16.528.1.1007.3.3.69665.10008890.18^311422",
    ]
    assert runner.invoke(app, ["hl7", "parse", str(path), *good]).exit_code == 0
    bad = [*good[:3], "2.16.528.1.1007.3.3.69665.10008890.12^311422"]
    result = runner.invoke(app, ["hl7", "parse", str(path), *bad])
    assert result.exit_code == 2
    assert str(path) in result.stderr


@pytest.mark.parametrize(
    "content", [None, b"not xml at all", b"<!DOCTYPE x><x/>", b"<x xmlns='urn:hl7-org:v3'/>"]
)
def test_parse_bad_input_names_the_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "answer.xml"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert "Traceback" not in result.output


def test_parse_fault_file(tmp_path: Path) -> None:
    from prefetch.hl7v3.answer import build_soap_fault

    path = tmp_path / "fault.xml"
    path.write_bytes(build_soap_fault("Client", "token refused"))
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["fault"] == {"code": "soap:Client", "reason": "token refused"}
    assert data["sources"] == []


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed")
def test_build_query_output_validates_with_xmllint(tmp_path: Path, xmllint_schemas: Path) -> None:
    """Issue 3, acceptance 2: the CLI's query validates with Debian's xmllint."""
    from prefetch.hl7v3.schema import QUERY_XSD

    result = runner.invoke(app, [*BASE, "--look-back-days", "365"])
    assert result.exit_code == 0, result.output
    doc = tmp_path / "query.xml"
    doc.write_text(result.stdout, encoding="utf-8")
    checked = subprocess.run(
        ["xmllint", "--noout", "--nonet", "--schema", str(xmllint_schemas / QUERY_XSD), str(doc)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    root = parse_xml(doc.read_bytes())
    assert root.xpath("h:versionCode/@code", namespaces=NS) == ["NICTIZEd2005-Okt"]
    assert root.xpath("h:profileId/@extension", namespaces=NS) == ["810"]
    assert root.xpath("//h:overseer/h:assignedEntity/h:id/@extension", namespaces=NS) == [
        "123456782"
    ]
    assert root.xpath("//h:queryByParameter/h:patientID/h:value/@extension", namespaces=NS) == [
        BSN.value
    ]


def test_parse_json_has_the_lossless_dispense(examples: Path) -> None:
    from prefetch.domain.dispense import dispense_from_json
    from prefetch.hl7v3.parse import parse_answer

    path = examples / "official" / "QURX_EX990113NL_01.xml"
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    parsed = parse_answer(path.read_bytes())
    (source,) = data["sources"]
    assert [dispense_from_json(d["dispense"]) for d in source["dispenses"]] == list(
        parsed.dispenses
    )
    assert source["dropped_dispenses"] == 0
    magistral = source["dispenses"][0]
    assert magistral["product_code"] is None
    assert magistral["product_null_flavor"] == "OTH"
    assert magistral["product_null_flavor_meaning"] == "other"


def test_parse_json_shows_a_masked_product_code(examples: Path, tmp_path: Path) -> None:
    text = (examples / "official" / "QURX_EX990113NL_01.xml").read_text(encoding="utf-8-sig")
    coded = '<code code="14565277" codeSystem="2.16.840.1.113883.2.4.4.8"'
    assert coded in text
    path = tmp_path / "masked.xml"
    path.write_text(text.replace(coded, '<code nullFlavor="MSK"', 1), encoding="utf-8")
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    masked = [
        d
        for d in json.loads(result.stdout)["sources"][0]["dispenses"]
        if d["product_null_flavor"] == "MSK"
    ]
    assert len(masked) == 1
    assert masked[0]["product_null_flavor_meaning"] == "masked"
    assert masked[0]["product_code"] is None
    assert masked[0]["dispense"]["product"]["code"]["null_flavor"] == "MSK"


def test_parse_reports_unreadable_dispenses(examples: Path, tmp_path: Path) -> None:
    text = (examples / "official" / "QURX_EX990113NL_99.xml").read_text(encoding="utf-8-sig")
    start = text.index("<medicationDispenseEvent>")
    id_start = text.index("<id ", start)
    id_end = text.index("/>", id_start) + 2
    path = tmp_path / "masked-id.xml"
    path.write_text(text[:id_start] + '<id nullFlavor="MSK"/>' + text[id_end:], encoding="utf-8")
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sources"][0]["dropped_dispenses"] == 1
    assert data["outcome"]["kind"] == "failed"
    assert data["outcome"]["failed_sources"] == [data["sources"][0]["organization_ura"]]
    summary = runner.invoke(app, ["hl7", "parse", str(path)])
    assert "(+1 unreadable)" in summary.stdout
    assert "outcome: failed" in summary.stdout


@pytest.mark.parametrize("days", ["99999999", "0", "-1", "3651"])
def test_build_query_look_back_out_of_range_is_one_line(days: str) -> None:
    result = runner.invoke(app, [*BASE, "--look-back-days", days])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --look-back-days must be 1..3650")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("days", ["1", "3650"])
def test_build_query_look_back_bounds_are_accepted(days: str) -> None:
    assert runner.invoke(app, [*BASE, "--look-back-days", days]).exit_code == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("--clinician-name", "bad\x01char"), ("--hospital-name", "Zkh\x00"), ("--ura", "1\x0b")],
)
def test_build_query_text_xml_cannot_hold_is_one_line(option: str, value: str) -> None:
    args = list(BASE)
    args[args.index(option) + 1] = value
    for extra in ([], ["--soap"]):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.output


def test_look_back_counts_amsterdam_days(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import prefetch.cli.hl7 as cli_hl7

    # 23:30 UTC on 22 November is already 00:30 on 23 November in Amsterdam
    late = dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(cli_hl7, "_now", lambda: late)
    result = runner.invoke(app, [*BASE, "--look-back-days", "1"])
    assert result.exit_code == 0, result.output
    params = parse_query(parse_xml(result.stdout.encode()))
    assert params.look_back_from == dt.date(2026, 11, 22)  # the UTC day would give the 21st
