"""Shared test values: paths to ../shared, query parameters, sources, dispenses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from reference import shared_path

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Code, CodedValue, Identifier, Quantity, QuantityRange, Timing
from prefetch.domain.dispense import Dispense, Dosage, Ingredient, Party, Product
from prefetch.domain.people import Clinician
from prefetch.hl7v3.answer import PUBLIC_PHARMACY, NamePart, PatientDemographics, SourceSystem
from prefetch.hl7v3.params import QueryParams

EXAMPLES = shared_path("hl7v3", "examples")
NOW = dt.datetime(2026, 11, 23, 1, 0, 0, tzinfo=dt.UTC)
BSN = Bsn("999900444")


def make_params(
    *, system: bool = True, look_back: dt.date | None = dt.date(2025, 11, 1), suffix: str = "1"
) -> QueryParams:
    overseer = Clinician(
        uzi_number="123456782", role_code="01.015", name="Dr. A. van Arts", ura="12345678"
    )
    author = (
        None
        if system
        else Clinician(uzi_number="987654321", role_code="30.000", name="B. Bakker", ura="12345678")
    )
    return QueryParams(
        bsn=BSN,
        message_id=Identifier("2.16.528.1.1007.3.3.12345678.1", f"msg-{suffix}"),
        query_id=Identifier("2.16.528.1.1007.3.3.12345678.2", f"qry-{suffix}"),
        created_at=NOW,
        overseer=overseer,
        hospital_ura="12345678",
        hospital_name="Ziekenhuis Oost",
        sender_application_id="4003",
        author=author,
        author_system_uzi="000143554" if system else None,
        look_back_from=look_back,
    )


PHARMACY = SourceSystem(
    organization_ura="00063703",
    organization_name="Apotheek Kuinre",
    application_id="10011427",
    system_uzi="000277280",
)
# As the lsp-batch example's first item: software name, organisation type, telecom, city.
PHARMACY_DETAILED = SourceSystem(
    organization_ura="00056219",
    organization_name="Apotheek Eelde-paterswolde",
    application_id="10006673",
    system_uzi="000143554",
    organization_code=PUBLIC_PHARMACY,
    organization_telecom="x-hl7-applicatie:2.16.840.1.113883.2.4.6.6.10006673",
    organization_city="Paterswolde",
    software_name="TestApplicatie",
)
# As the official QURX_EX990113NL_01 example's patient (test data, no real person).
DEMOGRAPHICS = PatientDemographics(
    name=(
        NamePart("given", "J.J.", "IN"),
        NamePart("prefix", "le ", "VV"),
        NamePart("family", "Noble", "BR"),
        NamePart("prefix", "van ", "VV"),
        NamePart("family", "Son", "SP"),
    ),
    gender_code="F",
    birth_date=dt.date(1972, 12, 18),
    street_name="Boerhaavelaan",
    house_number="24",
    postal_code="2035 RC",
    city="HAARLEM",
)
PHARMACY_2 = SourceSystem(
    organization_ura="00056219",
    organization_name="Apotheek Eelde",
    application_id="10006673",
    system_uzi="000143555",
)


STUK = Code("245", oids.GSTD_UNIT, "Stuk")


def full_dispense(ext: str = "d1") -> Dispense:
    """A coded dispense with structured dosage, prescriber, pharmacist and pharmacy."""
    return Dispense(
        id=Identifier("2.16.840.1.113883.2.4.3.33.1.4.1.272.3", ext),
        status="completed",
        dispensed_on=dt.date(2026, 10, 9),
        quantity=Quantity(Decimal("30"), "1", translations=(CodedValue(Decimal(30), STUK),)),
        expected_use=Quantity(Decimal("15"), "d"),
        product=Product(
            code=Code(
                "16778685",
                oids.ZI_NUMBER,
                "PARACETAMOL SAM TABLET 500MG",
                translations=(
                    Code("2194430", oids.HPK, "PARACETAMOL 500MG"),
                    Code("3026", oids.PRK),
                    Code("21962", oids.GPK),
                ),
            ),
            form=Code("53", "2.16.840.1.113883.2.4.4.1.307", "tablet"),
        ),
        dosages=(
            Dosage(
                text="2 maal per dag 1 tablet zo nodig",
                status="active",
                timing=(
                    Timing(
                        "SXPR",
                        components=(
                            Timing("IVL", low="20261009", width=Quantity(Decimal(15), "d")),
                            Timing(
                                "PIVL",
                                period=Quantity(Decimal("0.5"), "d"),
                                operator="A",
                                institution_specified=True,
                            ),
                        ),
                    ),
                ),
                dose=QuantityRange(low=Quantity(Decimal(1), "1"), high=Quantity(Decimal(2), "1")),
                max_dose=(Quantity(Decimal(4), "1"),),
                max_dose_per=(Quantity(Decimal(1), "d"),),
                route=Code("9", oids.GSTD_ROUTE, "ORAAL"),
                instructions=(Code("1131", oids.NHG_TABLE_25, "gebruik volgens schema"),),
                preconditions=(Code("1137", oids.NHG_TABLE_25, "zo nodig"),),
            ),
        ),
        prescriber=Party(
            ids=(Identifier(oids.UZI_PERSON, "000018389"), Identifier(oids.AGB, "01006934"))
        ),
        prescription_id=Identifier("2.16.840.1.113883.2.4.3.33.1.4.1.272.4", "rx-1"),
        performer=Party(
            ids=(Identifier(null_flavor="UNK"),),
            organization_ids=(Identifier(oids.URA, "00063703"),),
        ),
        responsible=Party(
            ids=(Identifier(oids.UZI_PERSON, "000153903"),),
            role=Code("17.000", oids.UZI_ROLE, "Apotheker"),
            organization_ids=(Identifier(oids.URA, "00063703"),),
            organization_name="Apotheek Kuinre",
        ),
    )


def magistral_dispense(ext: str = "mag1") -> Dispense:
    """A magistral product (no code, ingredients with strengths) and a use period."""
    return Dispense(
        id=Identifier("2.16.528.1.1007.3.3.1234567.3", ext),
        status="completed",
        period_start=dt.date(2026, 3, 3),
        period_end=dt.date(2026, 3, 17),
        quantity=Quantity(Decimal(1), translations=(CodedValue(Decimal(1), STUK),)),
        product=Product(
            code=Code(null_flavor="OTH", original_text="Hydrocortison zetpil 100 mg"),
            description="Titel: Hydrocortison zetpil 100 mg",
            ingredients=(
                Ingredient(
                    True,
                    Code(
                        "252247",
                        oids.HPK,
                        "HYDROCORTISONUM",
                        translations=(Code("28126", oids.GPK),),
                    ),
                    Quantity(Decimal(10), "mg"),
                    Quantity(Decimal(1), "1"),
                ),
                Ingredient(
                    False,
                    Code("265144", oids.HPK, "WITEPSOL H15 PAST"),
                    Quantity(null_flavor="QS"),
                    Quantity(Decimal(100), "ml"),
                ),
            ),
        ),
        prescription_id=Identifier(null_flavor="UNK"),
        performer=Party(ids=(Identifier(null_flavor="MSK"),)),
        responsible=Party(
            ids=(Identifier(oids.UZI_PERSON, "012345679"),),
            role=Code("17.000", oids.UZI_ROLE),
            organization_ids=(Identifier(oids.URA, "01234567"),),
        ),
    )
