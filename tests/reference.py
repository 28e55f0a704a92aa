"""The one way tests reach the shared reference material (`../shared` beside the checkout).

Real HL7v3 answers and the HL7/Nictiz schema set come from public repositories and are
read where they are, never copied into the tree. `PREFETCH_TEST_SHARED` points elsewhere.
When the material is missing, the tests that need it fail with this message (also at
collection, for parametrised tests) instead of passing on an empty list.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(
    os.environ.get("PREFETCH_TEST_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared")
).resolve()
EXAMPLES = SHARED / "hl7v3" / "examples"
SCHEMAS = SHARED / "hl7v3" / "schemas"


def shared_path(*parts: str) -> Path:
    """`SHARED/parts...`, or a test failure saying what is missing and how to provide it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"shared reference material not found at {path}: clone the project with "
            "../shared beside it, or set PREFETCH_TEST_SHARED",
            pytrace=False,
        )
    return path
