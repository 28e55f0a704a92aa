"""Security errors with one documented reason per failure.

Both are `prefetch.errors.SecurityError` (a `StopError`): a key, certificate or token that
cannot be used stops the command or run. The simulator maps `TokenRejected.reason` and
`CertificateRejected.reason` to a SOAP fault with the reason's value as fault string, so a
client can tell every refusal apart.

`RequestRejected` is different: the HL7 body of a secured query could not be read as a query
the LSP accepts (`RequestReason.BAD_REQUEST`). It is a `MessageError`, answered as a client
error, never counted as a token or signature failure.

Messages never carry a BSN, a name or key material: only reasons, serial numbers, ids.
"""

from __future__ import annotations

import enum

from prefetch.errors import MessageError, SecurityError


class CertReason(enum.Enum):
    """Why a certificate (TLS peer or token signer) was refused."""

    UNTRUSTED = "untrusted"  # does not chain to a configured anchor (foreign CA)
    SELF_SIGNED = "self_signed"  # an end-entity certificate that signs itself
    EXPIRED = "expired"  # leaf or chain certificate past notAfter
    NOT_YET_VALID = "not_yet_valid"  # leaf or chain certificate before notBefore
    REVOKED = "revoked"  # listed on the issuer's CRL
    CRL_UNAVAILABLE = "crl_unavailable"  # no CRL, or CRL stale / badly signed (fail closed)
    KEY_USAGE = "key_usage"  # key usage / extended key usage wrong for the purpose
    NOT_UZI = "not_uzi"  # no usable UZI identity (SAN otherName 2.5.5.5)
    MALFORMED = "malformed"  # not parseable as X.509
    MISSING = "missing"  # the peer sent no certificate


class RejectReason(enum.Enum):
    """Why the LSP side refused a message's WS-Security header. One value per failure."""

    MALFORMED = "malformed"  # envelope / header / assertion structure wrong
    TOKEN_MISSING = "token_missing"  # noqa: S105             # no transactietoken
    BAD_SIGNATURE = "bad_signature"  # SignatureValue does not verify
    DIGEST_MISMATCH = "digest_mismatch"  # signed content altered after signing
    WRAPPED_SIGNATURE = "wrapped_signature"  # moved / duplicated / wrapped
    UNTRUSTED_SIGNER = "untrusted_signer"  # signer does not chain to the UZI anchors
    REVOKED_SIGNER = "revoked_signer"  # signer certificate on the CRL
    SIGNER_CERT_INVALID = "signer_cert_invalid"  # signer expired / wrong key usage / no UZI id
    EXPIRED_TOKEN = "expired_token"  # noqa: S105             # now >= NotOnOrAfter + skew
    NOT_YET_VALID = "not_yet_valid"  # now < NotBefore - skew
    VALIDITY_TOO_LONG = "validity_too_long"  # window longer than the verifier allows
    REPLAYED = "replayed"  # same assertion ID seen before in its window
    WRONG_AUDIENCE = "wrong_audience"  # Audience is not the LSP
    ISSUER_MISMATCH = "issuer_mismatch"  # Issuer URA differs from the message / signer
    BSN_MISMATCH = "bsn_mismatch"  # token BSN differs from the HL7 patientID
    AUTHOR_MISMATCH = "author_mismatch"  # token subject / signer is not the HL7 author
    HOLDER_MISMATCH = "holder_mismatch"  # holder-of-key is not the TLS client
    MESSAGE_MISMATCH = "message_mismatch"  # token bound to another message id
    MANDATE_MISSING = "mandate_missing"  # author acts for an overseer without mandate
    MANDATE_WRONG_ISSUER = "mandate_wrong_issuer"  # mandate not signed by the message's overseer
    MANDATE_WRONG_MANDATEE = "mandate_wrong_mandatee"  # mandate is for someone else
    MANDATE_WRONG_ORGANISATION = "mandate_wrong_organisation"  # NameID URA differs
    MANDATE_EXPIRED = "mandate_expired"  # outside the mandate's validity
    MANDATE_UNEXPECTED = "mandate_unexpected"  # more than one mandaattoken
    MANDATE_SIGNER_NOT_CLINICIAN = "mandate_signer_not_clinician"  # mandate not by a Z card
    MANDATE_ROLE_MISMATCH = "mandate_role_mismatch"  # mandate role is not the signer's UZI role
    OVERSEER_NOT_CLINICIAN = "overseer_not_clinician"  # no mandate, author/overseer not a Z card
    OVERSEER_ROLE_MISMATCH = "overseer_role_mismatch"  # no mandate, overseer role not signer's


class RequestReason(enum.Enum):
    """Why the LSP side refused the HL7 body of a secured query (not a security failure)."""

    BAD_REQUEST = "bad_request"  # HL7 body unreadable or not a query the LSP accepts


REASON_DESCRIPTIONS: dict[RejectReason, str] = {
    RejectReason.MALFORMED: "SOAP envelope, WS-Security header or SAML assertion malformed",
    RejectReason.TOKEN_MISSING: "no transactietoken in the WS-Security header",
    RejectReason.BAD_SIGNATURE: "XML signature value does not verify",
    RejectReason.DIGEST_MISMATCH: "signed assertion content was altered",
    RejectReason.WRAPPED_SIGNATURE: "signature or assertion moved, duplicated or wrapped",
    RejectReason.UNTRUSTED_SIGNER: "signer certificate does not chain to a trusted UZI CA",
    RejectReason.REVOKED_SIGNER: "signer certificate is revoked",
    RejectReason.SIGNER_CERT_INVALID: "signer certificate expired, wrong usage or not UZI",
    RejectReason.EXPIRED_TOKEN: "token validity window has passed",
    RejectReason.NOT_YET_VALID: "token is not yet valid",
    RejectReason.VALIDITY_TOO_LONG: "token validity window is longer than allowed",
    RejectReason.REPLAYED: "token was already used",
    RejectReason.WRONG_AUDIENCE: "token audience is not the LSP",
    RejectReason.ISSUER_MISMATCH: "token issuer does not match the requesting organisation",
    RejectReason.BSN_MISMATCH: "token patient does not match the query patient",
    RejectReason.AUTHOR_MISMATCH: "token author does not match the query author",
    RejectReason.HOLDER_MISMATCH: "token holder is not the TLS client",
    RejectReason.MESSAGE_MISMATCH: "token is bound to another message",
    RejectReason.MANDATE_MISSING: "query made for an overseer without a mandaattoken",
    RejectReason.MANDATE_WRONG_ISSUER: "mandaattoken not issued by the responsible clinician",
    RejectReason.MANDATE_WRONG_MANDATEE: "mandaattoken mandates someone else",
    RejectReason.MANDATE_WRONG_ORGANISATION: "mandaattoken valid for another organisation",
    RejectReason.MANDATE_EXPIRED: "mandaattoken is expired or not yet valid",
    RejectReason.MANDATE_UNEXPECTED: "more than one mandaattoken",
    RejectReason.MANDATE_SIGNER_NOT_CLINICIAN: (
        "mandaattoken not signed with a medical specialist's or pharmacist's UZI pass (card Z)"
    ),
    RejectReason.MANDATE_ROLE_MISMATCH: (
        "mandaattoken role differs from the role in the signer's UZI certificate"
    ),
    RejectReason.OVERSEER_NOT_CLINICIAN: (
        "query without mandate whose author / overseer has no card Z UZI pass"
    ),
    RejectReason.OVERSEER_ROLE_MISMATCH: (
        "query without mandate whose overseer role differs from the signer's UZI role"
    ),
}

REQUEST_REASON_DESCRIPTIONS: dict[RequestReason, str] = {
    RequestReason.BAD_REQUEST: (
        "HL7 body not readable, or not exactly one patientID with one well-formed BSN"
    ),
}


class CertificateRejected(SecurityError):
    """A certificate was refused; `reason` says why."""

    def __init__(self, reason: CertReason, **context: object) -> None:
        super().__init__(f"certificate rejected: {reason.value}", **context)
        self.reason = reason


class RequestRejected(MessageError):
    """The HL7 body of a secured query was refused: a request problem, not a token failure.

    A `MessageError`, not a `SecurityError`: the simulator answers it with a `soap:Client`
    fault whose fault string starts with the reason's value, and does not count it as a
    signature failure.
    """

    def __init__(self, reason: RequestReason, detail: str, **context: object) -> None:
        super().__init__(f"{reason.value}: {detail}", **context)
        self.reason = reason
        self.detail = detail

    @property
    def description(self) -> str:
        return REQUEST_REASON_DESCRIPTIONS[self.reason]


class TokenRejected(SecurityError):
    """A WS-Security header was refused; `reason` says why (the SOAP fault string)."""

    def __init__(self, reason: RejectReason, **context: object) -> None:
        super().__init__(f"token rejected: {reason.value}", **context)
        self.reason = reason

    @property
    def description(self) -> str:
        return REASON_DESCRIPTIONS[self.reason]
