"""Acceptance against the real examples in ../shared/hl7v3/examples/.

1. For every answer file, `prefetch hl7 parse FILE --json` reports the dispense ids, product
   codes and response codes that an independent XPath over the file finds.
2. For the official examples, every dispense is compared field by field with the XML, and
   every value in the XML must be found in the parsed `Dispense` (nothing lost), unless the
   parser reported the element as "not kept".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hl7_samples import EXAMPLES
from lxml import etree
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.domain.coded import Timing
from prefetch.domain.dispense import Dispense
from prefetch.hl7v3.parse import parse_answer

NS = {"h": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
runner = CliRunner()


def answer_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.xml") if "interaction-catalogue" not in p.name)


def official_files() -> list[Path]:
    return sorted((EXAMPLES / "official").glob("*.xml"))


def files_with_dispenses() -> list[Path]:
    return [*official_files(), EXAMPLES / "lsp-batch" / "999900444_Decker-multi-QURX113.xml"]


def xpath_items(root: etree._Element) -> list[etree._Element]:
    """Answer items, found independently of the parser: elements with a ControlActProcess."""
    items = root.xpath("//*[h:ControlActProcess]", namespaces=NS)
    return list(items)


def test_examples_are_there() -> None:
    assert len(answer_files()) == 8
    assert len(official_files()) == 5


@pytest.mark.parametrize("path", answer_files(), ids=lambda p: p.name)
def test_cli_json_matches_independent_xpath(path: Path) -> None:
    result = runner.invoke(app, ["hl7", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)
    # The parser is not used below: plain lxml with XPath over the file.
    root = etree.fromstring(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    items = xpath_items(root)
    assert len(reported["sources"]) == len(items)
    for source, item in zip(reported["sources"], items, strict=True):
        codes = item.xpath(
            "h:ControlActProcess/h:queryAck/h:queryResponseCode/@code", namespaces=NS
        )
        assert source["query_response_code"] == (codes[0] if codes else None)
        events = item.xpath(".//h:medicationDispenseEvent", namespaces=NS)
        want_ids = [
            (
                e.xpath("string(h:id/@root)", namespaces=NS),
                e.xpath("string(h:id/@extension)", namespaces=NS) or None,
            )
            for e in events
        ]
        got_ids = [(d["id_root"], d["id_extension"]) for d in source["dispenses"]]
        assert got_ids == want_ids
        want_products = [
            e.xpath(
                "string(h:product/h:dispensedMedication/h:MedicationKind/h:code/@code)",
                namespaces=NS,
            )
            or None
            for e in events
        ]
        assert [d["product_code"] for d in source["dispenses"]] == want_products
        want_systems = [
            e.xpath(
                "string(h:product/h:dispensedMedication/h:MedicationKind/h:code/@codeSystem)",
                namespaces=NS,
            )
            or None
            for e in events
        ]
        assert [d["product_system"] for d in source["dispenses"]] == want_systems
        dates = [e.xpath("string(h:effectiveTime/@value)", namespaces=NS) or None for e in events]
        assert [d["dispensed_on"] for d in source["dispenses"]] == [
            f"{v[:4]}-{v[4:6]}-{v[6:8]}" if v else None for v in dates
        ]
        issues = item.xpath(
            "h:ControlActProcess/h:reasonOf/h:justifiedDetectedIssue/h:code/@code", namespaces=NS
        )
        assert [i["code"] for i in source["issues"]] == list(issues)


# ------------------------------------------------------------- field by field (official)
def _q(el: etree._Element | None) -> tuple[Decimal | None, str | None, str | None]:
    if el is None:
        return (None, None, None)
    value = el.get("value")
    return (Decimal(value) if value else None, el.get("unit"), el.get("nullFlavor"))


def _first(el: etree._Element, path: str) -> etree._Element | None:
    found = el.xpath(path, namespaces=NS)
    return found[0] if found else None


def _codes(el: etree._Element | None) -> list[tuple[str | None, str | None]]:
    """The code and every translation below it, depth first, as (code, system)."""
    if el is None:
        return []
    out = [(el.get("code"), el.get("codeSystem"))]
    for t in el.xpath("h:translation", namespaces=NS):
        out.extend(_codes(t))
    return out


def _periods(timing: Timing) -> list[Decimal | None]:
    """PIVL periods in document order, through nested SXPR components."""
    own = [timing.period.value] if timing.period else []
    return own + [p for c in timing.components for p in _periods(c)]


def _date(raw: str | None) -> dt.date | None:
    return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8])) if raw else None


def compare(ev: etree._Element, d: Dispense) -> None:
    assert (d.id.root, d.id.extension) == (
        ev.xpath("string(h:id/@root)", namespaces=NS),
        _first(ev, "h:id").get("extension"),
    )  # type: ignore[union-attr]
    assert d.status == ev.xpath("string(h:statusCode/@code)", namespaces=NS)
    assert d.dispensed_on == _date(ev.xpath("string(h:effectiveTime/@value)", namespaces=NS))
    assert d.period_start == _date(ev.xpath("string(h:effectiveTime/h:low/@value)", namespaces=NS))
    assert d.period_end == _date(ev.xpath("string(h:effectiveTime/h:high/@value)", namespaces=NS))
    q = _first(ev, "h:quantity")
    assert d.quantity is not None
    assert (d.quantity.value, d.quantity.unit, d.quantity.null_flavor) == _q(q)
    assert [(t.value, t.code.code, t.code.system) for t in d.quantity.translations] == [
        (Decimal(t.get("value")), t.get("code"), t.get("codeSystem"))
        for t in q.xpath("h:translation", namespaces=NS)
    ]  # type: ignore[union-attr]
    width = _first(ev, "h:expectedUseTime/h:width")
    got = d.expected_use
    assert ((got.value, got.unit, got.null_flavor) if got else (None, None, None)) == _q(width)
    kind = _first(ev, "h:product/h:dispensedMedication/h:MedicationKind")
    assert d.product is not None and kind is not None
    code_el = _first(kind, "h:code")
    assert [(c.code, c.system) for c in d.product.code.all_codes()] == _codes(code_el)
    assert d.product.code.display == code_el.get("displayName")  # type: ignore[union-attr]
    assert d.product.code.original_text == (
        kind.xpath("string(h:code/h:originalText)", namespaces=NS) or None
    )
    assert d.product.description == (kind.xpath("string(h:desc)", namespaces=NS) or None)
    ings = kind.xpath("h:activeIngredient|h:otherIngredient", namespaces=NS)
    assert len(d.product.ingredients) == len(ings)
    for ing, el in zip(d.product.ingredients, ings, strict=True):
        assert ing.active == (etree.QName(el).localname == "activeIngredient")
        assert [(c.code, c.system) for c in ing.code.all_codes()] == _codes(_first(el, "*/h:code"))
        num, den = _first(el, "h:quantity/h:numerator"), _first(el, "h:quantity/h:denominator")
        assert (
            (ing.numerator.value, ing.numerator.unit, ing.numerator.null_flavor)
            if ing.numerator
            else (None, None, None)
        ) == _q(num)
        assert (
            (ing.denominator.value, ing.denominator.unit, ing.denominator.null_flavor)
            if ing.denominator
            else (None, None, None)
        ) == _q(den)
    rx = _first(ev, "h:product/h:dispensedMedication/h:directTargetOf/h:prescription")
    assert rx is not None and d.prescription_id is not None
    rx_id = _first(rx, "h:id")
    assert (d.prescription_id.root, d.prescription_id.extension, d.prescription_id.null_flavor) == (
        rx_id.get("root"),
        rx_id.get("extension"),  # type: ignore[union-attr]
        rx_id.get("nullFlavor"),
    )  # type: ignore[union-attr]
    author_ids = rx.xpath("h:author/h:AssignedPerson/h:id", namespaces=NS)
    if author_ids:
        assert d.prescriber is not None
        assert [(i.root, i.extension, i.null_flavor) for i in d.prescriber.ids] == [
            (i.get("root"), i.get("extension"), i.get("nullFlavor")) for i in author_ids
        ]
    else:
        assert d.prescriber is None
    mars = ev.xpath(
        "h:product/h:dispensedMedication/h:therapeuticAgentOf/h:medicationAdministrationRequest",
        namespaces=NS,
    )
    assert len(d.dosages) == len(mars)
    for dosage, mar in zip(d.dosages, mars, strict=True):
        assert dosage.text == (mar.xpath("string(h:text)", namespaces=NS) or None)
        assert dosage.status == (mar.xpath("string(h:statusCode/@code)", namespaces=NS) or None)
        assert [(c.code, c.system) for c in dosage.instructions] == [
            (c.get("code"), c.get("codeSystem"))
            for c in mar.xpath(
                "h:support2/h:medicationAdministrationInstruction/h:code", namespaces=NS
            )
        ]
        assert [(c.code, c.original_text) for c in dosage.preconditions] == [
            (c.get("code"), c.xpath("string(h:originalText)", namespaces=NS) or None)
            for c in mar.xpath("h:precondition/h:observationEventCriterion/h:code", namespaces=NS)
        ]
        route = _first(mar, "h:routeCode")
        assert (dosage.route.code if dosage.route else None) == (
            route.get("code") if route is not None else None
        )
        eff = _first(mar, "h:effectiveTime")
        if eff is None:
            assert dosage.timing == ()
        else:
            (timing,) = dosage.timing
            xsi = eff.get(f"{{{NS['xsi']}}}type")
            assert (
                timing.kind
                == {"SXPR_TS": "SXPR", "IVL_TS": "IVL", "PIVL_TS": "PIVL", None: "TS"}[xsi]
            )
            comps = eff.xpath("h:comp", namespaces=NS)
            assert len(timing.components) == len(comps)
            periods = _periods(timing)
            assert periods == [Decimal(p) for p in eff.xpath(".//h:period/@value", namespaces=NS)]
        dose = _first(mar, "h:doseQuantity")
        if dose is None:
            assert dosage.dose is None
        else:
            assert dosage.dose is not None
            for part in ("low", "center", "high"):
                got_q = getattr(dosage.dose, part)
                assert (
                    (got_q.value, got_q.unit, got_q.null_flavor) if got_q else (None, None, None)
                ) == _q(_first(dose, f"h:{part}"))
        assert len(dosage.max_dose) == len(mar.xpath("h:maxDoseQuantity", namespaces=NS))
    resp = _first(ev, "h:responsibleParty/h:assignedCareProvider")
    assert d.responsible is not None and resp is not None
    assert d.responsible.role is not None
    assert d.responsible.role.code == resp.xpath("string(h:code/@code)", namespaces=NS)
    assert [i.extension for i in d.responsible.organization_ids] == resp.xpath(
        "h:representedOrganization/h:id/@extension", namespaces=NS
    )
    perf = _first(ev, "h:performer/h:assignedPerson")
    assert d.performer is not None and perf is not None
    assert [(i.root, i.extension, i.null_flavor) for i in d.performer.ids] == [
        (i.get("root"), i.get("extension"), i.get("nullFlavor"))
        for i in perf.xpath("h:id", namespaces=NS)
    ]


STRUCTURAL = {
    "classCode",
    "moodCode",
    "typeCode",
    "determinerCode",
    "contextConductionInd",
    "mediaType",
    "{http://www.w3.org/2001/XMLSchema-instance}type",
    "use",
    "qualifier",
    "codeSystemName",
}
NOT_MODELLED = ("statusCode", "time")  # prescription statusCode / author time (nullFlavor)


def _values(ev: etree._Element) -> set[str]:
    """Every data value in the event: attribute values and texts (whitespace-normalised)."""
    out: set[str] = set()
    for el in ev.iter():
        if not isinstance(el.tag, str):
            continue
        parent = el.getparent()
        if (
            etree.QName(el).localname in NOT_MODELLED
            and parent is not None
            and etree.QName(parent).localname in ("prescription", "author")
        ):
            continue
        for key, value in el.attrib.items():
            if key not in STRUCTURAL:
                out.add(" ".join(value.split()))
        if el.text and el.text.strip():
            out.add(" ".join(el.text.split()))
    return out


def _flatten(value: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        if "_date" in value:
            out.add(value["_date"].replace("-", ""))
        for v in value.values():
            out |= _flatten(v)
    elif isinstance(value, list):
        for v in value:
            out |= _flatten(v)
    elif isinstance(value, str):
        out.add(" ".join(value.split()))
    elif isinstance(value, bool):
        out.add("true" if value else "false")
    return out


def _same_number(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except ArithmeticError:
        return False


_ANY = "*"
_TIMING = "<timing>"  # an element holding a GTS: effectiveTime or an SXPR comp
_TIMING_NAMES = ("effectiveTime", "comp")


def _not_kept_paths(deviations: tuple[str, ...]) -> list[tuple[tuple[str, ...], str | None]]:
    """Each "not kept:" deviation as (path of element names, timing kind or None).

    `"not kept: prescription/author/time"` -> ("prescription", "author", "time"); an HL7 type
    name (`PIVL_TS/phase/high`, `IVL_TS/center`) matches any element name, since the type
    may be given by the schema rather than by xsi:type; `"not kept: code qualifier"` is a
    qualifier inside any coded element; `"not kept: content of a TS timing"` is any child of
    a timing element of that kind.
    """
    out: list[tuple[tuple[str, ...], str | None]] = []
    for deviation in deviations:
        if not deviation.startswith("not kept: "):
            continue
        rest = deviation.removeprefix("not kept: ")
        if rest.startswith("code "):
            out.append(((_ANY, rest.split()[1]), None))
        elif rest.startswith("content of a ") and rest.endswith(" timing"):
            out.append(((_TIMING, _ANY), rest.split()[3]))
        else:
            parts = rest.split("/")
            assert all(parts), deviation
            out.append((tuple(_ANY if p.replace("_", "").isupper() else p for p in parts), None))
    return out


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _timing_of_kind(el: etree._Element, kind: str | None) -> bool:
    if _local(el) not in _TIMING_NAMES:
        return False
    xsi_type = el.get(f"{{{NS['xsi']}}}type")
    if kind is None or xsi_type is None:
        return True
    return xsi_type.rsplit(":", 1)[-1].startswith(kind)


def _inside(
    carrier: etree._Element, ev: etree._Element, path: tuple[str, ...], kind: str | None
) -> bool:
    """True when `carrier` is (inside) an element E below `ev` whose name and ancestors'
    names end with `path`."""
    el: etree._Element | None = carrier
    while el is not None and el is not ev:
        chain: etree._Element | None = el
        matched = True
        for want in reversed(path):
            if chain is None or (chain is ev and want != _local(ev)):
                matched = False
                break
            ok = (
                want == _ANY
                or (want == _TIMING and _timing_of_kind(chain, kind))
                or want == _local(chain)
            )
            if not ok:
                matched = False
                break
            chain = chain.getparent()
        if matched:
            return True
        el = el.getparent()
    return False


def _carriers(ev: etree._Element, value: str) -> list[etree._Element]:
    """Elements of `ev` holding `value` in a data attribute or as text."""
    out = []
    for el in ev.iter(etree.Element):
        attrs = (v for k, v in el.attrib.items() if k not in STRUCTURAL)
        texts = [el.text] if el.text and el.text.strip() else []
        if any(" ".join(v.split()) == value for v in (*attrs, *texts)):
            out.append(el)
    return out


def unexplained_losses(ev: etree._Element, dispense: Dispense) -> set[str]:
    """Values of `ev` missing from `dispense.to_json()` that no "not kept" deviation covers:
    a value may only be missing when every element holding it lies inside an element named
    in the dispense's "not kept: ..." deviations."""
    kept = _flatten(dispense.to_json())
    paths = _not_kept_paths(dispense.deviations)
    lost = set()
    for value in _values(ev):
        if value in kept or any(_same_number(value, k) for k in kept):
            continue
        carriers = _carriers(ev, value)
        assert carriers, value
        if not all(any(_inside(c, ev, p, kind) for p, kind in paths) for c in carriers):
            lost.add(value)
    return lost


@pytest.mark.parametrize("path", files_with_dispenses(), ids=lambda p: p.name)
def test_official_examples_field_by_field_and_nothing_lost(path: Path) -> None:
    parsed = parse_answer(path.read_bytes())
    root = etree.fromstring(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    events = root.xpath("//h:medicationDispenseEvent", namespaces=NS)
    assert len(parsed.dispenses) == len(events) > 0
    for ev, dispense in zip(events, parsed.dispenses, strict=True):
        compare(ev, dispense)
        lost = unexplained_losses(ev, dispense)
        assert not lost, f"{dispense.id.extension}: lost {sorted(lost)} ({dispense.deviations})"


def _event_with_not_kept(path: Path) -> tuple[etree._Element, Dispense]:
    parsed = parse_answer(path.read_bytes())
    root = etree.fromstring(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    events = root.xpath("//h:medicationDispenseEvent", namespaces=NS)
    for ev, dispense in zip(events, parsed.dispenses, strict=True):
        if any(d.startswith("not kept:") for d in dispense.deviations):
            return ev, dispense
    raise AssertionError("no dispense with a not-kept deviation")


def test_nothing_lost_check_fails_on_a_loss_outside_not_kept_elements() -> None:
    """The check must not be satisfied by just any "not kept" deviation."""
    path = EXAMPLES / "official" / "QURX_EX990113NL_02_gebruiksperiode.xml"
    ev, dispense = _event_with_not_kept(path)
    assert unexplained_losses(ev, dispense) == set()
    assert dispense.responsible is not None
    # a parser that also dropped the responsible pharmacist, reporting only the other element
    dropped = dataclasses.replace(dispense, responsible=None)
    assert unexplained_losses(ev, dropped)
    # a parser that drops the not-kept element silently is caught as well
    silent = dataclasses.replace(
        dispense, deviations=tuple(d for d in dispense.deviations if not d.startswith("not kept"))
    )
    assert unexplained_losses(ev, silent)


def test_not_kept_paths_are_read_by_element_name() -> None:
    paths = _not_kept_paths(
        (
            "not kept: medicationDispenseEvent/destination",
            "not kept: PIVL_TS/phase/high",
            "not kept: code qualifier",
            "not kept: content of a TS timing",
            "element x out of order (before y) in z",
        )
    )
    assert paths == [
        (("medicationDispenseEvent", "destination"), None),
        ((_ANY, "phase", "high"), None),
        ((_ANY, "qualifier"), None),
        ((_TIMING, _ANY), "TS"),
    ]
