"""Classification: every row of the code table and every outcome rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hl7_samples import BSN, NOW, PHARMACY, PHARMACY_2, full_dispense
from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.domain.outcome import OutcomeKind, SourceAnswer, SourceStatus
from prefetch.hl7v3.answer import (
    build_accept_ack,
    build_batch,
    build_dispense_item,
    build_lsp_issue_item,
    build_soap_fault,
)
from prefetch.hl7v3.codes import LSP_CODES, CodeClass, classify, kind_of_code
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.parse import ParsedAnswer, parse_answer

LSP = "2.16.840.1.113883.2.4.6.6"

EXPECTED = {
    "AUTERR_SWV_FALSE": OutcomeKind.REFUSED,
    "AUTERR_MEDISCH": OutcomeKind.REFUSED,
    "AUTERR_CONFRCV": OutcomeKind.REFUSED,
    "KEY204": OutcomeKind.NO_REGISTRATIONS,
    "QABRTITI": OutcomeKind.TRANSIENT,
    "RTEDEST": OutcomeKind.TRANSIENT,
    "RTUDEST": OutcomeKind.TRANSIENT,
    "NOSTORE": OutcomeKind.TRANSIENT,
    "SYN105": OutcomeKind.FAILED,
    "VALIDATIEFOUT": OutcomeKind.FAILED,
}


def answer(ref: QueryRef, *items) -> ParsedAnswer:  # type: ignore[no-untyped-def]
    data = build_batch(
        query=ref,
        items=list(items),
        message_id=Identifier(LSP, "1"),
        receiver_application_id="4003",
        now=NOW,
    )
    return parse_answer(data, expect=ref)


def item(ref: QueryRef, source=PHARMACY, dispenses=()):  # type: ignore[no-untyped-def]
    return build_dispense_item(
        query=ref,
        source=source,
        bsn=BSN,
        dispenses=dispenses,
        message_id=Identifier(LSP, source.application_id),
        receiver_application_id="4003",
        now=NOW,
    )


def lsp_item(ref: QueryRef, code: str, response: str = "AE", text: str | None = None):  # type: ignore[no-untyped-def]
    return build_lsp_issue_item(
        query=ref,
        code=code,
        code_system=oids.AORTA_ACK_DETAIL,
        text=text,
        message_id=Identifier(LSP, "99"),
        receiver_application_id="4003",
        now=NOW,
        response_code=response,
    )


def test_table_has_exactly_the_documented_codes() -> None:
    assert set(LSP_CODES) == set(EXPECTED)
    assert LSP_CODES["SYN105"].cls is CodeClass.OUR_BUG and LSP_CODES["SYN105"].alert


@pytest.mark.parametrize(("code", "kind"), sorted(EXPECTED.items()))
def test_every_row_alone(ref: QueryRef, code: str, kind: OutcomeKind) -> None:
    assert kind_of_code(code) is kind
    outcome = classify(answer(ref, lsp_item(ref, code)))
    assert outcome.kind is kind
    assert outcome.code == code


def test_unknown_code_is_failure_never_success(ref: QueryRef) -> None:
    outcome = classify(answer(ref, lsp_item(ref, "BRANDNEW42")))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.code == "BRANDNEW42"
    assert kind_of_code("BRANDNEW42") is OutcomeKind.FAILED


def test_records(ref: QueryRef) -> None:
    outcome = classify(answer(ref, item(ref, dispenses=(full_dispense(),)), item(ref, PHARMACY_2)))
    assert outcome.kind is OutcomeKind.RECORDS
    assert outcome.failed_sources == ()
    assert len(outcome.dispenses) == 1


def test_partial_answer_lists_the_failed_source(ref: QueryRef) -> None:
    outcome = classify(
        answer(
            ref,
            item(ref, dispenses=(full_dispense(),)),
            lsp_item(ref, "QABRTITI", text="time-out bij (URA: 00056219)"),
        )
    )
    assert outcome.kind is OutcomeKind.RECORDS
    assert outcome.failed_sources == ("00056219",)


def test_partial_answer_without_ura_in_text(ref: QueryRef) -> None:
    outcome = classify(
        answer(ref, item(ref, dispenses=(full_dispense(),)), lsp_item(ref, "RTEDEST"))
    )
    assert outcome.kind is OutcomeKind.RECORDS
    assert outcome.failed_sources == ("lsp:RTEDEST",)


def test_nf_only_is_no_records(ref: QueryRef) -> None:
    outcome = classify(answer(ref, item(ref), item(ref, PHARMACY_2)))
    assert outcome.kind is OutcomeKind.NO_RECORDS


@pytest.mark.parametrize("variant", ["empty", "lsp_nf", "key204"])
def test_no_registrations_three_ways(ref: QueryRef, variant: str) -> None:
    items = {
        "empty": (),
        "lsp_nf": (lsp_item(ref, "NOREG", response="NF"),),
        "key204": (lsp_item(ref, "KEY204"),),
    }[variant]
    parsed = answer(ref, *items)
    if variant == "lsp_nf":  # an LSP-authored NF without a detected issue code
        src = parsed.sources[0]
        parsed = ParsedAnswer(
            kind="batch",
            sources=(
                SourceAnswer(
                    organization_ura=None,
                    organization_name=None,
                    application_id="1",
                    system_uzi=None,
                    message_id=src.message_id,
                    status=SourceStatus.NF,
                    lsp_authored=True,
                ),
            ),
        )
    assert classify(parsed).kind is OutcomeKind.NO_REGISTRATIONS


def test_transient_beats_definitive_when_nothing_came(ref: QueryRef) -> None:
    outcome = classify(
        answer(ref, lsp_item(ref, "AUTERR_SWV_FALSE"), lsp_item(ref, "QABRTITI"), item(ref))
    )
    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.code == "QABRTITI"


def test_our_bug_beats_everything_without_data(ref: QueryRef) -> None:
    outcome = classify(answer(ref, lsp_item(ref, "QABRTITI"), lsp_item(ref, "SYN105")))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.code == "SYN105"


def test_error_status_without_code_is_failure(ref: QueryRef) -> None:
    parsed = ParsedAnswer(
        kind="batch",
        sources=(
            SourceAnswer(
                organization_ura="00063703",
                organization_name=None,
                application_id="10011427",
                system_uzi=None,
                message_id="x",
                status=SourceStatus.QE,
            ),
        ),
    )
    outcome = classify(parsed)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failed_sources == ("00063703",)


def test_transmission_reject(ref: QueryRef) -> None:
    data = build_accept_ack(
        query=ref,
        code="VALIDATIEFOUT",
        code_system=oids.AORTA_ACK_DETAIL,
        text=None,
        message_id=Identifier(LSP, "3"),
        receiver_application_id="4003",
        now=NOW,
    )
    outcome = classify(parse_answer(data, expect=ref))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.code == "VALIDATIEFOUT"


@pytest.mark.parametrize(
    ("code", "kind"), [("Server", OutcomeKind.TRANSIENT), ("Client", OutcomeKind.FAILED)]
)
def test_soap_faults(code: str, kind: OutcomeKind) -> None:
    outcome = classify(parse_answer(build_soap_fault(code, "x")))
    assert outcome.kind is kind


_H = "{urn:hl7-org:v3}"


def _mask_dispense_ids(
    path: Path, *, item_index: int | None = None, first_only: bool = False
) -> bytes:
    """A copy of a real example with dispense ids replaced by `<id nullFlavor="MSK"/>`
    (all of them, those of one batch item, or only the first)."""
    root = etree.fromstring(path.read_bytes())
    scope = root
    if item_index is not None:
        scope = list(root.iterchildren(f"{_H}QURX_IN990113NL"))[item_index]
    events = list(scope.iter(f"{_H}medicationDispenseEvent"))
    assert events
    for ev in events[:1] if first_only else events:
        ident = ev.find(f"{_H}id")
        assert ident is not None
        for key in list(ident.attrib):
            del ident.attrib[key]
        ident.set("nullFlavor", "MSK")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def test_unreadable_dispenses_only_are_failed_not_no_records(examples: Path) -> None:
    parsed = parse_answer(_mask_dispense_ids(examples / "official" / "QURX_EX990113NL_99.xml"))
    (source,) = parsed.sources
    assert source.dispenses == () and source.dropped_dispenses == 1
    outcome = classify(parsed)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failed_sources == (source.organization_ura,)
    assert outcome.detail is not None and "1 dispense(s)" in outcome.detail


def test_one_unreadable_dispense_fails_its_source(examples: Path) -> None:
    parsed = parse_answer(
        _mask_dispense_ids(examples / "official" / "QURX_EX990113NL_01.xml", first_only=True)
    )
    (source,) = parsed.sources
    assert len(source.dispenses) > 1 and source.dropped_dispenses == 1
    outcome = classify(parsed)
    assert outcome.kind is OutcomeKind.RECORDS
    assert outcome.failed_sources == (source.organization_ura,)


def test_unreadable_dispenses_of_one_batch_source(examples: Path) -> None:
    path = examples / "lsp-batch" / "999900444_Decker-multi-QURX113.xml"
    intact = parse_answer(path.read_bytes())
    index = next(i for i, s in enumerate(intact.sources) if s.dispenses)
    parsed = parse_answer(_mask_dispense_ids(path, item_index=index))
    hit = parsed.sources[index]
    assert hit.dispenses == ()
    assert hit.dropped_dispenses == len(intact.sources[index].dispenses)
    assert all(s.dropped_dispenses == 0 for i, s in enumerate(parsed.sources) if i != index)
    outcome = classify(parsed)
    label = hit.organization_ura or hit.application_id
    if any(s.dispenses for s in parsed.sources):
        assert outcome.kind is OutcomeKind.RECORDS
    else:
        assert outcome.kind is OutcomeKind.FAILED
    assert label in outcome.failed_sources
    assert classify(intact).failed_sources == tuple(
        x for x in classify(intact).failed_sources if x != label
    )


def test_unreadable_dispense_outranks_a_transient_code(ref: QueryRef) -> None:
    base = answer(ref, item(ref), lsp_item(ref, "QABRTITI"))
    src = base.sources[0]
    parsed = ParsedAnswer(
        kind=base.kind,
        sources=(
            SourceAnswer(
                organization_ura=src.organization_ura,
                organization_name=src.organization_name,
                application_id=src.application_id,
                system_uzi=src.system_uzi,
                message_id=src.message_id,
                status=SourceStatus.OK,
                dropped_dispenses=1,
            ),
            base.sources[1],
        ),
        acknowledgement="AA",
    )
    outcome = classify(parsed)
    assert outcome.kind is OutcomeKind.FAILED
    assert src.organization_ura in outcome.failed_sources
