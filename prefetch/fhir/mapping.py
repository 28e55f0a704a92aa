"""One stored dispense to the Nictiz MP9 3.0 resources the EPD reads (pure).

Each 6.12 dispense becomes, as Nictiz's own conversion maps it:

- a `MedicationDispense` with profile mp-MedicationDispense, category SNOMED 373784005,
  the dispense's own id (`urn:oid:<root>` | `<extension>`), the quantity (UCUM, with the
  G-Standaard unit as translation), the days supply in days, and `whenHandedOver`;
- an administration agreement: a `MedicationDispense` with profile
  mp-AdministrationAgreement, category 422037009, status `unknown`, id
  `1.3.6.1.4.1.58606.1.1.<root>` | `<extension>`, carrying the dosage and the dose text,
  its agreement date approximated by the dispense date (as Nictiz does);
- both sharing the pharmaceutical-treatment identifier: PRK code, else HPK code, else
  the dispense id under `1.3.6.1.4.1.58606.1.2.<root>` (Nictiz MP-572);
- a `Medication` (mp-PharmaceuticalProduct) coded in ZI, HPK, PRK, GPK (`urn:oid:`), or
  a magistral product with its ingredients;
- a `Provenance` marking the two as external data: the pharmacy as author, the
  responsible clinician under whose name the LSP was asked, and the LSP item message,
  batch message and query ids as source entities. `meta.source` of each resource names
  the pharmacy (`urn:oid:2.16.528.1.1007.3.3.<URA>`, the URA's own OID node).

**whenHandedOver** is the 6.12 `medicationDispenseEvent/effectiveTime/@value`: the moment
the pharmacy handed the medication over (date, or date and time when the pharmacy sent
one). The `effectiveTime/low|high` of some pharmacy systems is the clinical period, not
the hand-over, and goes to the agreement's period of use instead.

Resource ids are stable hashes of the dispense id (and of the product's codes for the
`Medication`), so the API and `prefetch fhir convert` give the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prefetch.domain import oids
from prefetch.domain.dispense import Dispense, DispenseProvenance, Product
from prefetch.fhir import systems as s
from prefetch.fhir.dosage import dosage_json
from prefetch.fhir.quantities import (
    Json,
    concept,
    days,
    fhir_date,
    fhir_datetime,
    id_from_key,
    identifier,
    quantity,
)

_STATUS = {
    "completed": "completed",
    "active": "in-progress",
    "aborted": "stopped",
    "suspended": "on-hold",
    "cancelled": "cancelled",
    "nullified": "entered-in-error",
}


@dataclass(frozen=True, slots=True)
class DispenseResources:
    """What one dispense maps to."""

    medication: Json
    dispense: Json  # mp-MedicationDispense
    agreement: Json  # mp-AdministrationAgreement
    provenance: Json


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def treatment_identifier(dispense: Dispense) -> Json:
    """The pharmaceutical-treatment identifier as Nictiz derives it (MP-572)."""
    code = dispense.product_code
    if code is not None:
        prk = code.in_system(oids.PRK)
        if prk is not None and prk.code:
            return {"system": s.oid_uri(s.TREATMENT_FROM_PRK), "value": prk.code}
        hpk = code.in_system(oids.HPK)
        if hpk is not None and hpk.code:
            return {"system": s.oid_uri(s.TREATMENT_FROM_HPK), "value": hpk.code}
    root, extension = dispense.key
    return {"system": s.oid_uri(s.TREATMENT_FROM_DISPENSE + root), "value": extension}


def agreement_identifier(dispense: Dispense) -> Json:
    root, extension = dispense.key
    return {"system": s.oid_uri(s.AGREEMENT_ID_PREFIX + root), "value": extension}


def source_uri(prov: DispenseProvenance) -> str | None:
    """`meta.source`: the pharmacy's URA node, else its AORTA application id."""
    if prov.pharmacy_ura:
        return s.oid_uri(f"{oids.URA}.{prov.pharmacy_ura}")
    if prov.source_application_id:
        return s.oid_uri(f"{oids.AORTA_APPLICATION}.{prov.source_application_id}")
    return None


def _meta(profile: str, prov: DispenseProvenance) -> Json:
    meta: Json = {"profile": [profile]}
    source = source_uri(prov)
    if source:
        meta["source"] = source
    return meta


def _category(code: str) -> Json:
    """`MedicationDispense.category` (0..1 in R4), fixed per profile."""
    return {"coding": [{"system": s.SNOMED, "code": code, "display": s.CATEGORY_DISPLAY[code]}]}


def _pharmacy(dispense: Dispense, prov: DispenseProvenance) -> Json | None:
    ura = prov.pharmacy_ura or dispense.pharmacy_ura
    if not ura:
        return None
    ref: Json = {"type": "Organization", "identifier": {"system": s.URA, "value": ura}}
    name = prov.pharmacy_name or (
        dispense.responsible.organization_name if dispense.responsible else None
    )
    if name:
        ref["display"] = name
    return ref


def _patient(bsn: str) -> Json:
    return {"type": "Patient", "identifier": {"system": s.BSN, "value": bsn}}


def medication_json(product: Product | None) -> Json:
    """A `Medication` (mp-PharmaceuticalProduct); its id hashes what identifies it."""
    med: Json = {"resourceType": "Medication", "meta": {"profile": [s.PROFILE_PRODUCT]}}
    code = concept(product.code) if product else None
    if product is not None:
        if code is None:
            code = {}
        name = product.display_name
        if name and "text" not in code:
            code["text"] = name
        if code:
            med["code"] = code
        form = concept(product.form)
        if form:
            med["form"] = form
        ingredients = []
        for ing in product.ingredients:
            item = concept(ing.code)
            if item is None:
                continue
            entry: Json = {"itemCodeableConcept": item, "isActive": ing.active}
            num, den = quantity(ing.numerator), quantity(ing.denominator)
            if num and den:
                entry["strength"] = {"numerator": num, "denominator": den}
            ingredients.append(entry)
        if ingredients:
            med["ingredient"] = ingredients
    key = [f"{c['system']}|{c['code']}" for c in (code or {}).get("coding", [])]
    if not key:  # magistral or uncoded: the product as described identifies it
        key = [repr(product)]
    med["id"] = "med-" + _hash(*key)
    return med


def dispense_resources(dispense: Dispense, prov: DispenseProvenance, bsn: str) -> DispenseResources:
    """The MP9 resources for one dispense of the patient with this BSN."""
    root, extension = dispense.key
    key = _hash(root, extension)
    medication = medication_json(dispense.product)
    med_ref: Json = {"reference": f"Medication/{medication['id']}"}
    name = dispense.product.display_name if dispense.product else None
    if name:
        med_ref["display"] = name
    treatment = {"url": s.EXT_TREATMENT_ID, "valueIdentifier": treatment_identifier(dispense)}
    patient = _patient(bsn)
    pharmacy = _pharmacy(dispense, prov)
    performer = [{"actor": pharmacy}] if pharmacy else None
    handed_over = fhir_datetime(dispense.dispensed_time, dispense.dispensed_on)

    mve: Json = {
        "resourceType": "MedicationDispense",
        "id": f"mve-{key}",
        "meta": _meta(s.PROFILE_DISPENSE, prov),
        "extension": [treatment],
        "identifier": [identifier(dispense.id)],
        "status": _STATUS.get(dispense.status or "", "unknown"),
        "category": _category(s.CATEGORY_DISPENSE),
        "medicationReference": med_ref,
        "subject": patient,
    }
    if performer:
        mve["performer"] = performer
    amount = quantity(dispense.quantity)
    if amount:
        mve["quantity"] = amount
    supply = dispense.expected_use_days
    if supply is not None:
        mve["daysSupply"] = days(supply)
    if handed_over:
        mve["whenHandedOver"] = handed_over

    ta: Json = {
        "resourceType": "MedicationDispense",
        "id": f"ta-{key}",
        "meta": _meta(s.PROFILE_AGREEMENT, prov),
        "extension": [treatment],
        "identifier": [agreement_identifier(dispense)],
        "status": "unknown",
        "category": _category(s.CATEGORY_AGREEMENT),
        "medicationReference": med_ref,
        "subject": patient,
    }
    if handed_over:
        ta["extension"].append({"url": s.EXT_AGREEMENT_DATE, "valueDateTime": handed_over})
    texts = [d.text for d in dispense.dosages if d.text]
    if texts:
        ta["extension"].append({"url": s.EXT_RENDERED_DOSAGE, "valueMarkdown": "\n".join(texts)})
    period = {
        k: fhir_date(v)
        for k, v in (("start", dispense.period_start), ("end", dispense.period_end))
        if v is not None
    }
    if period:
        ta["extension"].append({"url": s.EXT_PERIOD_OF_USE, "valuePeriod": period})
    if performer:
        ta["performer"] = performer
    if dispense.dosages:
        ta["dosageInstruction"] = [
            dosage_json(d, i) for i, d in enumerate(dispense.dosages, start=1)
        ]
    return DispenseResources(
        medication=medication,
        dispense=mve,
        agreement=ta,
        provenance=_provenance(key, prov, pharmacy),
    )


def _provenance(key: str, prov: DispenseProvenance, pharmacy: Json | None) -> Json:
    agents: list[Json] = []
    if pharmacy:
        agents.append({"type": _participant("author", "Author"), "who": pharmacy})
    if prov.responsible_uzi:
        who: Json = {
            "type": "Practitioner",
            "identifier": {"system": s.UZI_PERSON, "value": prov.responsible_uzi},
        }
        if prov.responsible_name:
            who["display"] = prov.responsible_name
        agents.append({"type": _participant("performer", "Performer"), "who": who})
    if not agents:  # Provenance.agent is 1..*: the pharmacy system then
        agents.append({"type": _participant("author", "Author"), "who": {"display": "apotheek"}})
    entities = []
    for label, raw in (
        ("LSP-antwoord (QURX_IN990113NL)", prov.item_message_id),
        ("LSP-batch (MCCI_IN200101)", prov.batch_message_id),
        ("vraag (queryId)", prov.query_id),
    ):
        ident = id_from_key(raw)
        if ident is not None and ident.root:
            entities.append(
                {"role": "source", "what": {"identifier": identifier(ident), "display": label}}
            )
    out: Json = {
        "resourceType": "Provenance",
        "id": f"prov-{key}",
        "target": [
            {"reference": f"MedicationDispense/mve-{key}"},
            {"reference": f"MedicationDispense/ta-{key}"},
        ],
        "recorded": prov.fetched_at.isoformat(),
        "agent": agents,
    }
    if entities:
        out["entity"] = entities
    source = source_uri(prov)
    if source:
        out["meta"] = {"source": source}
    return out


def _participant(code: str, display: str) -> Json:
    return {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": code,
                "display": display,
            }
        ]
    }
