"""The desk's actions (POST, CSRF-checked): re-fetch now, record an objection, accounts.

Each action is audited under the signed-in user and their mandate, refused or not.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from prefetch.errors import InvalidValueError
from prefetch.store.desk_users import DeskRole
from prefetch.store.records import AuditAction
from prefetch.web.app import checked_form, desk_of, render
from prefetch.web.auth import require_role, session_of
from prefetch.web.labels import REFETCH_BLOCKED, skip_label
from prefetch.web.pages import SignedIn, actor_for, not_found
from prefetch.web.seams import objection_recorded, record_access, record_objection


def _back(request: Request, item_id: int, message: str) -> Response:
    session_of(request).flash = message
    return RedirectResponse(f"/patienten/{item_id}", status_code=303)


def actions_router() -> APIRouter:
    router = APIRouter()

    @router.post("/patienten/{item_id}/opnieuw-ophalen")
    async def refetch(request: Request, user: SignedIn, item_id: int) -> Response:
        await checked_form(request)
        desk = desk_of(request)
        found = desk.patients.item(item_id)
        if found is None:
            return not_found(request)
        item, run = found
        actor = actor_for(request, user)
        refusal = None
        if desk.refetch is None:
            refusal = "Opnieuw ophalen is op deze desk niet ingesteld (geen LSP-verbinding)."
        elif item.bsn is None or item.skip_reason in REFETCH_BLOCKED:
            refusal = f"Opnieuw ophalen kan niet: {skip_label(item.skip_reason)}."
        elif objection_recorded(desk.engine, item.bsn):
            refusal = "Opnieuw ophalen kan niet: de patiënt heeft bezwaar gemaakt."
        elif actor.mandate is None:
            refusal = "Opnieuw ophalen kan niet: uw account heeft geen mandaat."
        if refusal is not None or desk.refetch is None:
            if item.bsn:
                record_access(
                    desk.engine,
                    actor.event(
                        "refetch",
                        AuditAction.EXECUTE,
                        bsn=item.bsn,
                        detail={"item_id": item_id},
                        outcome="denied",
                        now=desk.clock(),
                    ),
                )
            return _back(request, item_id, refusal or "")
        # the LSP answer takes seconds: wait for it off the event loop
        result = await run_in_threadpool(desk.refetch, item, run)
        record_access(
            desk.engine,
            actor.event(
                "refetch",
                AuditAction.EXECUTE,
                bsn=item.bsn,
                detail={"item_id": item_id, "run_id": result.run_id},
                outcome="success" if result.ok else "failed",
                now=desk.clock(),
            ),
        )
        newest = desk.patients.latest_item_for(item.patient_local_id, run.clinic_day)
        return _back(request, newest or item_id, result.message)

    @router.post("/patienten/{item_id}/bezwaar")
    async def objection(request: Request, user: SignedIn, item_id: int) -> Response:
        form = await checked_form(request)
        desk = desk_of(request)
        found = desk.patients.item(item_id)
        if found is None:
            return not_found(request)
        item, _run = found
        if item.bsn is None:
            return _back(request, item_id, "Bezwaar vastleggen kan niet: geen BSN bekend.")
        if form.get("bevestig") != "ja":
            return _back(request, item_id, "Bezwaar niet vastgelegd: vink de bevestiging aan.")
        record_objection(desk.engine, actor_for(request, user), item.bsn, now=desk.clock())
        return _back(
            request,
            item_id,
            "Bezwaar vastgelegd: deze patiënt wordt niet meer opgevraagd bij het LSP.",
        )

    _account_actions(router)
    return router


def _account_actions(router: APIRouter) -> None:
    @router.post("/beheer/gebruikers")
    async def add_account(request: Request, user: SignedIn) -> Response:
        form = await checked_form(request)
        require_role(user, DeskRole.ADMINISTRATOR)
        desk = desk_of(request)
        try:
            desk.users.add(
                form.get("gebruikersnaam", ""),
                display_name=form.get("naam", ""),
                role=DeskRole(form.get("rol", "assistant")),
                password=form.get("wachtwoord") or None,
                mandate_id=form.get("mandaat") or None,
                now=desk.clock(),
            )
        except (InvalidValueError, ValueError) as exc:
            message = exc.message if isinstance(exc, InvalidValueError) else "onbekende rol"
            context = {"accounts": desk.users.all(), "roles": DeskRole, "error": message}
            return render(request, "accounts.html", context, 400)
        session_of(request).flash = "Account aangemaakt."
        return RedirectResponse("/beheer/gebruikers", status_code=303)

    @router.post("/beheer/gebruikers/{username}/status")
    async def account_state(request: Request, user: SignedIn, username: str) -> Response:
        form = await checked_form(request)
        require_role(user, DeskRole.ADMINISTRATOR)
        desk = desk_of(request)
        if username == user.username:
            session_of(request).flash = "U kunt uw eigen account niet uitschakelen."
            return RedirectResponse("/beheer/gebruikers", status_code=303)
        try:
            desk.users.set_disabled(username, disabled=form.get("actief") != "ja", now=desk.clock())
        except InvalidValueError:
            return not_found(request)
        session_of(request).flash = "Account bijgewerkt."
        return RedirectResponse("/beheer/gebruikers", status_code=303)
