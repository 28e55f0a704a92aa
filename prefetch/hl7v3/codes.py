"""LSP codes -> our outcome classes: ONE table (AORTA.md section 3), and `classify`.

Precedence when several sources answer differently and no dispense came:
our bug or an unknown code (FAILED) > transient (TRANSIENT, retry may bring data) >
definitive refusal (REFUSED) > no registrations > no records. Any dispense makes the
answer RECORDS; sources that failed are listed in `Outcome.failed_sources`.
An unknown code is never a success.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from prefetch.domain.outcome import Issue, Outcome, OutcomeKind, SourceAnswer, SourceStatus
from prefetch.hl7v3.parse import ParsedAnswer


class CodeClass(enum.Enum):
    """What a code means for the run."""

    NO_REGISTRATIONS = "no_registrations"  # nobody registered the BSN (or no consent)
    DEFINITIVE = "definitive"  # refused; do not retry
    TRANSIENT = "transient"  # retry later with backoff
    OUR_BUG = "our_bug"  # our message is wrong: stop the run, alert


@dataclass(frozen=True, slots=True)
class CodeRule:
    cls: CodeClass
    http: int | None  # VZVZ's HTTP / FHIR mapping
    meaning: str
    alert: bool = False  # operators must look (configuration / mandate / our bug)


LSP_CODES: Mapping[str, CodeRule] = MappingProxyType(
    {
        "AUTERR_SWV_FALSE": CodeRule(
            CodeClass.DEFINITIVE, 403, "data exists outside your region/cooperation (historical)"
        ),
        "AUTERR_MEDISCH": CodeRule(
            CodeClass.DEFINITIVE, 403, "not authorised for this (medical) data", alert=True
        ),
        "AUTERR_CONFRCV": CodeRule(CodeClass.DEFINITIVE, 404, "refused by the LSP (meaning [U])"),
        "KEY204": CodeRule(CodeClass.NO_REGISTRATIONS, 404, "patient not in the referral index"),
        "QABRTITI": CodeRule(
            CodeClass.TRANSIENT, 504, "query aborted: time-out collecting answers"
        ),
        "RTEDEST": CodeRule(CodeClass.TRANSIENT, 408, "destination time-out"),
        "RTUDEST": CodeRule(CodeClass.TRANSIENT, 404, "destination unreachable"),
        "NOSTORE": CodeRule(CodeClass.TRANSIENT, 507, "no storage at the LSP"),
        "SYN105": CodeRule(
            CodeClass.OUR_BUG, 422, "required element missing in our message", alert=True
        ),
        "VALIDATIEFOUT": CodeRule(
            CodeClass.OUR_BUG, None, "our message failed validation at the LSP", alert=True
        ),
    }
)

_URA_IN_TEXT = re.compile(r"URA:?\s*(\d{8})")
_RANK = {
    OutcomeKind.FAILED: 4,
    OutcomeKind.TRANSIENT: 3,
    OutcomeKind.REFUSED: 2,
    OutcomeKind.NO_REGISTRATIONS: 1,
}
_KIND_OF = {
    CodeClass.OUR_BUG: OutcomeKind.FAILED,
    CodeClass.TRANSIENT: OutcomeKind.TRANSIENT,
    CodeClass.DEFINITIVE: OutcomeKind.REFUSED,
    CodeClass.NO_REGISTRATIONS: OutcomeKind.NO_REGISTRATIONS,
}


def rule_for(code: str) -> CodeRule | None:
    """The table row for `code`, or None for a code we do not know."""
    return LSP_CODES.get(code)


def kind_of_code(code: str) -> OutcomeKind:
    """Outcome class of one code; unknown codes are FAILED."""
    rule = LSP_CODES.get(code)
    return _KIND_OF[rule.cls] if rule is not None else OutcomeKind.FAILED


def _source_label(source: SourceAnswer) -> str:
    if source.lsp_authored:
        for issue in source.issues:
            m = _URA_IN_TEXT.search(issue.text or "")
            if m:
                return m.group(1)
        codes = ",".join(i.code for i in source.issues) or "error"
        return f"lsp:{codes}"
    return source.organization_ura or source.application_id or source.message_id or "unknown"


def _failed(source: SourceAnswer) -> bool:
    return (
        bool(source.issues)
        or source.status in (SourceStatus.AE, SourceStatus.QE, None)
        or source.dropped_dispenses > 0
    )


def _worst(
    issues: list[Issue],
    statuses: list[SourceStatus | None],
) -> tuple[OutcomeKind, str | None] | None:
    best: tuple[OutcomeKind, str | None] | None = None
    for issue in issues:
        kind = kind_of_code(issue.code)
        if best is None or _RANK[kind] > _RANK[best[0]]:
            best = (kind, issue.code or None)
    if best is None:
        for status in statuses:
            if status in (SourceStatus.AE, SourceStatus.QE):
                # an error without a code: we cannot tell what it means -> never success
                return OutcomeKind.FAILED, status.value if status else None
    return best


def classify(parsed: ParsedAnswer) -> Outcome:
    """Map a parsed answer to the run's outcome (DESIGN.md step 5)."""
    if parsed.fault is not None:
        code = parsed.fault.code or "soap:Fault"
        server = code.split(":")[-1].lower().startswith("server")
        return Outcome(
            kind=OutcomeKind.TRANSIENT if server else OutcomeKind.FAILED,
            code=code,
            detail=f"SOAP fault: {parsed.fault.reason}"[:200],
        )
    sources = parsed.sources
    failed = tuple(_source_label(s) for s in sources if _failed(s))
    if any(s.dispenses for s in sources):
        return Outcome(
            kind=OutcomeKind.RECORDS,
            sources=sources,
            failed_sources=failed,
            detail=f"{len(failed)} source(s) failed" if failed else None,
        )
    issues = list(parsed.issues) + [i for s in sources for i in s.issues]
    worst = _worst(issues, [s.status for s in sources])
    dropped = sum(s.dropped_dispenses for s in sources)
    if dropped and (worst is None or worst[0] is not OutcomeKind.FAILED):
        # the pharmacy sent medication we could not read: never "no medication" (and
        # FAILED outranks a transient or definitive code from another source)
        return Outcome(
            kind=OutcomeKind.FAILED,
            sources=sources,
            failed_sources=failed,
            detail=f"{dropped} dispense(s) could not be read (no usable id)",
        )
    if worst is not None:
        kind, deciding = worst
        rule = rule_for(deciding or "")
        detail = rule.meaning if rule else f"unknown LSP code {deciding}"
        return Outcome(
            kind=kind, sources=sources, code=deciding, detail=detail, failed_sources=failed
        )
    if parsed.kind == "accept_ack" or parsed.acknowledgement in ("AE", "AR", "CE", "CR"):
        return Outcome(
            kind=OutcomeKind.FAILED,
            sources=sources,
            failed_sources=failed,
            code=parsed.acknowledgement,
            detail="transmission not accepted and no code given",
        )
    data_sources = [s for s in sources if not s.lsp_authored]
    if not data_sources:
        return Outcome(
            kind=OutcomeKind.NO_REGISTRATIONS,
            sources=sources,
            detail="no pharmacy answered (empty batch or LSP not-found)",
        )
    if any(s.status is None for s in data_sources):
        return Outcome(
            kind=OutcomeKind.FAILED,
            sources=sources,
            failed_sources=failed,
            detail="a source answered without a query response code",
        )
    return Outcome(kind=OutcomeKind.NO_RECORDS, sources=sources)
