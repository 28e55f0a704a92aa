"""FHIR Bundles of mapped dispenses: `collection` (for `prefetch fhir convert`) and
`searchset` (the API's answer)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from prefetch.fhir.mapping import DispenseResources
from prefetch.fhir.quantities import Json


def _full_url(base: str, resource: Json) -> str:
    return f"{base.rstrip('/')}/{resource['resourceType']}/{resource['id']}"


def collection_bundle(mapped: Sequence[DispenseResources], *, base: str, now: dt.datetime) -> Json:
    """Every resource of every dispense once (medications shared by several dispenses
    appear once), in the order: medications, dispenses and agreements, provenance."""
    resources: list[Json] = []
    seen: set[str] = set()
    for m in mapped:
        if m.medication["id"] not in seen:
            seen.add(m.medication["id"])
            resources.append(m.medication)
    for m in mapped:
        resources.extend((m.dispense, m.agreement))
    resources.extend(m.provenance for m in mapped)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": now.isoformat(),
        "entry": [{"fullUrl": _full_url(base, r), "resource": r} for r in resources],
    }


def searchset_bundle(
    matches: Sequence[Json],
    included: Iterable[Json],
    *,
    base: str,
    self_url: str,
    now: dt.datetime,
) -> Json:
    """A searchset: `matches` with search.mode match (counted in `total`), then the
    included resources (mode include), each once."""
    entries = [
        {"fullUrl": _full_url(base, r), "resource": r, "search": {"mode": "match"}} for r in matches
    ]
    seen: set[tuple[str, str]] = set()
    for r in included:
        key = (r["resourceType"], r["id"])
        if key not in seen:
            seen.add(key)
            entries.append(
                {"fullUrl": _full_url(base, r), "resource": r, "search": {"mode": "include"}}
            )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now.isoformat()},
        "type": "searchset",
        "total": len(matches),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    }
