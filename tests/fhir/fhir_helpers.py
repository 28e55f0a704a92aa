"""Shared checks for the FHIR tests: every resource parses with the fhir.resources R4B
models and passes our MP9 checks."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from prefetch.fhir.checks import mp9_problems


def assert_valid_resource(resource: dict[str, Any]) -> None:
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)  # raises on anything R4B does not allow
    assert mp9_problems(resource) == [], (resource["id"], mp9_problems(resource))


def assert_valid_bundle(bundle: dict[str, Any]) -> None:
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")
        assert_valid_resource(resource)
