"""Identifier systems, code systems, profile and extension URLs of the Nictiz MP9 3.0
FHIR R4 profiles, and the OIDs Nictiz's own 6.12 -> MP9 conversion uses.

The pharmaceutical-treatment roots and the administration-agreement prefix are those of
Nictiz's conversion of a 6.12 `medicationDispenseEvent` (HL7-mappings,
`hl7_2_ada/mp/9.3.0/6.12_2_beschikbaarstellen_medicatiegegevens`, issue MP-572): 6.12
knows no pharmaceutical treatment, so Nictiz derives one from the PRK code, else the HPK
code, else the dispense id with a fixed prefix before its root.
"""

from __future__ import annotations

from prefetch.domain import oids

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
UZI_PERSON = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
URI_SYSTEM = "urn:ietf:rfc:3986"

_NICTIZ = "http://nictiz.nl/fhir/StructureDefinition/"
PROFILE_DISPENSE = _NICTIZ + "mp-MedicationDispense"
PROFILE_AGREEMENT = _NICTIZ + "mp-AdministrationAgreement"
PROFILE_PRODUCT = _NICTIZ + "mp-PharmaceuticalProduct"
PROFILE_INSTRUCTIONS = _NICTIZ + "mp-InstructionsForUse.DosageInstructions"

EXT_TREATMENT_ID = _NICTIZ + "ext-PharmaceuticalTreatment.Identifier"
EXT_AGREEMENT_DATE = _NICTIZ + "ext-AdministrationAgreement.AdministrationAgreementDateTime"
EXT_RENDERED_DOSAGE = _NICTIZ + "ext-RenderedDosageInstruction"
EXT_PERIOD_OF_USE = _NICTIZ + "ext-TimeInterval.Period"
EXT_DURATION = _NICTIZ + "ext-TimeInterval.Duration"
EXT_PQ_TRANSLATION = "http://hl7.org/fhir/StructureDefinition/iso21090-PQ-translation"

#: Fixed categories (patternCodeableConcept of the profiles).
CATEGORY_DISPENSE = "373784005"  # Medicatieverstrekking (dispensing medication)
CATEGORY_AGREEMENT = "422037009"  # Toedieningsafspraak (administration instructions)
CATEGORY_DISPLAY = {
    CATEGORY_DISPENSE: "Medicatieverstrekking",
    CATEGORY_AGREEMENT: "Toedieningsafspraak",
}

#: Nictiz's derived pharmaceutical-treatment identifiers (MP-572).
TREATMENT_FROM_PRK = "2.16.840.1.113883.2.4.3.11.61.2"
TREATMENT_FROM_HPK = "2.16.840.1.113883.2.4.3.11.61.3"
TREATMENT_FROM_DISPENSE = "1.3.6.1.4.1.58606.1.2."  # + the dispense id's root
AGREEMENT_ID_PREFIX = "1.3.6.1.4.1.58606.1.1."  # + the dispense id's root

#: The medication codings, most specific first (as Nictiz orders G-Standaard codes).
PRODUCT_SYSTEMS = (oids.ZI_NUMBER, oids.HPK, oids.PRK, oids.GPK)


def oid_uri(oid: str) -> str:
    return "urn:oid:" + oid
