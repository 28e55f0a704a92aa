"""Turn catalogue entries into `Dispense` values, using only the `random.Random` given.

The values are shaped the way the HL7v3 parser reads real answers back (Decimal values as
written, codes with their systems, nullFlavors kept), so that a perfect client stores
exactly what `World.dispenses_for` returns.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from prefetch.domain import oids
from prefetch.domain.coded import (
    Code,
    CodedValue,
    Identifier,
    Quantity,
    QuantityRange,
    Timing,
)
from prefetch.domain.dispense import Dispense, Dosage, Ingredient, Party, Product
from prefetch.lspsim.catalogue import (
    FREE_TEXTS,
    PRODUCTS,
    CatalogueProduct,
    MagistralRecipe,
    Regimen,
)
from prefetch.lspsim.magistral import MAGISTRAL

PHARMACIST_ROLE = Code(code="17.000", system=oids.UZI_ROLE)
AS_NEEDED = Code(code="1137", system=oids.NHG_TABLE_25, display="zo nodig")
MAGISTRAL_SHARE = 0.06
FREE_TEXT_SHARE = 0.08
VIRTUAL_SHARE = 0.04


@dataclass(frozen=True, slots=True)
class Prescriber:
    """A prescriber as pharmacies record them: UZI and/or AGB, or unknown."""

    uzi: str | None
    agb: str | None

    def party(self) -> Party:
        ids: list[Identifier] = []
        if self.uzi:
            ids.append(Identifier(root=oids.UZI_PERSON, extension=self.uzi))
        if self.agb:
            ids.append(Identifier(root=oids.AGB, extension=self.agb))
        if not ids:
            ids.append(Identifier(null_flavor="UNK"))
        return Party(ids=tuple(ids))


@dataclass(frozen=True, slots=True)
class PharmacyRef:
    """What a dispense needs to know of its pharmacy."""

    ura: str
    dispense_root: str
    pharmacist_uzi: str | None


def random_prescriber(rng: random.Random) -> Prescriber:
    """UZI + AGB (most), AGB only, or unknown (nullFlavor UNK)."""
    roll = rng.random()
    uzi = f"{rng.randrange(10**6):09d}"
    agb = f"01{rng.randrange(10**6):06d}"
    if roll < 0.7:
        return Prescriber(uzi=uzi, agb=agb)
    if roll < 0.93:
        return Prescriber(uzi=None, agb=agb)
    return Prescriber(uzi=None, agb=None)


def _unit_quantity(value: Decimal, unit: tuple[str, str]) -> Quantity:
    return Quantity(
        value=value,
        unit="1",
        translations=(
            CodedValue(value, Code(code=unit[0], system=oids.GSTD_UNIT, display=unit[1])),
        ),
    )


def _product(entry: CatalogueProduct) -> Product:
    translations = tuple(
        Code(code=code, system=system)
        for code, system in ((entry.hpk, oids.HPK), (entry.gpk, oids.GPK), (entry.prk, oids.PRK))
        if code
    )
    return Product(
        code=Code(
            code=entry.zi, system=oids.ZI_NUMBER, display=entry.name, translations=translations
        )
    )


def _magistral_product(recipe: MagistralRecipe) -> Product:
    ingredients = []
    for ing in recipe.ingredients:
        gpk = (Code(code=ing.gpk, system=oids.GPK, display=ing.gpk_name),) if ing.gpk else ()
        ingredients.append(
            Ingredient(
                active=ing.active,
                code=Code(code=ing.hpk, system=oids.HPK, display=ing.name, translations=gpk),
                numerator=Quantity(value=ing.numerator[0], unit=ing.numerator[1])
                if ing.numerator
                else Quantity(null_flavor="QS"),  # quantum satis ("ad 100 ml")
                denominator=Quantity(value=ing.denominator[0], unit=ing.denominator[1]),
            )
        )
    return Product(
        code=Code(null_flavor="OTH", original_text=recipe.original_text),
        description=recipe.description,
        ingredients=tuple(ingredients),
    )


def _ts(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


DOSE_RANGE_SHARE = 0.5  # of "zo nodig" regimens: a dose range, "1 à 2" (doseQuantity low/high)
CYCLE_SHARE = 0.12  # of once-daily regimens: "21 dagen, daarna 1 week stoppen" (nested SXPR)
CYCLE_INSTRUCTION = Code(
    code="1225", system=oids.NHG_TABLE_25, display="gedurende 3 weken, daarna 1 week stoppen"
)


def _structured_dosage(
    regimen: Regimen, start: dt.date, days: int, rng: random.Random | None = None
) -> Dosage:
    """A structured dosage; with `rng`, sometimes a dose range (as needed) or a cycle.

    A dose range is `doseQuantity/low|high` (the official QURX_EX990113NL_02 example); a
    cycle is the nested schedule of the lsp-batch example: `comp` IVL (the use period) and
    `comp operator="A"` SXPR of a daily PIVL and a 28-day PIVL with a 21-day phase.
    """
    instructions: list[Code] = []
    if regimen.as_needed:
        instructions.append(AS_NEEDED)
    if regimen.instruction is not None:
        instructions.append(
            Code(
                code=regimen.instruction[0],
                system=oids.NHG_TABLE_25,
                display=regimen.instruction[1],
            )
        )
    if regimen.period_days == 1 and regimen.times > 1:
        period = Quantity(value=Decimal(24 // regimen.times), unit="h")
    else:
        period = Quantity(value=Decimal(regimen.period_days), unit="d")
    text = f"Vanaf {start.strftime('%d-%m-%Y')} gedurende {days} dagen, {regimen.text()}"
    dose = QuantityRange(center=Quantity(value=regimen.dose, unit="1"))
    frequency = Timing(kind="PIVL", period=period, operator="A")
    if rng is not None and regimen.as_needed and rng.random() < DOSE_RANGE_SHARE:
        high = regimen.dose * 2
        dose = QuantityRange(
            low=Quantity(value=regimen.dose, unit="1"), high=Quantity(value=high, unit="1")
        )
        text += f" ({regimen.dose} à {high} per keer)".replace(".", ",")
    elif (
        rng is not None
        and regimen.times == 1
        and regimen.period_days == 1
        and not regimen.as_needed
        and rng.random() < CYCLE_SHARE
    ):
        frequency = Timing(
            kind="SXPR",
            operator="A",
            components=(
                Timing(kind="PIVL", period=Quantity(value=Decimal(1), unit="d")),
                Timing(
                    kind="PIVL",
                    operator="A",
                    phase_width=Quantity(value=Decimal(21), unit="d"),
                    period=Quantity(value=Decimal(28), unit="d"),
                ),
            ),
        )
        text += ", daarna 1 week stoppen"
        instructions.append(CYCLE_INSTRUCTION)
    return Dosage(
        text=text,
        status="active",
        timing=(
            Timing(
                kind="SXPR",
                components=(
                    Timing(
                        kind="IVL", low=_ts(start), width=Quantity(value=Decimal(days), unit="d")
                    ),
                    frequency,
                ),
            ),
        ),
        dose=dose,
        instructions=tuple(instructions),
    )


def make_dispense(
    rng: random.Random, pharmacy: PharmacyRef, prescriber: Prescriber, day: dt.date, serial: int
) -> Dispense:
    """One dispense on `day` by `pharmacy`; `serial` makes the id unique in the pharmacy."""
    if pharmacy.dispense_root.startswith(oids.URA):
        ext = f"{serial:07d}"
    else:
        raw = f"{rng.getrandbits(128):032X}"
        ext = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    days = rng.choice((14, 30, 30, 60, 90, 90, 92))
    dosages: tuple[Dosage, ...]
    if rng.random() < MAGISTRAL_SHARE:
        recipe = rng.choice(MAGISTRAL)
        product = _magistral_product(recipe)
        unit = recipe.unit
        amount = Decimal(1)
        instr = (
            (
                Code(
                    code=recipe.instruction[0],
                    system=oids.NHG_TABLE_25,
                    display=recipe.instruction[1],
                ),
            )
            if recipe.instruction
            else ()
        )
        dosages = (Dosage(text=recipe.regimen_text, status="active", instructions=instr),)
    else:
        entry = rng.choice(PRODUCTS)
        product = _product(entry)
        unit = entry.unit
        amount = Decimal(rng.choice(entry.packs))
        if rng.random() < FREE_TEXT_SHARE:
            text, code = rng.choice(FREE_TEXTS)
            instr = (Code(code=code[0], system=oids.NHG_TABLE_25, display=code[1]),) if code else ()
            dosages = (Dosage(text=text, status="active", instructions=instr),)
        else:
            dosages = (_structured_dosage(rng.choice(entry.regimens), day, days, rng),)
    performer_null = rng.choice(("UNK", "UNK", "MSK"))
    org = (Identifier(root=oids.URA, extension=pharmacy.ura),)
    pharmacist = (
        Identifier(root=oids.UZI_PERSON, extension=pharmacy.pharmacist_uzi)
        if pharmacy.pharmacist_uzi and rng.random() < 0.5
        else Identifier(null_flavor="UNK")
    )
    virtual = rng.random() < VIRTUAL_SHARE
    return Dispense(
        id=Identifier(root=pharmacy.dispense_root, extension=ext),
        status="completed",
        dispensed_on=None if virtual else day,
        period_start=day if virtual else None,
        period_end=day + dt.timedelta(days=days) if virtual else None,
        quantity=_unit_quantity(amount, unit),
        expected_use=Quantity(value=Decimal(days), unit="d"),
        product=product,
        dosages=dosages,
        prescriber=prescriber.party(),
        prescription_id=Identifier(null_flavor="UNK"),
        performer=Party(ids=(Identifier(null_flavor=performer_null),), organization_ids=org),
        responsible=Party(ids=(pharmacist,), role=PHARMACIST_ROLE, organization_ids=org),
    )


def dispense_day(dispense: Dispense) -> dt.date | None:
    """The date the look-back window is applied to: dispense date or period start."""
    return dispense.dispensed_on or dispense.period_start


def in_window(dispense: Dispense, since: dt.date | None) -> bool:
    """True when `dispense` falls in a look-back window starting at `since` (None: all)."""
    if since is None:
        return True
    day = dispense_day(dispense)
    return day is not None and day >= since
