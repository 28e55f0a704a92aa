"""`EnvelopeVerifier`: the simulator checks a secured query the way the LSP does.

Order of checks (the first failure decides the reason):

1. structure (`envelope.split_envelope`): malformed, token_missing, wrapped_signature,
   mandate_unexpected;
2. the HL7 body is read into `QueryParams`: exactly one `patientID` with one BSN of nine
   digits (no padding), and a query `parse_query` accepts; otherwise `RequestRejected`
   (`bad_request`), a request problem answered as a client fault, not a token failure;
3. transactietoken: signer certificate (untrusted_signer, revoked_signer,
   signer_cert_invalid), signature (bad_signature, digest_mismatch) — claims are read only from
   what signxml returns as signed — then audience, time window with skew (not_yet_valid,
   expired_token, validity_too_long), issuer URA, message binding, BSN, author / overseer,
   holder-of-key against the TLS client;
4. mandaattoken when the author is not the overseer (mandate_missing) or whenever present:
   signer and signature as above (non-repudiation key), issued by the overseer
   (mandate_wrong_issuer: UZI number and role of the HL7 overseer), signed with a card Z pass
   (mandate_signer_not_clinician: only a medical specialist or pharmacist mandates), its role
   attribute the role in the signer's certificate (mandate_role_mismatch), for this
   organisation and this author, audience, validity (mandate_expired);
   without a mandate the author is the overseer and must sign with their own card Z pass
   (overseer_not_clinician) whose role is the overseer's role code (overseer_role_mismatch);
5. replay: a transactietoken ID is accepted once within its window (replayed).

Verification of a mandaattoken (the same bytes on every query under a mandate) is cached by
the SHA-256 of its serialisation; certificate path checks are cached in the `TrustStore`;
time and revocation checks are repeated on every call.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from prefetch.domain import oids
from prefetch.errors import PrefetchError
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.read import children
from prefetch.security.envelope import split_envelope, split_tree
from prefetch.security.errors import (
    RejectReason,
    RequestReason,
    RequestRejected,
    TokenRejected,
)
from prefetch.security.saml import (
    DEFAULT_PROFILE,
    TokenInfo,
    TokenProfile,
    ii_urn,
)
from prefetch.security.signcheck import TokenChecker
from prefetch.security.trust import Purpose, TrustStore
from prefetch.security.uzi import CardType, UziIdentity

_MAX_ENVELOPE = 2 * 1024 * 1024  # split_envelope's limit
_BSN_TEXT = re.compile(r"[0-9]{9}")
_CLINICIAN = CardType.ZORGVERLENER.value


class _PerThread(threading.local):
    """Each thread's compiled XPath (lxml XPath objects are not shared between threads)."""

    def __init__(self) -> None:
        # the body and its descendants named patientID, in any namespace
        self.patient_ids = etree.XPath("descendant-or-self::*[local-name() = 'patientID']")


_THREAD = _PerThread()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _default_body_reader(body: etree._Element) -> QueryParams:
    from prefetch.hl7v3.query import parse_query

    return parse_query(body)


def _bad_request(detail: str) -> RequestRejected:
    return RequestRejected(RequestReason.BAD_REQUEST, detail)


def _patient_bsn(body: etree._Element) -> str:
    """The one BSN the body asks for; RequestRejected unless exactly one, well-formed.

    Stricter than `parse_query` (which takes the first BSN it finds): the LSP refuses a
    query with a second `patientID`, a second value, or a BSN that is padded or not nine
    digits, so the verifier does too.
    """
    named = _THREAD.patient_ids(body)
    assert isinstance(named, list)
    placed = children(body, "ControlActProcess", "queryByParameter", "patientID")
    if len(named) != 1 or len(placed) != 1:
        raise _bad_request("query needs exactly one patientID")
    values = [c for c in placed[0] if isinstance(c.tag, str)]
    if len(values) != 1 or etree.QName(values[0]).localname != "value":
        raise _bad_request("patientID needs exactly one value")
    value = values[0]
    extension = value.get("extension", "")
    if value.get("root") != oids.BSN or not _BSN_TEXT.fullmatch(extension):
        raise _bad_request("patientID is not one BSN of nine digits")
    return extension


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A query whose tokens passed every check."""

    body: etree._Element
    params: QueryParams
    transaction: TokenInfo
    mandate: TokenInfo | None


def _fail(reason: RejectReason, **context: object) -> TokenRejected:
    return TokenRejected(reason, **context)


class EnvelopeVerifier:
    """Verifies secured envelopes against a `TrustStore`. Thread-safe; share one instance."""

    def __init__(
        self,
        trust: TrustStore,
        *,
        audience: str = DEFAULT_PROFILE.audience,
        skew: dt.timedelta = dt.timedelta(seconds=30),
        clock: Callable[[], dt.datetime] = _utcnow,
        profile: TokenProfile = DEFAULT_PROFILE,
        body_reader: Callable[[etree._Element], QueryParams] = _default_body_reader,
        detect_replay: bool = True,
    ) -> None:
        self._trust = trust
        self._audience = audience
        self._skew = skew
        self._clock = clock
        self._profile = profile
        self._read_body = body_reader
        self._detect_replay = detect_replay
        self._lock = threading.Lock()
        # IDs of accepted transactietokens, and (end of window, ID) in acceptance order
        self._seen: set[str] = set()
        self._expiry: deque[tuple[dt.datetime, str]] = deque()
        self._tokens = TokenChecker(trust, profile=profile)

    def verify(
        self,
        envelope: bytes,
        *,
        client_identity: UziIdentity | None,
        now: dt.datetime | None = None,
        parsed: etree._Element | None = None,
    ) -> VerifiedRequest:
        """Verify `envelope`; raise TokenRejected(reason) on the first failed check.

        `parsed`: the caller's `parse_xml(envelope)` tree (with the default limits), read
        instead of parsing `envelope` again; the caller must not change it. The envelope
        size limit of `split_envelope` applies either way.
        """
        now = now or self._clock()
        if parsed is None:
            parts = split_envelope(envelope, max_bytes=_MAX_ENVELOPE)
        elif len(envelope) > _MAX_ENVELOPE:
            raise _fail(RejectReason.MALFORMED, detail="envelope not parseable")
        else:
            parts = split_tree(parsed)
        params = self._read_request(parts.body)
        transaction = self._tokens.verified(
            parts.transaction, Purpose.TOKEN_SIGNING, now, cache=False
        )
        self._check_transaction(transaction, params, client_identity, now)
        mandate = None
        if parts.mandate is not None:
            mandate = self._tokens.verified(parts.mandate, Purpose.NON_REPUDIATION, now, cache=True)
            self._check_mandate(mandate, params, now)
        elif params.author is None or params.author.uzi_number != params.overseer.uzi_number:
            raise _fail(RejectReason.MANDATE_MISSING, message_id=params.message_id.extension)
        else:
            self._check_own_responsibility(transaction, params)
        self._check_replay(transaction, now)
        return VerifiedRequest(
            body=parts.body, params=params, transaction=transaction, mandate=mandate
        )

    def _read_request(self, body: etree._Element) -> QueryParams:
        """The query in the HL7 body; RequestRejected(bad_request) when the LSP would refuse it."""
        bsn = _patient_bsn(body)
        try:
            params = self._read_body(body)
        except RequestRejected:
            raise
        except PrefetchError as exc:
            raise _bad_request(f"HL7 body not readable ({type(exc).__name__})") from None
        if params.bsn.value != bsn:
            raise _bad_request("patientID is not one BSN of nine digits")
        return params

    # -- claims ---------------------------------------------------------------------------

    def _check_transaction(
        self, tok: TokenInfo, params: QueryParams, client: UziIdentity | None, now: dt.datetime
    ) -> None:
        p = self._profile
        mid = params.message_id.extension
        if not tok.intended_for(self._audience):
            raise _fail(RejectReason.WRONG_AUDIENCE, message_id=mid)
        if now < tok.not_before - self._skew:
            raise _fail(RejectReason.NOT_YET_VALID, message_id=mid)
        if now >= tok.not_on_or_after + self._skew:
            raise _fail(RejectReason.EXPIRED_TOKEN, message_id=mid)
        if tok.not_on_or_after - tok.not_before > p.max_transaction_validity:
            raise _fail(RejectReason.VALIDITY_TOO_LONG, message_id=mid)
        if (
            tok.issuer != ii_urn(oids.URA, params.hospital_ura)
            or tok.signer_ura != params.hospital_ura
        ):
            raise _fail(RejectReason.ISSUER_MISMATCH, message_id=mid)
        message = ii_urn(params.message_id.root or "", params.message_id.extension or "")
        if tok.single(p.message_attribute) != message:
            raise _fail(RejectReason.MESSAGE_MISMATCH, message_id=mid)
        if tok.single(p.patient_attribute) != params.bsn.value:
            raise _fail(RejectReason.BSN_MISMATCH, message_id=mid)
        if params.author is None:
            author = ii_urn(oids.UZI_SYSTEM, params.author_system_uzi or "")
            signer_ok = tok.signer_uzi == params.author_system_uzi and tok.signer_card_type == "S"
            name_id = ""
        else:
            author = ii_urn(oids.UZI_PERSON, params.author.uzi_number)
            signer_ok = tok.signer_uzi == params.author.uzi_number and tok.signer_card_type != "S"
            name_id = f"{params.author.uzi_number}:{params.author.role_code}"
        if (
            tok.single(p.author_attribute) != author
            or not signer_ok
            or tok.name_id != name_id
            or tok.single(p.overseer_attribute)
            != ii_urn(oids.UZI_PERSON, params.overseer.uzi_number)
        ):
            raise _fail(RejectReason.AUTHOR_MISMATCH, message_id=mid)
        if tok.holder is None:
            raise _fail(RejectReason.MALFORMED, detail="no holder-of-key confirmation")
        if client is not None and tok.holder != (client.issuer, client.certificate_serial):
            raise _fail(RejectReason.HOLDER_MISMATCH, message_id=mid)

    def _check_own_responsibility(self, tok: TokenInfo, params: QueryParams) -> None:
        """No mandate: the author is the overseer and must be a clinician in that role.

        Only a medical specialist or pharmacist (card Z) is a responsible clinician; the
        overseer's role code must be the role in the certificate that signed the token.
        """
        mid = params.message_id.extension
        if tok.signer_card_type != _CLINICIAN:
            raise _fail(RejectReason.OVERSEER_NOT_CLINICIAN, message_id=mid)
        if tok.signer_uzi != params.overseer.uzi_number:  # checked before; kept explicit
            raise _fail(RejectReason.AUTHOR_MISMATCH, message_id=mid)
        if not tok.signer_role or tok.signer_role != params.overseer.role_code:
            raise _fail(RejectReason.OVERSEER_ROLE_MISMATCH, message_id=mid)

    def _check_mandate(self, tok: TokenInfo, params: QueryParams, now: dt.datetime) -> None:
        p = self._profile
        mid = params.message_id.extension
        overseer = params.overseer
        if (
            tok.issuer != ii_urn(oids.UZI_PERSON, overseer.uzi_number)
            or tok.signer_uzi != overseer.uzi_number
            or tok.signer_card_type == "S"
            or tok.single(p.role_attribute) != overseer.role_code
        ):
            raise _fail(RejectReason.MANDATE_WRONG_ISSUER, message_id=mid)
        if tok.signer_card_type != _CLINICIAN:
            raise _fail(RejectReason.MANDATE_SIGNER_NOT_CLINICIAN, message_id=mid)
        if not tok.signer_role or tok.single(p.role_attribute) != tok.signer_role:
            raise _fail(RejectReason.MANDATE_ROLE_MISMATCH, message_id=mid)
        if overseer.role_code != tok.signer_role:  # implied by the two checks above
            raise _fail(RejectReason.MANDATE_ROLE_MISMATCH, message_id=mid)
        if (
            tok.name_id != ii_urn(oids.URA, params.hospital_ura)
            or tok.signer_ura != params.hospital_ura
        ):
            raise _fail(RejectReason.MANDATE_WRONG_ORGANISATION, message_id=mid)
        mandatee = params.author.uzi_number if params.author else params.author_system_uzi
        if tok.single(p.mandatee_attribute) != mandatee:
            raise _fail(RejectReason.MANDATE_WRONG_MANDATEE, message_id=mid)
        if not tok.intended_for(self._audience):
            raise _fail(RejectReason.WRONG_AUDIENCE, message_id=mid, which="mandate")
        if not (tok.not_before - self._skew <= now < tok.not_on_or_after + self._skew):
            raise _fail(RejectReason.MANDATE_EXPIRED, message_id=mid)

    def _check_replay(self, tok: TokenInfo, now: dt.datetime) -> None:
        if not self._detect_replay:
            return
        with self._lock:
            # forget tokens whose window has closed (they fail the time check anyway)
            while self._expiry and self._expiry[0][0] < now:
                _, old = self._expiry.popleft()
                self._seen.discard(old)
            if tok.assertion_id in self._seen:
                raise _fail(RejectReason.REPLAYED, assertion_id=tok.assertion_id)
            self._seen.add(tok.assertion_id)
            self._expiry.append((tok.not_on_or_after + self._skew, tok.assertion_id))
