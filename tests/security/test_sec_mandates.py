"""Mandate registration and the check a run makes before it starts."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from lxml import etree

from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import MandateError
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.keys import Credential
from prefetch.security.mandates import check_mandate, register_mandate
from prefetch.security.pki import DevPki
from prefetch.security.trust import TrustStore


@pytest.fixture
def registered(creds: dict[str, Credential], pki: DevPki, pki_now: dt.datetime) -> Mandate:
    return register_mandate(
        creds["specialist"],
        name="Dr. A. Specialist",
        mandated_id=pki.hospital.uzi_number or "",
        schedules=["card", "long"],
        valid_from=pki_now - dt.timedelta(hours=1),
        valid_until=pki_now + dt.timedelta(days=7),
        now=pki_now,
        mandate_id="m-1",
    )


def _check(
    m: Mandate | None,
    pki: DevPki,
    trust: TrustStore,
    now: dt.datetime,
    schedule: str = "card",
    mandatee: str | None = None,
) -> object:
    return check_mandate(
        m,
        schedule_id=schedule,
        mandatee=mandatee or pki.hospital.uzi_number or "",
        ura=pki.hospital_ura,
        trust=trust,
        now=now,
    )


def test_registered_mandate_passes(
    registered: Mandate, pki: DevPki, trust: TrustStore, pki_now: dt.datetime
) -> None:
    assert registered.mandating.uzi_number == pki.specialist.uzi_number
    assert registered.mandating.ura == pki.hospital_ura
    info = _check(registered, pki, trust, pki_now)
    assert getattr(info, "signer_uzi") == pki.specialist.uzi_number  # noqa: B009


def _forge_schedules(m: Mandate) -> Mandate:
    root = parse_xml(m.token_xml or b"")
    for value in root.iter("{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue"):
        if value.text == "card":
            value.text = "other"
    return dataclasses.replace(m, token_xml=etree.tostring(root))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, c: None, "no mandate covers"),
        (
            lambda m, c: dataclasses.replace(m, valid_until=m.valid_from + dt.timedelta(minutes=1)),
            "expired",
        ),
        (lambda m, c: dataclasses.replace(m, schedules=frozenset({"other"})), "does not cover"),
        (lambda m, c: dataclasses.replace(m, mandated_id="900000999"), "someone else"),
        (lambda m, c: dataclasses.replace(m, token_xml=None), "no signed token"),
        (lambda m, c: _forge_schedules(m), "token refused"),
        (lambda m, c: dataclasses.replace(m, mandating=c), "another clinician"),
    ],
    ids=[
        "missing",
        "expired",
        "other-schedule",
        "other-mandatee",
        "unsigned",
        "tampered",
        "foreign-signer",
    ],
)
def test_run_refuses_bad_mandates(
    registered: Mandate,
    pki: DevPki,
    trust: TrustStore,
    pki_now: dt.datetime,
    assistant: Clinician,
    change: object,
    message: str,
) -> None:
    changed = change(registered, assistant)  # type: ignore[operator]
    with pytest.raises(MandateError, match=message) as info:
        _check(changed, pki, trust, pki_now)
    assert "Specialist" not in str(info.value)  # names never in error messages


def test_mandate_token_signed_by_another_organisations_pass(
    creds: dict[str, Credential], pki: DevPki, trust: TrustStore, pki_now: dt.datetime
) -> None:
    m = register_mandate(
        creds["specialist"],
        name="x",
        mandated_id=pki.hospital.uzi_number or "",
        schedules=["card"],
        valid_from=pki_now,
        valid_until=pki_now + dt.timedelta(days=1),
        now=pki_now,
    )
    with pytest.raises(MandateError, match="another organisation"):
        check_mandate(
            m,
            schedule_id="card",
            mandatee=pki.hospital.uzi_number or "",
            ura="87654321",
            trust=trust,
            now=pki_now,
        )


def test_only_a_personal_pass_registers(creds: dict[str, Credential], pki_now: dt.datetime) -> None:
    with pytest.raises(MandateError, match="personal UZI pass"):
        register_mandate(
            creds["hospital"],
            name="x",
            mandated_id="900000012",
            schedules=["card"],
            valid_from=pki_now,
            valid_until=pki_now + dt.timedelta(days=1),
            now=pki_now,
        )


def _signed_by(
    credential: Credential, clinician: Clinician, pki: DevPki, now: dt.datetime
) -> Mandate:
    """A mandate token built directly (register_mandate would refuse these)."""
    from prefetch.security.tokens import build_mandate_token

    base = Mandate(
        "m-forged",
        clinician,
        pki.hospital.uzi_number or "",
        frozenset({"card"}),
        now - dt.timedelta(hours=1),
        now + dt.timedelta(days=1),
    )
    return dataclasses.replace(base, token_xml=build_mandate_token(base, credential, now=now))


def test_run_refuses_a_mandate_signed_by_an_assistant(
    creds: dict[str, Credential],
    pki: DevPki,
    trust: TrustStore,
    pki_now: dt.datetime,
    assistant: Clinician,
) -> None:
    m = _signed_by(creds["assistant"], assistant, pki, pki_now)
    with pytest.raises(MandateError, match="card type Z") as info:
        _check(m, pki, trust, pki_now)
    assert "Assistent" not in str(info.value)


def test_run_refuses_a_mandate_with_a_forged_role(
    creds: dict[str, Credential],
    pki: DevPki,
    trust: TrustStore,
    pki_now: dt.datetime,
    specialist: Clinician,
) -> None:
    forged = dataclasses.replace(specialist, role_code="01.099")
    m = _signed_by(creds["specialist"], forged, pki, pki_now)
    with pytest.raises(MandateError, match="role differs"):
        _check(m, pki, trust, pki_now)
    # the stored record claims another role than the (genuine) token
    genuine = _signed_by(creds["specialist"], specialist, pki, pki_now)
    with pytest.raises(MandateError, match="role differs"):
        _check(dataclasses.replace(genuine, mandating=forged), pki, trust, pki_now)


def _register(credential: Credential, now: dt.datetime, **kw: object) -> Mandate:
    values: dict[str, object] = {
        "name": "x",
        "mandated_id": "900000012",
        "schedules": ["card"],
        "valid_from": now,
        "valid_until": now + dt.timedelta(days=1),
        "now": now,
    }
    values.update(kw)
    return register_mandate(credential, **values)  # type: ignore[arg-type]


def test_only_a_card_z_pass_registers(creds: dict[str, Credential], pki_now: dt.datetime) -> None:
    with pytest.raises(MandateError, match="card type Z") as info:
        _register(creds["assistant"], pki_now)
    assert info.value.context["card_type"] == "N"


@pytest.mark.parametrize("schedules", [[], [""], [" card"], ["card", ""]])
def test_register_needs_schedule_ids(
    creds: dict[str, Credential], pki_now: dt.datetime, schedules: list[str]
) -> None:
    with pytest.raises(MandateError, match="schedule"):
        _register(creds["specialist"], pki_now, schedules=schedules)


def test_register_validates_the_pass_against_the_trust(
    creds: dict[str, Credential], trust: TrustStore, pki_now: dt.datetime
) -> None:
    assert _register(creds["specialist"], pki_now, trust=trust).token_xml
    later = pki_now + dt.timedelta(days=800)  # the pass has expired by then
    with pytest.raises(MandateError, match="not valid for signing") as info:
        _register(creds["specialist"], later, trust=trust)
    assert info.value.context["certificate"] == "expired"
    other = TrustStore([creds["foreign"].chain[-1]])  # the foreign CA only
    with pytest.raises(MandateError, match="not valid for signing") as info:
        _register(creds["specialist"], pki_now, trust=other)
    assert info.value.context["certificate"] == "untrusted"
