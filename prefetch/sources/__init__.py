"""Appointment intake: CSV exports, HL7v2 SIU (files and MLLP), FHIR Appointment JSON."""
