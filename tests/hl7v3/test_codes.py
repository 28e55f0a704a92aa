"""Classification: every row of the code table and every outcome rule."""

from __future__ import annotations

import pytest
from hl7_samples import BSN, NOW, PHARMACY, PHARMACY_2, full_dispense

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
