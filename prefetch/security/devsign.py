"""Sign a query with a development PKI, for `prefetch hl7 build-query --signed --pki DIR`.

Integrators use it to see the complete envelope as it would be sent and to verify it
independently (`xmlsec1 --verify`, see `tests/security/test_sec_tokens.py`). The transactietoken is
signed with the PKI's hospital server certificate. When the query's author is not its
overseer, a mandaattoken is needed: a stored one can be passed in, otherwise one is signed
on the spot with the PKI's specialist pass — which only works when that specialist is the
overseer (a dev convenience; production mandates are registered with `prefetch mandate
register`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefetch.errors import MandateError
from prefetch.hl7v3.aorta_settings import DEFAULT_SETTINGS, AortaSettings
from prefetch.hl7v3.params import QueryParams
from prefetch.security.mandates import register_mandate
from prefetch.security.pki import DevPki
from prefetch.security.wssec import secure_query


def signed_query_from_dev_pki(
    params: QueryParams,
    pki_dir: Path,
    passphrase: bytes,
    *,
    now: dt.datetime,
    settings: AortaSettings = DEFAULT_SETTINGS,
    mandate_token: bytes | None = None,
) -> bytes:
    """The complete SOAP envelope for `params`, signed with the dev PKI in `pki_dir`."""
    pki = DevPki.load(pki_dir)
    hospital = pki.hospital.load(passphrase)
    needs_mandate = params.author is None or (
        params.author.uzi_number != params.overseer.uzi_number
    )
    if needs_mandate and mandate_token is None:
        if params.overseer.uzi_number != pki.specialist.uzi_number:
            raise MandateError(
                "the overseer is not the dev PKI's specialist; pass a registered mandate",
                overseer_uzi=params.overseer.uzi_number,
            )
        mandatee = params.author.uzi_number if params.author else params.author_system_uzi
        mandate = register_mandate(
            pki.specialist.load(passphrase),
            name=params.overseer.name,
            mandated_id=mandatee or "",
            schedules=["dev"],
            valid_from=now - dt.timedelta(minutes=5),
            valid_until=now + dt.timedelta(days=1),
            now=now,
        )
        mandate_token = mandate.token_xml
    return secure_query(params, hospital, mandate_token=mandate_token, now=now, settings=settings)
