"""The desk's pages (GET): worklist, patient, audit view with its exports, accounts.

Opening a patient page or an audit view writes an audit row under the signed-in user.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from prefetch.audit_report import audit_bundle, audit_csv
from prefetch.domain.localtime import AMSTERDAM
from prefetch.store.desk_users import DeskRole, DeskUser
from prefetch.store.records import AuditAction
from prefetch.web.app import desk_of, render
from prefetch.web.audit_export import audit_rows
from prefetch.web.auth import Forbidden, require_role, signed_in
from prefetch.web.labels import REFETCH_BLOCKED, Status
from prefetch.web.patient import PatientView
from prefetch.web.seams import Actor, audit_for_patient, objection_recorded, record_access

SignedIn = Annotated[DeskUser, Depends(signed_in)]


class NotFound(Exception):
    pass


def actor_for(request: Request, user: DeskUser) -> Actor:
    desk = desk_of(request)
    mandate = desk.mandates.get(user.mandate_id) if user.mandate_id else None
    return Actor(user, mandate, request.client.host if request.client else None)


def _day(value: str | None, request: Request) -> dt.date:
    desk = desk_of(request)
    if value:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    tomorrow = desk.clock().astimezone(AMSTERDAM).date() + dt.timedelta(days=1)
    days = desk.worklists.days(tomorrow, limit=1)
    return days[0] if days else tomorrow


def _status(value: str | None) -> Status | None:
    try:
        return Status(value) if value else None
    except ValueError:
        return None


def not_found(request: Request) -> Response:
    return render(request, "notfound.html", {}, 404)


def _patient(request: Request, item_id: int) -> PatientView | None:
    desk = desk_of(request)
    return desk.patients.view(item_id, now=desk.clock())


def pages_router() -> APIRouter:
    router = APIRouter()

    @router.get("/werklijst", response_class=HTMLResponse)
    def worklist(
        request: Request,
        user: SignedIn,
        dag: str | None = None,
        poli: str | None = None,
        status: str | None = None,
    ) -> Response:
        desk = desk_of(request)
        day = _day(dag, request)
        view = desk.worklists.worklist(
            day, poli=poli or None, status=_status(status), slots=desk.slots(day)
        )
        days = sorted(set(desk.worklists.days(day)) | {day})
        return render(request, "worklist.html", {"w": view, "days": days, "statuses": Status})

    @router.get("/patienten/{item_id}", response_class=HTMLResponse)
    def patient(request: Request, user: SignedIn, item_id: int) -> Response:
        desk = desk_of(request)
        view = _patient(request, item_id)
        if view is None:
            return not_found(request)
        actor = actor_for(request, user)
        if view.bsn:
            record_access(
                desk.engine,
                actor.event(
                    "record_view",
                    AuditAction.READ,
                    bsn=view.bsn,
                    detail={"page": "patient", "item_id": item_id},
                    outcome="success",
                    now=desk.clock(),
                ),
            )
        objected = bool(view.bsn) and objection_recorded(desk.engine, view.bsn or "")
        can_refetch = (
            desk.refetch is not None
            and view.bsn is not None
            and view.skip_reason not in REFETCH_BLOCKED
            and not objected
        )
        context = {
            "p": view,
            "objected": objected,
            "can_refetch": can_refetch,
            "refetch_available": desk.refetch is not None,
            "has_mandate": actor.mandate is not None,
            "can_audit": user.role.at_least(DeskRole.POLIMANAGER),
        }
        return render(request, "patient.html", context)

    def _audit_view(request: Request, user: DeskUser, item_id: int, fmt: str) -> Response:
        require_role(user, DeskRole.POLIMANAGER)
        desk = desk_of(request)
        view = _patient(request, item_id)
        if view is None or view.bsn is None:
            return not_found(request)
        events = audit_for_patient(desk.engine, view.bsn)
        record_access(
            desk.engine,
            actor_for(request, user).event(
                "audit_view" if fmt == "html" else "audit_export",
                AuditAction.READ,
                bsn=view.bsn,
                detail={"page": "audit", "format": fmt, "item_id": item_id},
                outcome="success",
                now=desk.clock(),
            ),
        )
        name = f"audit-{view.patient_local_id}"
        if fmt == "csv":
            return Response(
                audit_csv(events),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if fmt == "fhir":
            return JSONResponse(
                audit_bundle(events, now=desk.clock()),
                media_type="application/fhir+json",
                headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
            )
        return render(request, "audit.html", {"p": view, "rows": audit_rows(events)})

    @router.get("/patienten/{item_id}/audit", response_class=HTMLResponse)
    def audit(request: Request, user: SignedIn, item_id: int) -> Response:
        return _audit_view(request, user, item_id, "html")

    @router.get("/patienten/{item_id}/audit.csv")
    def audit_csv_export(request: Request, user: SignedIn, item_id: int) -> Response:
        return _audit_view(request, user, item_id, "csv")

    @router.get("/patienten/{item_id}/audit.json")
    def audit_fhir_export(request: Request, user: SignedIn, item_id: int) -> Response:
        return _audit_view(request, user, item_id, "fhir")

    @router.get("/beheer/gebruikers", response_class=HTMLResponse)
    def accounts(request: Request, user: SignedIn) -> Response:
        require_role(user, DeskRole.ADMINISTRATOR)
        return render(
            request,
            "accounts.html",
            {"accounts": desk_of(request).users.all(), "roles": DeskRole, "error": None},
        )

    return router


__all__ = ["Forbidden", "actor_for", "pages_router"]
