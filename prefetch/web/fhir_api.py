"""The FHIR R4 API for the EPD under `/fhir` (Nictiz MP9 3.0), as a FastAPI router.

    GET /fhir/metadata                      CapabilityStatement (no token needed)
    GET /fhir/MedicationDispense?...        searchset Bundle (see `prefetch.fhir.search`)

Every request but `metadata` needs `Authorization: Bearer <token>` with an active token
from `prefetch api-token create NAME`: without one, or with an unknown or revoked one, the
answer is 401 with an OperationOutcome. Every search is a read of one patient's data and
is audited (NEN 7513) before the answer leaves, under the token's name; when the audit row
cannot be written the answer is 503, never unaudited data.

The desk app mounts this router: `app.include_router(fhir_router(engine, clock=...))`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from prefetch.clock import SYSTEM_CLOCK
from prefetch.errors import PrefetchError, StoreUnavailableError
from prefetch.fhir.bundle import searchset_bundle
from prefetch.fhir.mapping import dispense_resources
from prefetch.fhir.search import SearchError, parse_search
from prefetch.ports import Clock
from prefetch.store.api_tokens import ApiTokens
from prefetch.store.audit import AuditLog
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.records import AuditAction, AuditEvent

FHIR_JSON = "application/fhir+json"
SOURCE_SYSTEM = "prefetch/fhir-api"


def _fhir(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


def _outcome(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return _fhir(body, status, headers)


def _capability(now: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now,
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "prefetch: LSP medication dispenses (Nictiz MP9 3.0)"},
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [{"text": "Bearer token (prefetch api-token create NAME)"}]
                },
                "resource": [
                    {
                        "type": "MedicationDispense",
                        "interaction": [{"code": "search-type"}],
                        "searchInclude": ["MedicationDispense:medication"],
                        "searchRevInclude": ["Provenance:target"],
                        "searchParam": [
                            {"name": "patient.identifier", "type": "token"},
                            {"name": "category", "type": "token"},
                            {"name": "whenhandedover", "type": "date"},
                        ],
                    }
                ],
            }
        ],
    }


def fhir_router(engine: Engine, *, clock: Clock = SYSTEM_CLOCK) -> APIRouter:
    """The `/fhir` routes on the database behind `engine`."""
    router = APIRouter(prefix="/fhir")
    tokens = ApiTokens(engine)
    dispenses = DispenseRepository(engine)
    audit = AuditLog(engine)
    challenge = {"WWW-Authenticate": 'Bearer realm="prefetch-fhir"'}

    def holder(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return tokens.holder(token.strip())

    @router.get("/metadata")
    def metadata() -> Response:
        return _fhir(_capability(clock.now().isoformat()))

    @router.get("/MedicationDispense")
    def search_dispenses(request: Request) -> Response:
        try:
            name = holder(request)
        except PrefetchError:
            return _outcome(503, "transient", "token store unavailable")
        if name is None:
            return _outcome(401, "login", "a valid bearer token is required", challenge)
        try:
            search = parse_search(list(request.query_params.multi_items()))
        except SearchError as exc:
            return _outcome(400, "invalid", str(exc))
        now = clock.now()
        try:
            stored = dispenses.for_patient(search.bsn)
            matches, included = [], []
            for item in stored:
                mapped = dispense_resources(item.dispense, item.provenance, item.patient_bsn)
                hits = [r for r in (mapped.dispense, mapped.agreement) if search.matches(r)]
                matches.extend(hits)
                if hits and search.include_medication:
                    included.append(mapped.medication)
                if hits and search.include_provenance:
                    included.append(mapped.provenance)
            audit.append(
                AuditEvent(
                    event_id=uuid.uuid4().hex,
                    event_type="fhir_search",
                    action=AuditAction.READ,
                    occurred_at=now,
                    user_id=name,
                    user_role="api-client",
                    patient_bsn=search.bsn,
                    object_detail={
                        "resource": "MedicationDispense",
                        "category": ",".join(request.query_params.getlist("category")) or None,
                        "whenhandedover": " ".join(request.query_params.getlist("whenhandedover"))
                        or None,
                        "matches": len(matches),
                        "included": len(included),
                    },
                    source_system=SOURCE_SYSTEM,
                    outcome="success",
                )
            )
        except StoreUnavailableError:
            return _outcome(503, "transient", "database unavailable; try again")
        base = str(request.base_url).rstrip("/") + "/fhir"
        bundle = searchset_bundle(matches, included, base=base, self_url=str(request.url), now=now)
        return _fhir(bundle)

    return router
