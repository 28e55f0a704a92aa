"""The signed query envelope from a per-run template: only the per-query values change.

`EnvelopeTemplates.envelope(params, mandate_token=..., now=...)` returns exactly the bytes
the tree path (`wssec.secure_query`: build the HL7 tree, build the SAML tree and sign it
with signxml, serialise) returns for the same values and assertion ID. Tests pin the two
byte for byte; RSASSA-PKCS1-v1_5 is deterministic, so even the signature is equal.

What is static for a run (hospital, overseer, author, id roots, settings, profile, the
mandate token) is built once by the tree path itself, with marker values (`@@name@@`) in
the places that change per query, and kept in three serialised forms:
- the envelope as sent;
- the exclusive C14N of the unsigned assertion: what the Reference digests (the enveloped
  signature excised);
- the exclusive C14N of `ds:SignedInfo`: what the RSA key signs.
Per query: fill the canonical assertion, SHA-256 it, fill the SignedInfo, sign it once, fill
the envelope. Nothing is parsed, built as a tree or canonicalised per query, and the
assertion in the envelope is the assertion that was digested, value for value.

A per-query value is inserted only when it needs no escaping in any of the three forms
(`_SAFE`: letters, digits, `.`, `_`, `:`, `+`, `-`); a query with another value (or a
template that cannot be made, e.g. a static value holding `@@`) takes the tree path, so the
output never depends on which path made it.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import re
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from prefetch.hl7v3.aorta_settings import DEFAULT_SETTINGS, AortaSettings
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.xmlbuild import format_date, format_ts
from prefetch.hl7v3.xmlbuild import q as hl7
from prefetch.security.keys import Credential
from prefetch.security.saml import DEFAULT_PROFILE, DS, SAML, TokenProfile, ii_urn, q, saml_time
from prefetch.security.tokens import new_assertion_id, sign_assertion, unsigned_transaction_token
from prefetch.security.wssec import secure_envelope, secure_query

_SAFE = re.compile(r"[A-Za-z0-9._:+\-]*\Z")
_MAX_TEMPLATES = 32
_EXC_C14N = {"method": "c14n", "exclusive": True, "with_comments": False}


def _mark(name: str) -> str:
    return f"@@{name}@@"


class _Unusable(Exception):
    """The static values collide with the markers: this query takes the tree path."""


class _Fill:
    """A serialised document with markers, filled by bytes %-formatting."""

    def __init__(self, data: bytes, counts: dict[str, int]) -> None:
        for name, count in counts.items():
            if data.count(_mark(name).encode()) != count:
                raise _Unusable(name)
        if data.count(b"@@") != 2 * sum(counts.values()):
            raise _Unusable("stray marker")
        fmt = data.replace(b"%", b"%%")
        for name in counts:
            fmt = fmt.replace(_mark(name).encode(), b"%(" + name.encode() + b")s")
        self._fmt = fmt

    def __call__(self, values: dict[bytes, bytes]) -> bytes:
        return self._fmt % values


@dataclass(frozen=True, slots=True)
class _Template:
    canonical: _Fill  # exc-c14n of the unsigned assertion (digested)
    signed_info: _Fill  # exc-c14n of ds:SignedInfo (signed)
    envelope: _Fill  # the envelope as sent
    look_back: bool


def _key(params: QueryParams, mandate_token: bytes | None) -> tuple[object, ...]:
    """Everything in a query that is built into the template (the rest is per query)."""
    return (
        params.overseer,
        params.hospital_ura,
        params.hospital_name,
        params.sender_application_id,
        params.author,
        params.author_system_uzi,
        params.message_id.root,
        params.message_id.null_flavor,
        params.query_id.root,
        params.query_id.null_flavor,
        params.look_back_from is None,
        mandate_token,
    )


#: The QueryParams fields `_key` and `_values` cover (a test keeps this list complete).
COVERED_FIELDS = frozenset(
    {
        "bsn",
        "message_id",
        "query_id",
        "created_at",
        "overseer",
        "hospital_ura",
        "hospital_name",
        "sender_application_id",
        "author",
        "author_system_uzi",
        "look_back_from",
    }
)


def _mark_body(body: etree._Element) -> None:
    body.find(hl7("id")).set("extension", _mark("mid"))  # type: ignore[union-attr]
    body.find(hl7("creationTime")).set("value", _mark("created"))  # type: ignore[union-attr]
    qbp = body.find(f"{hl7('ControlActProcess')}/{hl7('queryByParameter')}")
    assert qbp is not None
    qbp.find(hl7("queryId")).set("extension", _mark("qid"))  # type: ignore[union-attr]
    low = qbp.find(f"{hl7('dispenseEventEffectiveTimeInterval')}/{hl7('value')}/{hl7('low')}")
    if low is not None:
        low.set("value", _mark("since"))
    qbp.find(f"{hl7('patientID')}/{hl7('value')}").set("extension", _mark("bsn"))  # type: ignore[union-attr]


def _mark_assertion(assertion: etree._Element, params: QueryParams, profile: TokenProfile) -> None:
    assertion.set("IssueInstant", _mark("now"))
    conditions = assertion.find(q(SAML, "Conditions"))
    authn = assertion.find(q(SAML, "AuthnStatement"))
    assert conditions is not None
    assert authn is not None
    conditions.set("NotBefore", _mark("now"))
    conditions.set("NotOnOrAfter", _mark("until"))
    authn.set("AuthnInstant", _mark("now"))
    texts = {
        profile.patient_attribute: _mark("bsn"),
        profile.message_attribute: ii_urn(params.message_id.root or "", _mark("mid")),
    }
    for attribute in assertion.iter(q(SAML, "Attribute")):
        if attribute.get("Name") in texts:
            values = attribute.findall(q(SAML, "AttributeValue"))
            assert len(values) == 1
            values[0].text = texts[attribute.get("Name", "")]


class EnvelopeTemplates:
    """Signed query envelopes for one credential, from templates made on first use."""

    def __init__(
        self,
        credential: Credential,
        *,
        settings: AortaSettings = DEFAULT_SETTINGS,
        validity: dt.timedelta = dt.timedelta(minutes=5),
        profile: TokenProfile = DEFAULT_PROFILE,
    ) -> None:
        self.credential = credential
        self.settings = settings
        self.validity = validity
        self.profile = profile
        self._key_object = credential.private_key
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()
        self._templates: dict[tuple[object, ...], _Template | None] = {}
        self._lock = threading.Lock()

    def envelope(
        self,
        params: QueryParams,
        *,
        mandate_token: bytes | None,
        now: dt.datetime,
        assertion_id: str | None = None,
    ) -> bytes:
        """The bytes to POST for this query (equal to `secure_query`'s)."""
        prepared = self.prepare(
            params, mandate_token=mandate_token, now=now, assertion_id=assertion_id
        )
        if prepared is None:
            return secure_query(
                params,
                self.credential,
                mandate_token=mandate_token,
                now=now,
                settings=self.settings,
                validity=self.validity,
                profile=self.profile,
                assertion_id=assertion_id,
            )
        template, values = prepared
        values[b"digest"] = base64.b64encode(hashlib.sha256(template.canonical(values)).digest())
        signature = self._key_object.sign(template.signed_info(values), self._padding, self._hash)
        values[b"signature"] = base64.b64encode(signature)
        return template.envelope(values)

    def prepare(
        self,
        params: QueryParams,
        *,
        mandate_token: bytes | None,
        now: dt.datetime,
        assertion_id: str | None = None,
    ) -> tuple[_Template, dict[bytes, bytes]] | None:
        """The template and this query's values; None when the query takes the tree path."""
        key = _key(params, mandate_token)
        try:
            template = self._templates[key]
        except KeyError:
            template = self._make(params, mandate_token, key)
        if template is None:
            return None
        texts = [
            assertion_id or new_assertion_id(),
            params.bsn.value,
            params.message_id.extension or "",
            params.query_id.extension or "",
        ]
        if not all(_SAFE.match(text) for text in texts):
            return None
        values = {
            b"id": texts[0].encode(),
            b"bsn": texts[1].encode(),
            b"mid": texts[2].encode(),
            b"qid": texts[3].encode(),
            b"now": saml_time(now).encode(),
            b"until": saml_time(now + self.validity).encode(),
            b"created": format_ts(params.created_at).encode(),
        }
        if template.look_back:
            assert params.look_back_from is not None
            values[b"since"] = format_date(params.look_back_from).encode()
        return template, values

    def _make(
        self, params: QueryParams, mandate_token: bytes | None, key: tuple[object, ...]
    ) -> _Template | None:
        try:
            template: _Template | None = self._build(params, mandate_token)
        except _Unusable:
            template = None
        with self._lock:
            if len(self._templates) >= _MAX_TEMPLATES:
                self._templates.pop(next(iter(self._templates)))
            self._templates[key] = template
        return template

    def _build(self, params: QueryParams, mandate_token: bytes | None) -> _Template:
        """The three forms, made by the tree path (its checks and errors included)."""
        body = build_query(params, self.settings)
        _mark_body(body)
        assertion = unsigned_transaction_token(
            params,
            self.credential,
            now=params.created_at,
            validity=self.validity,
            profile=self.profile,
            assertion_id=_mark("id"),
        )
        _mark_assertion(assertion, params, self.profile)
        unsigned = copy.deepcopy(assertion)
        unsigned.remove(unsigned.find(q(DS, "Signature")))  # type: ignore[arg-type]
        canonical = etree.tostring(unsigned, **_EXC_C14N)  # type: ignore[call-overload]
        signed = sign_assertion(assertion, self.credential, self.profile)
        signature = signed.find(q(DS, "Signature"))
        assert signature is not None
        signed_info = signature.find(q(DS, "SignedInfo"))
        digest = signature.find(
            f"{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}/{q(DS, 'DigestValue')}"
        )
        value = signature.find(q(DS, "SignatureValue"))
        assert signed_info is not None
        assert digest is not None
        assert value is not None
        digest.text = _mark("digest")
        value.text = _mark("signature")
        look_back = params.look_back_from is not None
        static = {"id": 1, "now": 3, "until": 1, "bsn": 1, "mid": 1}
        envelope = secure_envelope(
            body, transaction_token=signed, mandate_token=mandate_token, profile=self.profile
        )
        return _Template(
            canonical=_Fill(canonical, static),
            signed_info=_Fill(
                etree.tostring(signed_info, **_EXC_C14N),  # type: ignore[call-overload]
                {"id": 1, "digest": 1},
            ),
            envelope=_Fill(
                envelope,
                {
                    **static,
                    "id": 2,
                    "bsn": 2,
                    "mid": 2,
                    "created": 1,
                    "qid": 1,
                    "since": int(look_back),
                    "digest": 1,
                    "signature": 1,
                },
            ),
            look_back=look_back,
        )
