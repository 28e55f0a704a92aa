"""Magistral preparations (pharmacy-made, no ZI number) for the simulated pharmacies.

Copied from `../shared/hl7v3/examples/official/QURX_EX990113NL_02_magistraal.xml`
(Nictiz/HL7-mappings, commit 7b054d26, LGPL-2.1+): the original texts, ingredients with
their HPK / GPK codes and strengths.
"""

from __future__ import annotations

from decimal import Decimal

from prefetch.lspsim.catalogue import UNIT_PIECE, CatalogueIngredient, MagistralRecipe

_D = Decimal


def _ing(  # noqa: PLR0917 - one row of the data table below
    active: bool,
    hpk: str,
    name: str,
    gpk: str | None,
    gpk_name: str | None,
    num: tuple[str, str] | None,
    den: tuple[str, str],
) -> CatalogueIngredient:
    return CatalogueIngredient(
        active=active,
        hpk=hpk,
        name=name,
        gpk=gpk,
        gpk_name=gpk_name,
        numerator=(_D(num[0]), num[1]) if num else None,
        denominator=(_D(den[0]), den[1]),
    )


MAGISTRAL: tuple[MagistralRecipe, ...] = (
    MagistralRecipe(
        "Hydrocortison zetpil 100 mg",
        "Titel: Hydrocortison zetpil 100 mg",
        (
            _ing(
                True,
                "252247",
                "HYDROCORTISONUM MICRONISAT",
                "28126",
                "HYDROCORTISON",
                ("10", "mg"),
                ("1", "1"),
            ),
            _ing(
                False, "265144", "WITEPSOL H15 PAST", "79707", "VET VAST", ("1.99", "g"), ("1", "1")
            ),
        ),
        UNIT_PIECE,
        "1 maal per dag 1 zetpil",
        None,
    ),
    MagistralRecipe(
        "Ketoconazol crème met 20% vaseline en 0,1% triam acet",
        "Titel: Ketoconazol crème met 20% vaseline en 0,1% triam acet",
        (
            _ing(
                True,
                "264105",
                "TRIAMCINOLONI ACETONIDUM C AM OR TRIT 1=10 MICRON",
                "35416",
                "TRIAMCINOLONACETONIDE 100MG/G",
                ("6", "g"),
                ("600", "g"),
            ),
            _ing(
                True,
                "1131508",
                "KETOCONAZOL JC CREME 20MG/G",
                "54828",
                "KETOCONAZOL CREME  20MG/G",
                ("474", "g"),
                ("600", "g"),
            ),
            _ing(
                False,
                "265012",
                "VASELINUM ALBUM",
                "35971",
                "VASELINE WIT",
                ("120", "g"),
                ("600", "g"),
            ),
        ),
        UNIT_PIECE,
        "gebruik volgens schema",
        ("1131", "gebruik volgens schema"),
    ),
    MagistralRecipe(
        "Nafazoline oogdruppels 0,025% ex FNA",
        "Titel: Nafazoline oogdruppels 0,025% ex FNA",
        (
            _ing(
                True,
                "256234",
                "NAPHAZOLINI HYDROCHLORIDUM",
                "30600",
                "NAFAZOLINE HYDROCHLORIDE",
                ("25", "mg"),
                ("100", "ml"),
            ),
            _ing(
                False,
                "261173",
                "BOORZUUR-BENZALKONIUMOPLOSSING FNA MR",
                "24155",
                "GRONDSTOF VLOEIBAAR",
                None,
                ("100", "ml"),
            ),
        ),
        UNIT_PIECE,
        "2 maal per dag 1 druppel",
        None,
    ),
    MagistralRecipe(
        "Haparine 100 ie= 10 ml",
        "Titel: Haparine 100 ie= 10 ml",
        (
            _ing(
                True,
                "898724",
                "HEPARINUM NATRICUM",
                "45721",
                "HEPARINE NATRIUM",
                ("100", "[iU]"),
                ("10", "ml"),
            ),
            _ing(
                False,
                "256390",
                "NATRII CHLORIDUM",
                "30759",
                "NATRIUMCHLORIDE",
                ("0.09", "g"),
                ("10", "ml"),
            ),
        ),
        UNIT_PIECE,
        "gebruik volgens schema",
        ("1131", "gebruik volgens schema"),
    ),
    MagistralRecipe(
        "Furosemide 125mg/50ml pump",
        "Titel: Furosemide 125mg/50ml pump",
        (
            _ing(True, "497142", "FUROSEMIDUM", "49824", "FUROSEMIDE", ("0.13", "g"), ("1", "1")),
            _ing(
                False,
                "598968",
                "INFVLST NACL 9MG/ML ZAK  100ML",
                "19100",
                "NATRIUMCHLORIDE INFVLST  9MG/ML",
                ("1", "1"),
                ("1", "1"),
            ),
        ),
        UNIT_PIECE,
        "gebruik bekend",
        ("1035", "gebruik bekend"),
    ),
)
