"""What the synthetic pharmacies dispense: products, regimens and magistral recipes.

Every code and name below is copied from the real and official messages in
`../shared/hl7v3/examples/` (Nictiz/HL7-mappings, commit 7b054d26, LGPL-2.1+): the
G-Standaard ZI numbers with their HPK / GPK / PRK translations, the dosage texts and NHG
table 25 instruction codes, and the magistral preparations with their ingredients. They
are kept here as data so that the package runs without the shared folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# G-Standaard table 2 units (quantity translations) as seen in the examples.
UNIT_PIECE = ("245", "Stuk")
UNIT_ML = ("233", "Milliliter")
UNIT_GRAM = ("215", "Gram")


@dataclass(frozen=True, slots=True)
class Regimen:
    """One way a product is used: `times` doses of `dose` `form` per `period_days`.

    `as_needed` adds NHG table 25 code 1137 "zo nodig"; `instruction` is an extra
    table 25 code (code, text) such as 1028 "bij pijn".
    """

    times: int
    period_days: int
    dose: Decimal
    form: str
    as_needed: bool = False
    instruction: tuple[str, str] | None = None

    def text(self) -> str:
        """The free-text instruction the way pharmacy systems write it."""
        period = {1: "dag", 7: "week"}.get(self.period_days, f"{self.period_days} dagen")
        dose = f"{self.dose}".replace(".", ",")
        words = f"{self.times} maal per {period} {dose} {self.form}"
        if self.as_needed:
            words += " zo nodig"
        if self.instruction is not None:
            words += f" {self.instruction[1]}"
        return words


@dataclass(frozen=True, slots=True)
class CatalogueProduct:
    """A G-Standaard article: ZI number, name, optional HPK / GPK / PRK, unit, packs."""

    zi: str
    name: str
    hpk: str | None
    gpk: str | None
    prk: str | None
    unit: tuple[str, str]
    packs: tuple[int, ...]
    regimens: tuple[Regimen, ...]


@dataclass(frozen=True, slots=True)
class CatalogueIngredient:
    """One magistral ingredient: HPK code and name, GPK translation, strength ratio."""

    active: bool
    hpk: str
    name: str
    gpk: str | None
    gpk_name: str | None
    numerator: tuple[Decimal, str] | None
    denominator: tuple[Decimal, str]


@dataclass(frozen=True, slots=True)
class MagistralRecipe:
    """A pharmacy preparation without a ZI number (code nullFlavor OTH + originalText)."""

    original_text: str
    description: str
    ingredients: tuple[CatalogueIngredient, ...]
    unit: tuple[str, str]
    regimen_text: str
    instruction: tuple[str, str] | None


_TAB = "tablet"
_D = Decimal

PRODUCTS: tuple[CatalogueProduct, ...] = (
    CatalogueProduct(
        "16778685",
        "PARACETAMOL SAM TABLET 500MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (20, 30, 50),
        (
            Regimen(3, 1, _D(1), _TAB, as_needed=True, instruction=("1028", "bij pijn")),
            Regimen(4, 1, _D(2), "tabletten", as_needed=True),
        ),
    ),
    CatalogueProduct(
        "14294060",
        "ALPRAZOLAM CF TABLET 0,25MG",
        "1167871",
        "82309",
        None,
        UNIT_PIECE,
        (30, 60),
        (Regimen(2, 1, _D(1), _TAB),),
    ),
    CatalogueProduct(
        "14165635",
        "ASPIRINE PROTECT EC TABLET MSR 100MG",
        "1110837",
        "103039",
        None,
        UNIT_PIECE,
        (30, 90),
        (Regimen(1, 1, _D(1), _TAB),),
    ),
    CatalogueProduct(
        "14760371",
        "CLARITINE TABLET 10MG",
        "619094",
        "73563",
        None,
        UNIT_PIECE,
        (30,),
        (Regimen(1, 1, _D(1), _TAB, as_needed=True),),
    ),
    CatalogueProduct(
        "14765233",
        "IBUPROFEN PCH TABLET 200MG CLICKER",
        "719374",
        "50997",
        None,
        UNIT_PIECE,
        (20, 30),
        (Regimen(3, 1, _D(1), _TAB, as_needed=True, instruction=("1028", "bij pijn")),),
    ),
    CatalogueProduct(
        "14311836",
        "METFORMINE HCL CF TABLET 850MG",
        "1037137",
        "15865",
        None,
        UNIT_PIECE,
        (90, 180),
        (Regimen(2, 1, _D(1), _TAB), Regimen(3, 1, _D(1), _TAB)),
    ),
    CatalogueProduct(
        "14571013",
        "METHOTREXAAT PCH TABLET 2,5MG",
        "1421778",
        "42609",
        None,
        UNIT_PIECE,
        (24, 48),
        (Regimen(1, 7, _D(6), "tabletten", instruction=("1378", "op maandag")),),
    ),
    CatalogueProduct(
        "13906550",
        "TRUSOPT OOGDRUPPELS 20MG/ML FLACON 5ML",
        "850144",
        "95575",
        None,
        UNIT_PIECE,
        (1, 3),
        (Regimen(2, 1, _D(1), "druppel"),),
    ),
    CatalogueProduct(
        "14750406",
        "SPIRIVA INHALPDR 18MCG",
        "1476866",
        "115371",
        None,
        UNIT_PIECE,
        (30, 90),
        (Regimen(1, 1, _D(1), "inhalatie"),),
    ),
    CatalogueProduct(
        "14910667",
        "SEVREDOL TABLET OMHULD 10MG",
        "1010964",
        "98221",
        None,
        UNIT_PIECE,
        (28, 56),
        (Regimen(4, 1, _D(1), _TAB, as_needed=True),),
    ),
    CatalogueProduct(
        "14039303",
        "SEREVENT DISKUS INHPDR 50MCG 60DO",
        "1029746",
        "87424",
        None,
        UNIT_PIECE,
        (1, 2),
        (Regimen(2, 1, _D(1), "inhalatie"),),
    ),
    CatalogueProduct(
        "13878948",
        "DUROGESIC 75 MATRIXPLEISTER 12,6MG",
        "836974",
        "122041",
        None,
        UNIT_PIECE,
        (5, 10),
        (Regimen(1, 3, _D(1), "pleister"),),
    ),
    CatalogueProduct(
        "14815982",
        "INSULATARD PENFILL INJ 100IE/ML PATR 3ML",
        "709085",
        "111325",
        None,
        UNIT_PIECE,
        (5, 10),
        (Regimen(3, 1, _D(16), "IE"),),
    ),
    CatalogueProduct(
        "15572056",
        "SALBUTAMOL 100 REDIHALER 100MCG/DO SPB 200D+INH",
        "2095246",
        "83704",
        "121061",
        UNIT_PIECE,
        (1, 2),
        (Regimen(4, 1, _D(1), "inhalatie", as_needed=True),),
    ),
    CatalogueProduct(
        "13244728",
        "XPRAEP SIROOP 2MG/ML",
        "101079",
        "10960",
        None,
        UNIT_ML,
        (150, 300),
        (Regimen(1, 1, _D(10), "milliliter"),),
    ),
    CatalogueProduct(
        "16348222",
        "SILDENAFIL AUROBINDO TABLET FILMOMHULD 50MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (4, 8),
        (Regimen(1, 1, _D(1), _TAB, as_needed=True),),
    ),
    CatalogueProduct(
        "12133183",
        "MICROGYNON 30 TABLET OMHULD",
        None,
        None,
        None,
        UNIT_PIECE,
        (63, 126),
        (
            Regimen(
                1, 1, _D(1), _TAB, instruction=("1225", "gedurende 3 weken, daarna 1 week stoppen")
            ),
        ),
    ),
    CatalogueProduct(
        "15759253",
        "NOVOMIX 30 PENFILL INJ 100E/ML PATROON 3ML",
        None,
        None,
        None,
        UNIT_PIECE,
        (5, 10),
        (Regimen(2, 1, _D(10), "eenheden"),),
    ),
    CatalogueProduct(
        "14567423",
        "ACENOCOUMAROL AURO TABLET 1MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (60, 100),
        (Regimen(1, 1, _D(1), _TAB, instruction=("1131", "gebruik volgens schema")),),
    ),
    CatalogueProduct(
        "15715345",
        "OMEPRAZOL MYLAN CAPSULE MSR 20MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (30, 90),
        (Regimen(1, 1, _D(1), "capsule"),),
    ),
    CatalogueProduct(
        "14148919",
        "FOLIUMZUUR SANIAS TABLET 5MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (12, 24),
        (Regimen(1, 7, _D(1), _TAB),),
    ),
    CatalogueProduct(
        "15642232",
        "TRAFLOXAL OOGDRUPPELS 3MG/ML FLACON 5ML",
        None,
        None,
        None,
        UNIT_PIECE,
        (1,),
        (Regimen(4, 1, _D(1), "druppel", instruction=("1106", "in het rechter oor")),),
    ),
    CatalogueProduct(
        "15429784",
        "ACETYLSALICYLZUUR CARDIO AUROBINDO DISP TABL 80MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (30, 90),
        (Regimen(1, 1, _D(1), _TAB),),
    ),
    CatalogueProduct(
        "15702804",
        "ALENDRONINEZUUR AUROBINDO TABLET 70MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (4, 12),
        (Regimen(1, 7, _D(1), _TAB),),
    ),
    CatalogueProduct(
        "15280071",
        "CETOMACROGOLCREME MET 10% VASELINE BUFA",
        None,
        None,
        None,
        UNIT_GRAM,
        (100, 200),
        (Regimen(2, 1, _D(5), "gram", instruction=("1018", "aanbrengen")),),
    ),
    CatalogueProduct(
        "15367878",
        "VOLTAREN K TABLET OMHULD 25MG",
        None,
        None,
        None,
        UNIT_PIECE,
        (20, 30),
        (Regimen(3, 1, _D(1), _TAB, as_needed=True),),
    ),
)


# Dosage texts seen in real answers without structured content ("gebruik bekend" etc.).
FREE_TEXTS: tuple[tuple[str, tuple[str, str] | None], ...] = (
    ("gebruik bekend", ("1035", "gebruik bekend")),
    ("gebruik volgens schema", ("1131", "gebruik volgens schema")),
    ("zo nodig aanbrengen", ("1018", "aanbrengen")),
    ("pilschema", None),
)

TOWNS: tuple[str, ...] = (
    "Paterswolde",
    "Kuinre",
    "Stitswerd",
    "Eelde",
    "Zwolle",
    "Deventer",
    "Amersfoort",
    "Gouda",
    "Leiden",
    "Haarlem",
    "Alkmaar",
    "Hoorn",
    "Assen",
    "Emmen",
    "Tiel",
    "Oss",
    "Venlo",
    "Roermond",
    "Sittard",
    "Breda",
    "Tilburg",
    "Goes",
    "Middelburg",
    "Delft",
    "Woerden",
    "Ede",
    "Doetinchem",
    "Almelo",
    "Hengelo",
    "Sneek",
    "Heerenveen",
    "Meppel",
)

PHARMACY_KINDS: tuple[str, ...] = (
    "Apotheek",
    "Service Apotheek",
    "BENU Apotheek",
    "Apotheek De Linde",
    "Poliklinische Apotheek",
)

# Vendor-style dispense id roots (pharmacy information systems), as in the examples.
VENDOR_ROOTS: tuple[str, ...] = (
    "2.16.840.1.113883.2.4.3.33.1.4.1",
    "2.16.840.1.113883.2.4.3.11.999.77",
    "2.16.840.1.113883.2.4.3.46.10",
)
