"""The desk (web pages for the pharmacy assistants) and, beside it, the FHIR API for the EPD."""
