"""The read side over HTTP: the desk web app and the FHIR API for the EPD."""
