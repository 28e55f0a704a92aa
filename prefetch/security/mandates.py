"""Mandates on the hospital side: sign one at registration, check it before a run.

`register_mandate` has the mandating clinician's own pass sign the mandaattoken once and
returns the `Mandate` with its token (the caller stores it). `check_mandate` is what a run
calls before it starts: it refuses a missing, expired, foreign or tampered mandate with a
`MandateError` whose message says what is wrong and what to do. The LSP side checks the same
token again on every query (`EnvelopeVerifier`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from prefetch.domain import oids
from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import MandateError
from prefetch.security.errors import CertificateRejected, TokenRejected
from prefetch.security.keys import Credential
from prefetch.security.saml import DEFAULT_PROFILE, TokenInfo, TokenProfile, ii_urn
from prefetch.security.signcheck import TokenChecker
from prefetch.security.tokens import build_mandate_token
from prefetch.security.trust import Purpose, TrustStore
from prefetch.security.uzi import CardType

_CLINICIAN = CardType.ZORGVERLENER


def register_mandate(
    credential: Credential,
    *,
    name: str,
    mandated_id: str,
    schedules: Iterable[str],
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    now: dt.datetime,
    mandate_id: str | None = None,
    profile: TokenProfile = DEFAULT_PROFILE,
    trust: TrustStore | None = None,
) -> Mandate:
    """A new mandate by the holder of `credential` (a card Z UZI pass), with signed token.

    Only a medical specialist or pharmacist (card type Z) gives a mandate: a server
    certificate or an employee pass (N, M) is refused. With `trust`, the pass is validated
    first (chain, validity, CRL, non-repudiation key usage) at `now`. Raises MandateError.
    """
    ident = credential.identity
    if not ident.card_type.is_person:
        raise MandateError("a mandate is given by a clinician's personal UZI pass, not a server")
    if ident.card_type is not _CLINICIAN:
        raise MandateError(
            "a mandate is given only by a medical specialist or pharmacist (UZI card type Z)",
            card_type=ident.card_type.value,
        )
    schedules = tuple(schedules)
    if not schedules_ok(schedules):
        raise MandateError("a mandate needs at least one non-empty schedule id")
    if trust is not None:
        try:
            trust.validate(
                [credential.certificate, *credential.chain], now, Purpose.NON_REPUDIATION
            )
        except CertificateRejected as exc:
            raise MandateError(
                "the clinician's pass is not valid for signing a mandate",
                certificate=exc.reason.value,
                serial=credential.certificate.serial_number,
            ) from None
    clinician = Clinician(ident.uzi_number, ident.role, name, ident.ura)
    unsigned = Mandate(
        id=mandate_id or f"mandate-{uuid.uuid4().hex[:12]}",
        mandating=clinician,
        mandated_id=mandated_id,
        schedules=frozenset(schedules),
        valid_from=valid_from,
        valid_until=valid_until,
    )
    token = build_mandate_token(unsigned, credential, now=now, profile=profile)
    return Mandate(
        id=unsigned.id,
        mandating=clinician,
        mandated_id=mandated_id,
        schedules=unsigned.schedules,
        valid_from=valid_from,
        valid_until=valid_until,
        token_xml=token,
    )


def schedules_ok(schedules: Iterable[str]) -> bool:
    """At least one schedule id, none empty or padded with whitespace."""
    ids = list(schedules)
    return bool(ids) and all(i and i == i.strip() for i in ids)


def check_mandate(
    mandate: Mandate | None,
    *,
    schedule_id: str,
    mandatee: str,
    ura: str,
    trust: TrustStore,
    now: dt.datetime,
    profile: TokenProfile = DEFAULT_PROFILE,
) -> TokenInfo:
    """Refuse to run under a missing, expired, foreign or tampered mandate.

    Returns the verified token claims. Raises MandateError naming the mandate id (never a
    person's name) and the fix.
    """
    if mandate is None:
        raise MandateError(
            "no mandate covers this schedule",
            schedule=schedule_id,
            fix="register one with `prefetch mandate register`",
        )
    ctx = {"mandate_id": mandate.id, "schedule": schedule_id}
    if not mandate.valid_from <= now < mandate.valid_until:
        raise MandateError(
            "mandate is expired or not yet valid", fix="register a new mandate", **ctx
        )
    if schedule_id not in mandate.schedules:
        raise MandateError("mandate does not cover this schedule", **ctx)
    if mandate.mandated_id != mandatee:
        raise MandateError("mandate was given to someone else", mandatee=mandatee, **ctx)
    if not mandate.token_xml:
        raise MandateError("mandate has no signed token", fix="register it again", **ctx)
    try:
        info = TokenChecker(trust, profile=profile).check_mandate_token(mandate.token_xml, now=now)
    except TokenRejected as exc:
        raise MandateError(
            "mandate token refused", reason=exc.reason.value, fix="register it again", **ctx
        ) from None
    if (
        info.issuer != ii_urn(oids.UZI_PERSON, mandate.mandating.uzi_number)
        or info.signer_uzi != mandate.mandating.uzi_number
    ):
        raise MandateError("mandate token was signed by another clinician (foreign)", **ctx)
    if info.signer_card_type != _CLINICIAN.value:
        raise MandateError(
            "mandate was not signed by a medical specialist or pharmacist (UZI card type Z)",
            card_type=info.signer_card_type,
            fix="have a specialist or pharmacist register it",
            **ctx,
        )
    if (
        not info.signer_role
        or info.single(profile.role_attribute) != info.signer_role
        or mandate.mandating.role_code != info.signer_role
    ):
        raise MandateError(
            "mandate role differs from the role in the signer's UZI certificate", **ctx
        )
    if info.name_id != ii_urn(oids.URA, ura) or info.signer_ura != ura:
        raise MandateError("mandate belongs to another organisation (foreign)", ura=ura, **ctx)
    if info.single(profile.mandatee_attribute) != mandatee:
        raise MandateError("mandate token names another mandatee", **ctx)
    if not info.not_before <= now < info.not_on_or_after:
        raise MandateError("mandate token is expired", fix="register a new mandate", **ctx)
    if schedule_id not in info.attribute(profile.schedules_attribute):
        raise MandateError("mandate token does not cover this schedule", **ctx)
    return info
