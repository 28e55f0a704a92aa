"""`prefetch fhir convert` on every real LSP answer in ../shared/hl7v3/examples/.

Each bundle parses with the R4B models and passes our MP9 checks; each dispense event in
the XML is found back field by field, read with plain XPath (not with our parser): the
dispense's own id, hand-over date, quantity with its G-Standaard unit, days supply,
product codings, pharmacy (URA), patient (BSN), the pharmaceutical-treatment identifier
as Nictiz derives it (PRK, else HPK, else the dispense id), the agreement's id and dose
texts, and the provenance's message and query ids.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir_helpers import assert_valid_bundle
from lxml import etree
from reference import shared_path
from typer.testing import CliRunner

from prefetch.cli import app

NS = {"h": "urn:hl7-org:v3"}
EXAMPLES = shared_path("hl7v3", "examples")
runner = CliRunner()

PRK, HPK = "2.16.840.1.113883.2.4.4.10", "2.16.840.1.113883.2.4.4.7"
PRODUCT_SYSTEMS = {"2.16.840.1.113883.2.4.4.8", HPK, PRK, "2.16.840.1.113883.2.4.4.1"}


def answer_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.xml") if "interaction-catalogue" not in p.name)


def convert(path: Path, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, ["fhir", "convert", str(path), *extra])
    assert result.exit_code == 0, result.output
    bundle: dict[str, Any] = json.loads(result.stdout)
    return bundle


def xp(el: etree._Element, path: str) -> list[Any]:
    return list(el.xpath(path, namespaces=NS))


def s(el: etree._Element, path: str) -> str:
    return str(el.xpath(f"string({path})", namespaces=NS))


def by_kind(bundle: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{"mve"|"ta"|"prov"|"med": {id: resource}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {"mve": {}, "ta": {}, "prov": {}, "med": {}}
    for entry in bundle["entry"]:
        r = entry["resource"]
        out[r["id"].split("-")[0]][r["id"]] = r
    return out


def test_every_answer_file_is_there() -> None:
    assert len(answer_files()) == 8


@pytest.mark.parametrize("path", answer_files(), ids=lambda p: p.name)
def test_convert_matches_the_xml_field_by_field(path: Path) -> None:
    bundle = convert(path, "--responsible-uzi", "123456782", "--responsible-name", "Dr. Arts")
    assert bundle["type"] == "collection"
    assert_valid_bundle(bundle)
    got = by_kind(bundle)
    root = etree.fromstring(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    items = xp(root, "//*[h:ControlActProcess]")
    events_total = 0
    for item in items:
        cap = xp(item, "h:ControlActProcess")[0]
        bsn = s(
            cap,
            "h:subject/h:MedicationDispenseList/h:subject/h:Patient/h:id[@root='2.16.840.1.113883.2.4.6.3']/@extension",
        )
        ura = s(
            cap,
            "h:authorOrPerformer/h:participant/*/h:Organization/h:id[@root='2.16.528.1.1007.3.3']/@extension",
        )
        item_id = (s(item, "h:id/@root"), s(item, "h:id/@extension"))
        query_id = (s(cap, "h:queryAck/h:queryId/@root"), s(cap, "h:queryAck/h:queryId/@extension"))
        for event in xp(cap, ".//h:medicationDispenseEvent"):
            events_total += 1
            _check_event(event, got, bsn=bsn, ura=ura, item_id=item_id, query_id=query_id)
    assert len(got["mve"]) == len(got["ta"]) == len(got["prov"]) == events_total


def _find_dispense(
    got: dict[str, dict[str, dict[str, Any]]], root: str, ext: str
) -> dict[str, Any]:
    want = {"system": f"urn:oid:{root}", "value": ext}
    found = [r for r in got["mve"].values() if r["identifier"] == [want]]
    assert len(found) == 1, (root, ext)
    return found[0]


def _check_event(
    event: etree._Element,
    got: dict[str, dict[str, dict[str, Any]]],
    *,
    bsn: str,
    ura: str,
    item_id: tuple[str, str],
    query_id: tuple[str, str],
) -> None:
    root, ext = s(event, "h:id/@root"), s(event, "h:id/@extension")
    mve = _find_dispense(got, root, ext)
    key = mve["id"].removeprefix("mve-")
    ta, prov = got["ta"][f"ta-{key}"], got["prov"][f"prov-{key}"]

    # hand-over: effectiveTime/@value
    value = s(event, "h:effectiveTime/@value")
    assert mve["whenHandedOver"][:10] == f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    assert "whenHandedOver" not in ta
    # quantity with the G-Standaard unit as translation
    q = xp(event, "h:quantity")[0]
    assert Decimal(str(mve["quantity"]["value"])) == Decimal(q.get("value"))
    assert mve["quantity"]["code"] == (q.get("unit") or "1")
    gstd = xp(q, "h:translation[@codeSystem='2.16.840.1.113883.2.4.4.1.900.2']")
    translations = [e["valueQuantity"] for e in mve["quantity"].get("extension", [])]
    assert [t["code"] for t in translations] == [t.get("code") for t in gstd]
    # days supply in days
    width = xp(event, "h:expectedUseTime/h:width")
    if width:
        assert width[0].get("unit") == "d"
        assert Decimal(str(mve["daysSupply"]["value"])) == Decimal(width[0].get("value"))
        assert mve["daysSupply"]["code"] == "d"
    else:
        assert "daysSupply" not in mve
    # patient by BSN, pharmacy by URA, one performer
    for r in (mve, ta):
        assert r["subject"]["identifier"] == {
            "system": "http://fhir.nl/fhir/NamingSystem/bsn",
            "value": bsn,
        }
        assert [p["actor"]["identifier"]["value"] for p in r["performer"]] == [ura]
        assert r["meta"]["source"] == f"urn:oid:2.16.528.1.1007.3.3.{ura}"
    # product codings (code + translations, G-Standaard systems only)
    code = xp(event, "h:product/h:dispensedMedication/h:MedicationKind/h:code")[0]
    want_codes = {
        (f"urn:oid:{c.get('codeSystem')}", c.get("code"))
        for c in [code, *xp(code, ".//h:translation")]
        if c.get("code") and c.get("codeSystem") in PRODUCT_SYSTEMS
    }
    med = got["med"][mve["medicationReference"]["reference"].removeprefix("Medication/")]
    assert {(c["system"], c["code"]) for c in med.get("code", {}).get("coding", [])} == want_codes
    assert ta["medicationReference"] == mve["medicationReference"]
    if not want_codes:
        assert med["code"]["text"] == s(code, "h:originalText")
        ingredient_codes = xp(
            event, ".//h:activeIngredientMaterialKind/h:code | .//h:ingredientMaterialKind/h:code"
        )
        assert len(med.get("ingredient", [])) == len(ingredient_codes)
    # pharmaceutical treatment: PRK, else HPK, else the dispense id (Nictiz MP-572)
    all_codes = [code, *xp(code, "h:translation")]
    prk = [c.get("code") for c in all_codes if c.get("codeSystem") == PRK and c.get("code")]
    hpk = [c.get("code") for c in all_codes if c.get("codeSystem") == HPK and c.get("code")]
    if prk:
        want_treatment = {"system": "urn:oid:2.16.840.1.113883.2.4.3.11.61.2", "value": prk[0]}
    elif hpk:
        want_treatment = {"system": "urn:oid:2.16.840.1.113883.2.4.3.11.61.3", "value": hpk[0]}
    else:
        want_treatment = {"system": f"urn:oid:1.3.6.1.4.1.58606.1.2.{root}", "value": ext}
    for r in (mve, ta):
        ext_ids = [
            e["valueIdentifier"]
            for e in r["extension"]
            if e["url"].endswith("PharmaceuticalTreatment.Identifier")
        ]
        assert ext_ids == [want_treatment]
    # the agreement: own id, status unknown, the dose texts in order
    assert ta["identifier"] == [{"system": f"urn:oid:1.3.6.1.4.1.58606.1.1.{root}", "value": ext}]
    assert ta["status"] == "unknown"
    texts = [
        " ".join(t.split()) for t in xp(event, ".//h:medicationAdministrationRequest/h:text/text()")
    ]
    assert [" ".join(d.get("text", "").split()) for d in ta.get("dosageInstruction", [])] == texts
    # provenance: the LSP item message, the query id, the responsible clinician
    entities = {
        (e["what"]["identifier"]["system"], e["what"]["identifier"]["value"])
        for e in prov["entity"]
    }
    assert (f"urn:oid:{item_id[0]}", item_id[1]) in entities
    assert (f"urn:oid:{query_id[0]}", query_id[1]) in entities
    who = [a["who"].get("identifier", {}).get("value") for a in prov["agent"]]
    assert who == [ura, "123456782"]
    assert {t["reference"] for t in prov["target"]} == {
        f"MedicationDispense/{mve['id']}",
        f"MedicationDispense/{ta['id']}",
    }


def test_soap_wrapped_answer_gives_the_same_resources(tmp_path: Path) -> None:
    from prefetch.hl7v3.soap import wrap_soap_body

    path = EXAMPLES / "official" / "QURX_EX990113NL_01.xml"
    wrapped = tmp_path / "soap.xml"
    wrapped.write_bytes(wrap_soap_body(path.read_bytes().removeprefix(b"\xef\xbb\xbf")))
    bare, soap = convert(path), convert(wrapped)
    assert [e["resource"] for e in bare["entry"]] == [e["resource"] for e in soap["entry"]]


def test_frequency_and_dose_range_from_the_official_example() -> None:
    bundle = convert(EXAMPLES / "official" / "QURX_EX990113NL_01.xml")
    got = by_kind(bundle)
    mve = _find_dispense(got, "2.16.528.1.1007.3.3.1234567.3", "0123456703")
    ta = got["ta"]["ta-" + mve["id"].removeprefix("mve-")]
    (dosage,) = ta["dosageInstruction"]
    assert dosage["timing"]["repeat"]["frequency"] == 2  # period 0.5 d
    assert dosage["timing"]["repeat"]["period"] == 1
    assert dosage["timing"]["repeat"]["boundsDuration"]["value"] == 14
    dose = dosage["doseAndRate"][0]["doseRange"]
    assert (dose["low"]["value"], dose["high"]["value"]) == (1, 2)


def test_not_an_answer_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<nope/>")
    result = runner.invoke(app, ["fhir", "convert", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}:")
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["fhir", "convert", str(tmp_path / "missing.xml")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr
