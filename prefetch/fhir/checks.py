"""Our checks of the MP9 constraints that the generic R4 models do not check.

`mp9_problems(resource)` returns one line per broken rule (empty when the resource
passes): the fixed category per profile, at most one performer identified by URA, the
patient by BSN, the pharmaceutical-treatment identifier, a status from the R4 value set,
G-Standaard codings on the Medication, UCUM quantities, `meta.source` present. Used by
the tests on every resource the API or `prefetch fhir convert` returns, and by
`prefetch fhir convert --check`.
"""

from __future__ import annotations

from prefetch.fhir import systems as s
from prefetch.fhir.quantities import Json

_DISPENSE_STATUS = frozenset(
    {
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "declined",
        "unknown",
    }
)
_CATEGORY = {s.PROFILE_DISPENSE: s.CATEGORY_DISPENSE, s.PROFILE_AGREEMENT: s.CATEGORY_AGREEMENT}
_PRODUCT_URIS = frozenset(s.oid_uri(o) for o in s.PRODUCT_SYSTEMS)


def mp9_problems(resource: Json) -> list[str]:
    kind = resource.get("resourceType")
    if kind == "MedicationDispense":
        return _dispense(resource)
    if kind == "Medication":
        return _medication(resource)
    if kind == "Provenance":
        return _provenance(resource)
    return [f"unexpected resource type {kind}"]


def _dispense(r: Json) -> list[str]:
    problems: list[str] = []
    profiles = r.get("meta", {}).get("profile", [])
    profile = next((p for p in profiles if p in _CATEGORY), None)
    if profile is None:
        return ["MedicationDispense without an MP9 profile"]
    want = _CATEGORY[profile]
    category = r.get("category")
    codings = category.get("coding", []) if isinstance(category, dict) else []
    codes = [(c.get("system"), c.get("code")) for c in codings]
    if (s.SNOMED, want) not in codes:
        problems.append(f"category must hold SNOMED {want} for {profile}")
    if r.get("status") not in _DISPENSE_STATUS:
        problems.append(f"status {r.get('status')!r} not in the R4 value set")
    if profile == s.PROFILE_AGREEMENT and r.get("status") != "unknown":
        problems.append("an administration agreement has status unknown")
    performers = r.get("performer", [])
    if len(performers) > 1:
        problems.append("more than one performer")
    for p in performers:
        if p.get("actor", {}).get("identifier", {}).get("system") != s.URA:
            problems.append("performer not identified by URA")
    if r.get("subject", {}).get("identifier", {}).get("system") != s.BSN:
        problems.append("subject not identified by BSN")
    treatment = [e for e in r.get("extension", []) if e.get("url") == s.EXT_TREATMENT_ID]
    if len(treatment) != 1 or not treatment[0].get("valueIdentifier", {}).get("value"):
        problems.append("exactly one pharmaceutical-treatment identifier required")
    if not r.get("identifier"):
        problems.append("identifier required")
    if "medicationReference" not in r:
        problems.append("medicationReference required")
    if not r.get("meta", {}).get("source"):
        problems.append("meta.source (the pharmacy) required")
    for field in ("quantity", "daysSupply"):
        if field in r and r[field].get("system") != s.UCUM:
            problems.append(f"{field} must be UCUM")
    if profile == s.PROFILE_DISPENSE and "dosageInstruction" in r:
        problems.append("the dosage belongs to the administration agreement")
    if profile == s.PROFILE_AGREEMENT and "whenHandedOver" in r:
        problems.append("an administration agreement is not handed over")
    return problems


def _medication(r: Json) -> list[str]:
    code = r.get("code", {})
    systems = {c.get("system") for c in code.get("coding", [])}
    if systems - _PRODUCT_URIS:
        return [f"medication coded outside the G-Standaard: {sorted(systems - _PRODUCT_URIS)}"]
    if not systems and not code.get("text"):
        return ["medication needs a G-Standaard coding or a text"]
    return []


def _provenance(r: Json) -> list[str]:
    problems = []
    if not r.get("target"):
        problems.append("provenance without target")
    if not any(e.get("role") == "source" for e in r.get("entity", [])):
        problems.append("provenance names no LSP message or query")
    return problems
