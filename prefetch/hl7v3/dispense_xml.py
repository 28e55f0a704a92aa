"""Build a `medicationDispenseEvent` (CMET COCT_MT924000NL02) from a `Dispense`.

Every field the `Dispense` holds is written, so that build-then-parse gives the same value.
Where the CMET requires an element the `Dispense` does not have (statusCode, quantity,
performer, prescription id), a `nullFlavor="NI"` placeholder is written. A value the CMET
cannot carry (a performer with two ids, a prescriber name) raises `InvalidValueError`
rather than being dropped.
"""

from __future__ import annotations

from lxml import etree

from prefetch.domain.coded import Code, Identifier, Quantity, QuantityRange, Timing
from prefetch.domain.dispense import Dispense, Dosage, Ingredient, Party, Product
from prefetch.errors import InvalidValueError
from prefetch.hl7v3.xmlbuild import (
    XSI_TYPE,
    cd,
    format_date,
    ii,
    pq,
    set_attr,
    sub,
    text_el,
)

_NI = Identifier(null_flavor="NI")


def build_dispense_event(parent: etree._Element, dispense: Dispense) -> etree._Element:
    """Append a `medicationDispenseEvent` for `dispense` to `parent` and return it."""
    ev = sub(parent, "medicationDispenseEvent", classCode="SPLY", moodCode="EVN")
    ii(ev, "id", dispense.id)
    _status(ev, dispense.status)
    eff = sub(ev, "effectiveTime")
    if dispense.dispensed_on is not None:
        day = format_date(dispense.dispensed_on)
        if dispense.dispensed_time is not None and not dispense.dispensed_time.startswith(day):
            raise InvalidValueError("dispensed_time must fall on dispensed_on")
        set_attr(eff, "value", dispense.dispensed_time or day)
    elif dispense.dispensed_time is not None:
        raise InvalidValueError("dispensed_time needs dispensed_on")
    if dispense.period_start is not None:
        sub(eff, "low", value=format_date(dispense.period_start))
    if dispense.period_end is not None:
        sub(eff, "high", value=format_date(dispense.period_end))
    if (
        dispense.dispensed_on is None
        and dispense.period_start is None
        and dispense.period_end is None
    ):
        set_attr(eff, "nullFlavor", "NI")
    pq(ev, "quantity", dispense.quantity or Quantity(null_flavor="NI"))
    if dispense.expected_use is not None:
        pq(sub(ev, "expectedUseTime"), "width", dispense.expected_use)
    _performer(ev, dispense.performer)
    _product(ev, dispense)
    _responsible(ev, dispense.responsible)
    return ev


def _status(parent: etree._Element, status: str | None) -> None:
    if status is None:
        sub(parent, "statusCode", nullFlavor="NI")
    else:
        sub(parent, "statusCode", code=status)


def _single(ids: tuple[Identifier, ...], what: str) -> Identifier:
    if not ids:
        return _NI
    if len(ids) > 1:
        raise InvalidValueError(f"{what} can carry one id only", count=len(ids))
    return ids[0]


def _organization(parent: etree._Element, party: Party, what: str, *, required: bool) -> None:
    if not party.organization_ids and party.organization_name is None:
        if required:
            org = sub(parent, "representedOrganization")
            ii(org, "id", _NI)
        return
    org = sub(parent, "representedOrganization")
    ii(org, "id", _single(party.organization_ids, f"{what} organisation"))
    if party.organization_name is not None:
        text_el(org, "name", party.organization_name)


def _performer(ev: etree._Element, party: Party | None) -> None:
    person = sub(sub(ev, "performer", typeCode="PRF"), "assignedPerson", classCode="ASSIGNED")
    if party is None:
        ii(person, "id", _NI)
        return
    if party.role is not None or party.name is not None:
        raise InvalidValueError("the dispense performer carries no role or name")
    ii(person, "id", _single(party.ids, "performer"))
    _organization(person, party, "performer", required=False)


def _responsible(ev: etree._Element, party: Party | None) -> None:
    provider = sub(
        sub(ev, "responsibleParty", typeCode="RESP"), "assignedCareProvider", classCode="ASSIGNED"
    )
    if party is None:
        party = Party()
    if party.name is not None:
        raise InvalidValueError("the responsible pharmacist carries no name in COCT_MT924000NL02")
    ii(provider, "id", _single(party.ids, "responsible party"))
    cd(provider, "code", party.role or Code(null_flavor="NI"))
    _organization(provider, party, "responsible party", required=True)


def _product(ev: etree._Element, dispense: Dispense) -> None:
    med = sub(sub(ev, "product", typeCode="PRD"), "dispensedMedication", classCode="DST")
    product = dispense.product or Product(code=Code(null_flavor="NI"))
    kind = sub(med, "MedicationKind", classCode="MMAT", determinerCode="KIND")
    cd(kind, "code", product.code)
    if product.description is not None:
        text_el(kind, "desc", product.description)
    if product.form is not None:
        cd(kind, "formCode", product.form)
    _ingredients(kind, product.ingredients)
    _prescription(med, dispense)
    for dosage in dispense.dosages:
        _dosage(sub(med, "therapeuticAgentOf"), dosage)


def _ingredients(kind: etree._Element, ingredients: tuple[Ingredient, ...]) -> None:
    seen_other = False
    for ing in ingredients:
        if ing.active and seen_other:
            raise InvalidValueError("active ingredients must come before other ingredients")
        seen_other = seen_other or not ing.active
        el = sub(kind, "activeIngredient" if ing.active else "otherIngredient")
        if ing.numerator is not None or ing.denominator is not None:
            _ratio(el, "quantity", ing.numerator, ing.denominator)
        material = sub(
            el, "activeIngredientMaterialKind" if ing.active else "ingredientMaterialKind"
        )
        cd(material, "code", ing.code)


def _ratio(
    parent: etree._Element, tag: str, numerator: Quantity | None, denominator: Quantity | None
) -> None:
    el = sub(parent, tag)
    pq(el, "numerator", numerator or Quantity(null_flavor="NI"), xsi_type="PQ")
    pq(el, "denominator", denominator or Quantity(null_flavor="NI"), xsi_type="PQ")


def _prescription(med: etree._Element, dispense: Dispense) -> None:
    rx = sub(
        sub(med, "directTargetOf", typeCode="DIR"),
        "prescription",
        classCode="SBADM",
        moodCode="RQO",
    )
    ii(rx, "id", dispense.prescription_id or _NI)
    sub(rx, "statusCode", nullFlavor="NI")
    prescriber = dispense.prescriber
    if prescriber is None:
        return
    if (
        prescriber.name is not None
        or prescriber.organization_ids
        or prescriber.organization_name is not None
    ):
        raise InvalidValueError("the prescriber carries ids and a role code only")
    author = sub(rx, "author", typeCode="AUT")
    sub(author, "time", nullFlavor="NI")
    person = sub(author, "AssignedPerson", classCode="ASSIGNED")
    for ident in prescriber.ids or (_NI,):
        ii(person, "id", ident)
    if prescriber.role is not None:
        cd(person, "code", prescriber.role)


def _dosage(parent: etree._Element, dosage: Dosage) -> None:
    req = sub(parent, "medicationAdministrationRequest", classCode="SBADM", moodCode="RQO")
    if dosage.text is not None:
        text_el(req, "text", dosage.text, mediaType="text/plain")
    _status(req, dosage.status)
    if len(dosage.timing) > 1:
        raise InvalidValueError("a dosage has one effectiveTime; combine timings in SXPR")
    for timing in dosage.timing:
        _timing(req, "effectiveTime", timing, top=True)
    if dosage.route is not None:
        cd(req, "routeCode", dosage.route)
    if dosage.dose is not None:
        _dose(req, dosage.dose)
    if dosage.max_dose_per and len(dosage.max_dose_per) != len(dosage.max_dose):
        raise InvalidValueError("max_dose_per must be parallel to max_dose")
    for i, max_dose in enumerate(dosage.max_dose):
        per = dosage.max_dose_per[i] if dosage.max_dose_per else None
        _ratio(req, "maxDoseQuantity", max_dose, per)
    for instruction in dosage.instructions:
        cd(
            sub(sub(req, "support2"), "medicationAdministrationInstruction"),
            "code",
            instruction,
            allow_translations=False,
        )
    for condition in dosage.preconditions:
        cd(
            sub(sub(req, "precondition"), "observationEventCriterion"),
            "code",
            condition,
            allow_translations=False,
        )


def _dose(req: etree._Element, dose: QuantityRange) -> None:
    el = sub(req, "doseQuantity")
    if dose.center is not None:
        if dose.low is not None or dose.high is not None:
            raise InvalidValueError("a dose has either a center or low/high")
        pq(el, "center", dose.center)
        return
    if dose.low is not None:
        pq(el, "low", dose.low)
    if dose.high is not None:
        pq(el, "high", dose.high)


_XSI_TYPES = {"IVL": "IVL_TS", "PIVL": "PIVL_TS", "SXPR": "SXPR_TS", "TS": None}


def _timing(parent: etree._Element, tag: str, timing: Timing, *, top: bool) -> None:
    if timing.kind not in _XSI_TYPES:
        raise InvalidValueError("unknown timing kind", kind=timing.kind)
    el = sub(parent, tag)
    xsi_type = _XSI_TYPES[timing.kind]
    if xsi_type is not None:
        set_attr(el, XSI_TYPE, xsi_type)
    if timing.operator is not None:
        set_attr(el, "operator", timing.operator)
    if timing.kind == "TS":
        if timing.low is None:
            raise InvalidValueError("a TS timing needs a value (low)")
        set_attr(el, "value", timing.low)
    elif timing.kind == "IVL":
        _ivl(el, timing.low, timing.width, timing.high)
    elif timing.kind == "PIVL":
        if timing.institution_specified is not None:
            set_attr(
                el, "institutionSpecified", "true" if timing.institution_specified else "false"
            )
        if timing.phase_center is not None:
            if timing.phase_low is not None or timing.phase_width is not None:
                raise InvalidValueError("a PIVL phase has a center or low/width, not both")
            sub(sub(el, "phase"), "center", value=timing.phase_center)
        elif timing.phase_low is not None or timing.phase_width is not None:
            _ivl(sub(el, "phase"), timing.phase_low, timing.phase_width, None)
        if timing.period is not None:
            pq(el, "period", timing.period)
    else:
        for component in timing.components:
            _timing(el, "comp", component, top=False)
    if timing.kind != "SXPR" and timing.components:
        raise InvalidValueError("only an SXPR timing has components")
    if top is False and timing.kind == "SXPR" and not timing.components:
        raise InvalidValueError("an SXPR timing needs components")


def _ivl(el: etree._Element, low: str | None, width: Quantity | None, high: str | None) -> None:
    if width is not None and high is not None and low is not None:
        raise InvalidValueError("an interval has low with width or high, not both")
    if low is not None:
        sub(el, "low", value=low)
    if width is not None:
        pq(el, "width", width)
    if high is not None:
        sub(el, "high", value=high)
