"""The security attack table at the level that matters to a hospital (issue 4,
acceptance 3): our engine and store against the simulator over mutual TLS, with an
attacker's client. Every attack is refused by the simulator with its own reason, and not a
single dispense is stored."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from day_helpers import known_patients_day
from lxml import etree

from prefetch.clock import SystemClock
from prefetch.composition import make_prefetcher, open_stores
from prefetch.demo.setup import (
    demo_schedule,
    demo_settings,
    ensure_mandate,
    ensure_pki,
    start_simulator,
)
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lsp.client import LspClient, LspEndpoint
from prefetch.lspsim.profiles import get_profile
from prefetch.lspsim.world import World
from prefetch.security.keys import Credential
from prefetch.security.tls import mtls_session
from prefetch.settings import RunSettings

NS = {
    "soap": "http://schemas.xmlsoap.org/soap/envelope/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "hl7": "urn:hl7-org:v3",
}
OTHER_BSN = "111222333"
Tamper = Callable[[etree._Element, QueryParams], None]


def _token(root: etree._Element) -> etree._Element:
    found = root.find("soap:Header/wsse:Security/saml:Assertion", NS)
    assert found is not None
    return found


def tamper_digest(root: etree._Element, _: QueryParams) -> None:
    el = _token(root).find("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue", NS)
    assert el is not None and el.text
    el.text = ("B" if el.text[0] == "A" else "A") + el.text[1:]


def token_for_other_patient(root: etree._Element, params: QueryParams) -> None:
    for value in _token(root).iter(f"{{{NS['saml']}}}AttributeValue"):
        if value.text == params.bsn.value:
            value.text = OTHER_BSN


def body_for_other_patient(root: etree._Element, params: QueryParams) -> None:
    pid = root.find(".//hl7:queryByParameter/hl7:patientID/hl7:value", NS)
    assert pid is not None
    pid.set("extension", OTHER_BSN)


def drop_mandate(root: etree._Element, _: QueryParams) -> None:
    security = root.find("soap:Header/wsse:Security", NS)
    assert security is not None
    assertions = security.findall("saml:Assertion", NS)
    assert len(assertions) == 2
    security.remove(assertions[1])


def wrap_signature(root: etree._Element, params: QueryParams) -> None:
    original = _token(root)
    forged = copy.deepcopy(original)
    for value in forged.iter(f"{{{NS['saml']}}}AttributeValue"):
        if value.text == params.bsn.value:
            value.text = OTHER_BSN
    etree.SubElement(forged, f"{{{NS['saml']}}}Advice").append(copy.deepcopy(original))
    forged.set("ID", "_forged")
    original.addprevious(forged)
    parent = original.getparent()
    assert parent is not None
    parent.remove(original)


class ShiftedClock(SystemClock):
    def __init__(self, shift: dt.timedelta) -> None:
        self.shift = shift

    def now(self) -> dt.datetime:
        return super().now() + self.shift


class AttackingClient(LspClient):
    """Our client, with the envelope changed after signing (or signed at another time)."""

    def __init__(
        self, *, tamper: Tamper | None, clock_shift: dt.timedelta, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.tamper = tamper
        self.clock = ShiftedClock(clock_shift)

    def envelope(self, params: QueryParams, *, mandate_token: bytes | None) -> bytes:
        data = super().envelope(params, mandate_token=mandate_token)
        if self.tamper is None:
            return data
        root = parse_xml(data)
        self.tamper(root, params)
        return bytes(etree.tostring(root))


# (name, tamper, clock shift, TLS identity, expected reasons in /_sim/stats or "tls")
ROWS = [
    ("tampered digest", tamper_digest, 0, "hospital", {"bad_signature", "digest_mismatch"}),
    (
        "token for another patient",
        token_for_other_patient,
        0,
        "hospital",
        {"bad_signature", "digest_mismatch"},
    ),
    ("BSN in the message changed", body_for_other_patient, 0, "hospital", {"bsn_mismatch"}),
    ("replay outside the window", None, -3600, "hospital", {"expired_token"}),
    ("missing mandate", drop_mandate, 0, "hospital", {"mandate_missing"}),
    ("wrapped signature", wrap_signature, 0, "hospital", {"wrapped_signature"}),
    ("expired client certificate", None, 0, "expired", "tls"),
    ("revoked client certificate", None, 0, "revoked", "tls"),
    ("client certificate from a foreign CA", None, 0, "foreign", "tls"),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    data_dir = tmp_path_factory.mktemp("attacks")
    ensure_pki(data_dir, key_size=2048)
    return data_dir, World.generate(9, 25)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "tamper", "shift", "identity", "expected"), ROWS, ids=[r[0] for r in ROWS]
)
def test_attack_refused_and_nothing_stored(
    setup: tuple[Path, World],
    tmp_path: Path,
    name: str,
    tamper: Tamper | None,
    shift: int,
    identity: str,
    expected: set[str] | str,
) -> None:
    data_dir, world = setup
    pki, passphrase = ensure_pki(data_dir, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    clinic_day, appointments = known_patients_day(world, 10, seed=4)
    schedule = demo_schedule(pki)
    profile = get_profile("ideal")
    with start_simulator(world, profile, pki, passphrase) as sim:
        settings = dataclasses.replace(
            demo_settings(data_dir, pki, sim, profile),
            data_dir=str(tmp_path),
            run=RunSettings(max_attempts=1),
        )
        stores = open_stores(settings)
        mandate = ensure_mandate(stores, pki, passphrase, schedule, now)
        signer: Credential = pki.hospital.load(passphrase)
        tls_identity = pki.identity(identity).load(passphrase)
        client = AttackingClient(
            tamper=tamper,
            clock_shift=dt.timedelta(seconds=shift),
            endpoint=LspEndpoint(sim.url, read_timeout=10),
            session=mtls_session(tls_identity, pki.ca_bundle),
            credential=signer,
        )
        prefetcher = make_prefetcher(settings, stores, client)
        prepared = prefetcher.prepare(schedule, clinic_day, appointments, mandate=mandate)
        assert prepared.to_query == 10
        report = prefetcher.execute(prepared.run_id, schedule, mandate, clinic_day=clinic_day)
        stats = sim.stats()
    assert stores.dispenses.count() == 0, name
    assert stats["dispenses_sent"] == 0, name
    if expected == "tls":
        assert stats["tls_failures"] >= 1
        assert stats["queries_received"] == 0
        assert report.stopped is not None  # our certificate refused: stop, alert operations
        assert "client certificate" in report.stopped
    else:
        assert set(stats["signature_failure_reasons"]) <= expected, stats
        assert stats["signature_failures"] >= 1
        assert report.stopped is not None  # a refused token stops the run at once
    stores.engine.dispose()
