"""A minimal signed-query driver for the simulator (benchmarks, tests, `lsp-sim` checks).

Not the product's LSP client: it builds `QURX_IN990111NL` with `prefetch.hl7v3`, signs the
transactietoken with the dev PKI's hospital server certificate, adds the mandaattoken of
the dev specialist (the system queries under the specialist's mandate) and sends over a
mutual-TLS `requests.Session` with keep-alive.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import requests

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import ConfigError
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.query import build_query
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.tls import mtls_session
from prefetch.security.tokens import build_mandate_token, build_transaction_token
from prefetch.security.wssec import secure_envelope

SENDER_APPLICATION_ID = "10008890"
SOAP_HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": "urn:hl7-org:v3/QURX_IN990111NL",
}


class SignedQueries:
    """Builds secured query envelopes for the dev PKI's hospital. Thread-safe."""

    def __init__(self, pki: DevPki, passphrase: bytes, *, now: dt.datetime | None = None) -> None:
        start = now or dt.datetime.now(dt.UTC)
        self.pki = pki
        self.hospital: Credential = pki.hospital.load(passphrase)
        specialist_id = pki.specialist
        if not (specialist_id.uzi_number and specialist_id.role and pki.hospital.uzi_number):
            raise ConfigError("dev PKI lacks the specialist or hospital identity")
        self.overseer = Clinician(
            specialist_id.uzi_number,
            specialist_id.role,
            specialist_id.display_name,
            pki.hospital_ura,
        )
        mandate = Mandate(
            id="lspsim-driver",
            mandating=self.overseer,
            mandated_id=pki.hospital.uzi_number,
            schedules=frozenset({"lspsim"}),
            valid_from=start - dt.timedelta(days=1),
            valid_until=start + dt.timedelta(days=30),
        )
        self.mandate_token = build_mandate_token(mandate, specialist_id.load(passphrase), now=start)
        self._system_uzi = pki.hospital.uzi_number
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._passphrase = passphrase

    def params(
        self, bsn: Bsn, *, since: dt.date | None = None, now: dt.datetime | None = None
    ) -> QueryParams:
        with self._lock:
            n = next(self._serial)
        root = f"2.16.528.1.1007.3.3.{self.pki.hospital_ura}"
        return QueryParams(
            bsn=bsn,
            message_id=Identifier(root=f"{root}.1", extension=f"sim-{n}"),
            query_id=Identifier(root=f"{root}.2", extension=f"sim-{n}"),
            created_at=now or dt.datetime.now(dt.UTC),
            overseer=self.overseer,
            hospital_ura=self.pki.hospital_ura,
            hospital_name=self.pki.hospital_name,
            sender_application_id=SENDER_APPLICATION_ID,
            author_system_uzi=self._system_uzi,
            look_back_from=since,
        )

    def envelope(self, params: QueryParams, *, now: dt.datetime | None = None) -> bytes:
        token = build_transaction_token(params, self.hospital, now=now or dt.datetime.now(dt.UTC))
        return secure_envelope(
            build_query(params), transaction_token=token, mandate_token=self.mandate_token
        )

    def session(self, *, pool_maxsize: int = 8) -> requests.Session:
        """A keep-alive mutual-TLS session presenting the hospital certificate."""
        return mtls_session(self.hospital, self.pki.ca_bundle, pool_maxsize=pool_maxsize)
