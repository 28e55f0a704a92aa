"""6.12 `medicationAdministrationRequest`s to FHIR `Dosage` (mp-InstructionsForUse).

Follows Nictiz's 6.12 -> MP9 conversion where it is structural: the free text is the
dosage text; NHG table 25 codes are additional instructions; a precondition "zo nodig"
is `asNeeded`; a PIVL period of a fraction of a day is a frequency per day (0.3333 d ->
3 times a day); an IVL width is the duration of the dosing (`boundsDuration`); the dose
is a quantity or a range in UCUM with the G-Standaard unit as translation.
"""

from __future__ import annotations

from decimal import Decimal

from prefetch.domain.coded import Timing
from prefetch.domain.dispense import Dosage
from prefetch.fhir.quantities import Json, concept, duration, hl7_date, number, quantity


def dosage_json(dosage: Dosage, sequence: int) -> Json:
    out: Json = {"sequence": sequence}
    if dosage.text:
        out["text"] = dosage.text
    extra = [c for c in (concept(code) for code in dosage.instructions) if c]
    if extra:
        out["additionalInstruction"] = extra
    timing = _timing(dosage.timing)
    if timing:
        out["timing"] = timing
    if dosage.preconditions:
        needed = concept(dosage.preconditions[0])
        out["asNeededCodeableConcept" if needed else "asNeededBoolean"] = needed or True
    route = concept(dosage.route)
    if route:
        out["route"] = route
    dose = _dose(dosage)
    if dose:
        out["doseAndRate"] = [dose]
    max_dose = _max_dose(dosage)
    if max_dose:
        out["maxDosePerPeriod"] = max_dose
    return out


def _flatten(timings: tuple[Timing, ...]) -> list[Timing]:
    flat: list[Timing] = []
    for t in timings:
        flat.append(t)
        flat.extend(_flatten(t.components))
    return flat


def _timing(timings: tuple[Timing, ...]) -> Json | None:
    repeat: Json = {}
    events: list[str] = []
    for t in _flatten(timings):
        if t.kind == "IVL":
            bounds = duration(t.width)
            if bounds:
                repeat["boundsDuration"] = bounds
            start, end = hl7_date(t.low), hl7_date(t.high)
            if (start or end) and "boundsDuration" not in repeat:
                repeat["boundsPeriod"] = {
                    k: v for k, v in (("start", start), ("end", end)) if v is not None
                }
        elif t.kind == "PIVL" and t.period is not None and t.period.value:
            repeat.update(_frequency(t.period.value, t.period.unit or "d"))
        elif t.kind == "TS" and t.low:
            when = hl7_date(t.low)
            if when:
                events.append(when)
    out: Json = {}
    if events:
        out["event"] = events
    if repeat:
        out["repeat"] = repeat
    return out or None


def _frequency(period: Decimal, unit: str) -> Json:
    """A period of 1/n of a unit (0.3333 d, 0.25 d) is n times per unit, as Nictiz reads it."""
    if period < 1:
        times = (1 / period).to_integral_value()
        if times > 1 and abs(times * period - 1) < Decimal("0.001"):
            return {"frequency": int(times), "period": 1, "periodUnit": unit}
    return {"frequency": 1, "period": number(period), "periodUnit": unit}


def _dose(dosage: Dosage) -> Json | None:
    dose = dosage.dose
    if dose is None:
        return None
    if dose.center is not None:
        q = quantity(dose.center)
        return {"doseQuantity": q} if q else None
    low, high = quantity(dose.low), quantity(dose.high)
    if low or high:
        return {"doseRange": {k: v for k, v in (("low", low), ("high", high)) if v}}
    return None


def _max_dose(dosage: Dosage) -> Json | None:
    for i, amount in enumerate(dosage.max_dose):
        per = dosage.max_dose_per[i] if i < len(dosage.max_dose_per) else None
        numerator, denominator = quantity(amount), quantity(per)
        if numerator and denominator:
            return {"numerator": numerator, "denominator": denominator}
    return None
