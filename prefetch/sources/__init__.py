"""Appointment intake adapters: CSV export (HL7v2 SIU and FHIR Appointment to follow)."""
