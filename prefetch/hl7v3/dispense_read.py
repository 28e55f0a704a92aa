"""Read a `medicationDispenseEvent` (CMET COCT_MT924000NL02) into a `Dispense`, leniently.

Everything AORTA.md section 3 lists is kept; a nullFlavor stays a value; an element the
schema does not allow at that place (e.g. `support2` out of order) is read anyway and noted
in `Dispense.deviations`. Only a dispense without an id root cannot become a `Dispense`
(the id is the deduplication key); the caller records that at message level.
"""

from __future__ import annotations

from lxml import etree

from prefetch.domain.coded import Code, Identifier, Quantity
from prefetch.domain.dispense import Dispense, Dosage, Ingredient, Party, Product
from prefetch.hl7v3.hl7read import (
    Deviations,
    code,
    identifier,
    one,
    quantity,
    quantity_range,
    scan,
    text_of,
    timing,
)
from prefetch.hl7v3.read import parse_date

_INFRA = ("realmCode", "typeId", "templateId")
# Elements the CMET allows that `Dispense` has no place for: recorded as "not kept: ..."
# in `Dispense.deviations`, so that nothing is dropped silently.
_NOT_KEPT_EVENT = ("code", "text", "destination")
_NOT_KEPT_KIND = ("lotNumberText", "asContent")
_NOT_KEPT_RX = ("text", "confidentialityCode", "subject", "reason", "reference")
_NOT_KEPT_MAR = (
    "id",
    "priorityCode",
    "approachSiteCode",
    "rateQuantity",
    "doseCheckQuantity",
    "support1",
)


def _order(*names: str) -> dict[str, int]:
    out = dict.fromkeys(_INFRA, 0)
    out.update({n: i + 1 for i, n in enumerate(names)})
    return out


_EVENT = _order(
    "id",
    "code",
    "text",
    "statusCode",
    "effectiveTime",
    "quantity",
    "expectedUseTime",
    "destination",
    "performer",
    "product",
    "responsibleParty",
)
_PERFORMER = _order("assignedPerson")
_ASSIGNED_PERSON = _order("id", "representedOrganization")
_ORG = _order("id", "name", "addr")
_PRODUCT = _order("dispensedMedication")
_DISPENSED = _order("MedicationKind", "directTargetOf", "therapeuticAgentOf")
_KIND = {
    "code": 0,
    "desc": 1,
    "formCode": 2,
    "lotNumberText": 3,
    "activeIngredient": 4,
    "asContent": 5,
    "otherIngredient": 6,
    "templateId": 7,
}
_INGREDIENT = {
    "quantity": 0,
    "activeIngredientMaterialKind": 1,
    "ingredientMaterialKind": 1,
    "templateId": 2,
}
_MATERIAL = {"code": 0, "desc": 1, "templateId": 2}
_RATIO = {"numerator": 0, "denominator": 1}
_TARGET = _order("prescription")
_PRESCRIPTION = _order(
    "id", "text", "statusCode", "confidentialityCode", "subject", "author", "reason", "reference"
)
_AUTHOR = _order("time", "modeCode", "signatureCode", "signatureText", "AssignedPerson")
_AUTHOR_PERSON = {"id": 0, "code": 1}
_AGENT = _order("medicationAdministrationRequest")
_MAR = _order(
    "id",
    "text",
    "statusCode",
    "effectiveTime",
    "priorityCode",
    "routeCode",
    "approachSiteCode",
    "doseQuantity",
    "rateQuantity",
    "doseCheckQuantity",
    "maxDoseQuantity",
    "support2",
    "precondition",
    "support1",
)
_SUPPORT2 = _order("medicationAdministrationInstruction")
_PRECONDITION = _order("pauseQuantity", "observationEventCriterion")
_CODED_ACT = _order("code")
_RESPONSIBLE = _order("assignedCareProvider")
_CARE_PROVIDER = _order("id", "code", "representedOrganization")
_EXPECTED_USE = {"low": 0, "center": 1, "width": 2, "high": 3}
_EFFECTIVE = {"low": 0, "center": 1, "width": 2, "high": 3}


def read_dispense(ev: etree._Element) -> Dispense | None:
    """The `Dispense` in `ev`, or None when the event has no id root (unusable as a key)."""
    dev = Deviations()
    kids = scan(ev, _EVENT, "medicationDispenseEvent", dev)
    id_el = one(kids, "id")
    ident = identifier(id_el) if id_el is not None else Identifier(null_flavor="NI")
    if not ident.root:
        return None
    for required in (
        "statusCode",
        "effectiveTime",
        "quantity",
        "performer",
        "product",
        "responsibleParty",
    ):
        if required not in kids:
            dev.add(f"missing {required} in medicationDispenseEvent")
    _not_kept(kids, _NOT_KEPT_EVENT, "medicationDispenseEvent", dev)
    status_el = one(kids, "statusCode")
    dispensed_on = period_start = period_end = None
    dispensed_time: str | None = None
    eff = one(kids, "effectiveTime")
    if eff is not None:
        raw_value = eff.get("value")
        dispensed_on = _date(raw_value, "effectiveTime", dev)
        if raw_value is not None and dispensed_on is not None and len(raw_value.strip()) > 8:
            dispensed_time = raw_value.strip()
        ek = scan(eff, _EFFECTIVE, "effectiveTime", dev)
        low, high = one(ek, "low"), one(ek, "high")
        if low is not None:
            period_start = _date(low.get("value"), "effectiveTime/low", dev)
        if high is not None:
            period_end = _date(high.get("value"), "effectiveTime/high", dev)
    qty = one(kids, "quantity")
    expected = one(kids, "expectedUseTime")
    expected_use: Quantity | None = None
    if expected is not None:
        width = one(scan(expected, _EXPECTED_USE, "expectedUseTime", dev), "width")
        expected_use = quantity(width, dev) if width is not None else None
    product_el = one(kids, "product")
    product: Product | None = None
    dosages: tuple[Dosage, ...] = ()
    prescriber: Party | None = None
    prescription_id: Identifier | None = None
    if product_el is not None:
        med = one(scan(product_el, _PRODUCT, "product", dev), "dispensedMedication")
        if med is not None:
            product, dosages, prescriber, prescription_id = _medication(med, dev)
    performer_el = one(kids, "performer")
    responsible_el = one(kids, "responsibleParty")
    return Dispense(
        id=ident,
        status=status_el.get("code") if status_el is not None else None,
        dispensed_on=dispensed_on,
        period_start=period_start,
        period_end=period_end,
        quantity=quantity(qty, dev) if qty is not None else None,
        expected_use=expected_use,
        product=product,
        dosages=dosages,
        prescriber=prescriber,
        prescription_id=prescription_id,
        performer=_performer(performer_el, dev) if performer_el is not None else None,
        responsible=_responsible(responsible_el, dev) if responsible_el is not None else None,
        deviations=tuple(dev.items),
        dispensed_time=dispensed_time,
    )


def _not_kept(
    kids: dict[str, list[etree._Element]], names: tuple[str, ...], where: str, dev: Deviations
) -> None:
    for name in names:
        if name in kids:
            dev.add(f"not kept: {where}/{name}")


def _date(raw: str | None, where: str, dev: Deviations):  # type: ignore[no-untyped-def]
    if raw is None:
        return None
    value = parse_date(raw)
    if value is None:
        dev.add(f"not a date in {where}")
    return value


def _org(el: etree._Element | None, dev: Deviations) -> tuple[tuple[Identifier, ...], str | None]:
    if el is None:
        return (), None
    kids = scan(el, _ORG, "representedOrganization", dev)
    ids = tuple(identifier(i) for i in kids.get("id", ()))
    return ids, text_of(one(kids, "name"))


def _performer(el: etree._Element, dev: Deviations) -> Party:
    person = one(scan(el, _PERFORMER, "performer", dev), "assignedPerson")
    if person is None:
        return Party()
    kids = scan(person, _ASSIGNED_PERSON, "performer/assignedPerson", dev)
    org_ids, org_name = _org(one(kids, "representedOrganization"), dev)
    return Party(
        ids=tuple(identifier(i) for i in kids.get("id", ())),
        organization_ids=org_ids,
        organization_name=org_name,
    )


def _responsible(el: etree._Element, dev: Deviations) -> Party:
    provider = one(scan(el, _RESPONSIBLE, "responsibleParty", dev), "assignedCareProvider")
    if provider is None:
        return Party()
    kids = scan(provider, _CARE_PROVIDER, "responsibleParty/assignedCareProvider", dev)
    role_el = one(kids, "code")
    org_ids, org_name = _org(one(kids, "representedOrganization"), dev)
    return Party(
        ids=tuple(identifier(i) for i in kids.get("id", ())),
        role=code(role_el, dev) if role_el is not None else None,
        organization_ids=org_ids,
        organization_name=org_name,
    )


def _medication(
    med: etree._Element, dev: Deviations
) -> tuple[Product | None, tuple[Dosage, ...], Party | None, Identifier | None]:
    kids = scan(med, _DISPENSED, "dispensedMedication", dev)
    kind = one(kids, "MedicationKind")
    product = _product(kind, dev) if kind is not None else None
    target = one(kids, "directTargetOf")
    prescriber, prescription_id = _prescription(target, dev) if target is not None else (None, None)
    dosages = []
    for agent in kids.get("therapeuticAgentOf", ()):
        mar = one(scan(agent, _AGENT, "therapeuticAgentOf", dev), "medicationAdministrationRequest")
        if mar is not None:
            dosages.append(_dosage(mar, dev))
    return product, tuple(dosages), prescriber, prescription_id


def _prescription(
    target: etree._Element, dev: Deviations
) -> tuple[Party | None, Identifier | None]:
    rx = one(scan(target, _TARGET, "directTargetOf", dev), "prescription")
    if rx is None:
        return None, None
    rk = scan(rx, _PRESCRIPTION, "prescription", dev)
    _not_kept(rk, _NOT_KEPT_RX, "prescription", dev)
    rx_id = one(rk, "id")
    prescription_id = identifier(rx_id) if rx_id is not None else None
    author = one(rk, "author")
    if author is None:
        return None, prescription_id
    ak = scan(author, _AUTHOR, "prescription/author", dev)
    time_el = one(ak, "time")
    if time_el is not None and time_el.get("value"):
        dev.add("not kept: prescription/author/time")
    person = one(ak, "AssignedPerson")
    if person is None:
        return None, prescription_id
    pk = scan(person, _AUTHOR_PERSON, "prescription/author/AssignedPerson", dev)
    role = one(pk, "code")
    prescriber = Party(
        ids=tuple(identifier(i) for i in pk.get("id", ())),
        role=code(role, dev) if role is not None else None,
    )
    return prescriber, prescription_id


def _product(kind: etree._Element, dev: Deviations) -> Product:
    kids = scan(kind, _KIND, "MedicationKind", dev)
    _not_kept(kids, _NOT_KEPT_KIND, "MedicationKind", dev)
    code_el = one(kids, "code")
    form = one(kids, "formCode")
    ingredients: list[Ingredient] = []
    for name, active in (("activeIngredient", True), ("otherIngredient", False)):
        for ing in kids.get(name, ()):
            ik = scan(ing, _INGREDIENT, name, dev)
            numerator = denominator = None
            ratio = one(ik, "quantity")
            if ratio is not None:
                numerator, denominator = _ratio(ratio, dev)
            material = one(
                ik, "activeIngredientMaterialKind" if active else "ingredientMaterialKind"
            )
            mat_code = None
            if material is not None:
                mat_code = one(scan(material, _MATERIAL, "ingredient material", dev), "code")
            ingredients.append(
                Ingredient(
                    active=active,
                    code=code(mat_code, dev) if mat_code is not None else Code(null_flavor="NI"),
                    numerator=numerator,
                    denominator=denominator,
                )
            )
    return Product(
        code=code(code_el, dev) if code_el is not None else Code(null_flavor="NI"),
        description=text_of(one(kids, "desc")),
        ingredients=tuple(ingredients),
        form=code(form, dev) if form is not None else None,
    )


def _ratio(el: etree._Element, dev: Deviations) -> tuple[Quantity | None, Quantity | None]:
    kids = scan(el, _RATIO, "a ratio", dev)
    num, den = one(kids, "numerator"), one(kids, "denominator")
    return (
        quantity(num, dev) if num is not None else None,
        quantity(den, dev) if den is not None else None,
    )


def _dosage(mar: etree._Element, dev: Deviations) -> Dosage:
    kids = scan(mar, _MAR, "medicationAdministrationRequest", dev)
    _not_kept(kids, _NOT_KEPT_MAR, "medicationAdministrationRequest", dev)
    status = one(kids, "statusCode")
    eff = one(kids, "effectiveTime")
    route = one(kids, "routeCode")
    dose = one(kids, "doseQuantity")
    max_doses: list[Quantity] = []
    max_per: list[Quantity | None] = []
    for m in kids.get("maxDoseQuantity", ()):
        num, den = _ratio(m, dev)
        max_doses.append(num or Quantity(null_flavor="NI"))
        max_per.append(den)
    instructions = []
    for s in kids.get("support2", ()):
        instr = one(scan(s, _SUPPORT2, "support2", dev), "medicationAdministrationInstruction")
        if instr is not None:
            c = one(scan(instr, _CODED_ACT, "medicationAdministrationInstruction", dev), "code")
            if c is not None:
                instructions.append(code(c, dev))
    preconditions = []
    for p in kids.get("precondition", ()):
        pk = scan(p, _PRECONDITION, "precondition", dev)
        _not_kept(pk, ("pauseQuantity",), "precondition", dev)
        crit = one(pk, "observationEventCriterion")
        if crit is not None:
            c = one(scan(crit, _CODED_ACT, "observationEventCriterion", dev), "code")
            if c is not None:
                preconditions.append(code(c, dev))
    return Dosage(
        text=text_of(one(kids, "text")),
        status=status.get("code") if status is not None else None,
        timing=(timing(eff, dev),) if eff is not None else (),
        dose=quantity_range(dose, dev) if dose is not None else None,
        max_dose=tuple(max_doses),
        max_dose_per=tuple(max_per) if any(p is not None for p in max_per) else (),
        route=code(route, dev) if route is not None else None,
        instructions=tuple(instructions),
        preconditions=tuple(preconditions),
    )
