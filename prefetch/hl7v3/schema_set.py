"""Where the core HL7v3 schema set is, and how our interaction schemas find its files.

The package holds only the schemas we wrote (`schemas/hl7_schemas/QURX_*.xsd` and the
batch schema, see `schemas/NOTICE`). They include HL7 and Nictiz XSDs (wrappers, CMETs,
core data types) by bare file name; those are public reference material and are read in
place from a schema set on disk, never copied into this tree:

- the directory is `[hl7v3] schema_dir` (environment `PREFETCH_HL7V3_SCHEMA_DIR`), or, when
  that is empty, `../shared/hl7v3/schemas` beside the checkout if it exists;
- `CATALOG` names, for every file our schemas need, where it sits in that set (the set has
  two Nictiz trees, mp-lab and jgz 7.1; the mp-lab wrappers lack the Message type, so the
  wrappers come from jgz and everything else from mp-lab, with one set of core data types);
- lxml resolves every `xs:include` through `CatalogResolver`; for xmllint (tests, operators)
  `linked_schema_tree` lays out symbolic links with the same mapping in a folder of theirs.

Without a schema set the client and the simulator still work, but no message is reported
as valid: `SchemaSetMissingError` is raised by the validators and `prefetch config check`
and the simulator's start say so once. With `PREFETCH_REQUIRE_SCHEMAS=1` (CI) a missing set
is a configuration error wherever it is noticed.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from lxml import etree

from prefetch.errors import ConfigError

ENV_SCHEMA_DIR = "PREFETCH_HL7V3_SCHEMA_DIR"
ENV_REQUIRE = "PREFETCH_REQUIRE_SCHEMAS"

#: Each external file our interaction schemas (transitively) include -> its place in the set.
CATALOG: dict[str, str] = {
    "COCT_MT030200.xsd": "mp-lab/hl7_schemas/COCT_MT030200.xsd",
    "COCT_MT030200NL.xsd": "mp-lab/hl7_schemas/COCT_MT030200NL.xsd",
    "COCT_MT030202.xsd": "mp-lab/hl7_schemas/COCT_MT030202.xsd",
    "COCT_MT030203.xsd": "mp-lab/hl7_schemas/COCT_MT030203.xsd",
    "COCT_MT040203.xsd": "mp-lab/hl7_schemas/COCT_MT040203.xsd",
    "COCT_MT050000NL.xsd": "mp-lab/hl7_schemas/COCT_MT050000NL.xsd",
    "COCT_MT070000.xsd": "mp-lab/hl7_schemas/COCT_MT070000.xsd",
    "COCT_MT090000.xsd": "mp-lab/hl7_schemas/COCT_MT090000.xsd",
    "COCT_MT090100.xsd": "mp-lab/hl7_schemas/COCT_MT090100.xsd",
    "COCT_MT090101.xsd": "mp-lab/hl7_schemas/COCT_MT090101.xsd",
    "COCT_MT090300.xsd": "mp-lab/hl7_schemas/COCT_MT090300.xsd",
    "COCT_MT150000.xsd": "mp-lab/hl7_schemas/COCT_MT150000.xsd",
    "COCT_MT150001.xsd": "mp-lab/hl7_schemas/COCT_MT150001.xsd",
    "COCT_MT150002.xsd": "mp-lab/hl7_schemas/COCT_MT150002.xsd",
    "COCT_MT150003.xsd": "mp-lab/hl7_schemas/COCT_MT150003.xsd",
    "COCT_MT500000.xsd": "mp-lab/hl7_schemas/COCT_MT500000.xsd",
    "COCT_MT710000.xsd": "mp-lab/hl7_schemas/COCT_MT710000.xsd",
    "COCT_MT720000NL.xsd": "mp-lab/hl7_schemas/COCT_MT720000NL.xsd",
    "COCT_MT924000NL02.xsd": "mp-lab/hl7_schemas/COCT_MT924000NL02.xsd",
    "COCT_MT940000NL.xsd": "mp-lab/hl7_schemas/COCT_MT940000NL.xsd",
    "MCAI_MT900001.xsd": "jgz-7.1/hl7v3_schemas/MCAI_MT900001.xsd",
    "MCCI_IN000002.xsd": "mp-lab/hl7_schemas/MCCI_IN000002.xsd",
    "MCCI_IN200101.xsd": "jgz-7.1/hl7v3_schemas/MCCI_IN200101.xsd",
    "MCCI_MT000100.xsd": "jgz-7.1/hl7v3_schemas/MCCI_MT000100.xsd",
    "MCCI_MT000200.xsd": "mp-lab/hl7_schemas/MCCI_MT000200.xsd",
    "MCCI_MT000300.xsd": "jgz-7.1/hl7v3_schemas/MCCI_MT000300.xsd",
    "QUQI_MT021001_OPT_OV.xsd": "jgz-7.1/hl7v3_schemas/QUQI_MT021001_OPT_OV.xsd",
    "QUQI_MT120001.xsd": "jgz-7.1/hl7v3_schemas/QUQI_MT120001.xsd",
    "datatypes-extensions-hl7nl.xsd": "mp-lab/coreschemas/datatypes-extensions-hl7nl.xsd",
    "datatypes.xsd": "mp-lab/coreschemas/datatypes.xsd",
    "infrastructureRoot.xsd": "mp-lab/coreschemas/infrastructureRoot.xsd",
    "voc.xsd": "mp-lab/coreschemas/voc.xsd",
}

_configured: Path | None = None


class SchemaSetMissingError(ConfigError):
    """No usable HL7v3 schema set: messages cannot be validated (nothing is called valid)."""


def own_schema_dir() -> Path:
    """The package directory with the interaction schemas we wrote."""
    return Path(str(resources.files("prefetch.hl7v3") / "schemas" / "hl7_schemas"))


def default_schema_dir() -> Path:
    """`../shared/hl7v3/schemas` beside the checkout this package runs from."""
    checkout = Path(__file__).resolve().parents[2]
    return (checkout / ".." / "shared" / "hl7v3" / "schemas").resolve()


def configure(schema_dir: str | None) -> None:
    """Use `schema_dir` (from the settings) from now on; empty or None: env or default."""
    global _configured  # noqa: PLW0603 - one process-wide setting, set at the edge
    _configured = Path(schema_dir) if schema_dir else None
    # compiled schemas are cached per directory (`prefetch.hl7v3.schema`): nothing to clear


def requested_dir() -> Path:
    """The directory the settings, the environment or the default point at."""
    if _configured is not None:
        return _configured
    from_env = os.environ.get(ENV_SCHEMA_DIR, "")
    return Path(from_env) if from_env else default_schema_dir()


def missing_files(directory: Path) -> list[str]:
    """Catalog entries not found under `directory` (all of them if it does not exist)."""
    return [name for name, rel in CATALOG.items() if not (directory / rel).is_file()]


def schemas_required() -> bool:
    return os.environ.get(ENV_REQUIRE, "") == "1"


def schema_set_problem() -> str | None:
    """Why the schema set cannot be used, in one line with the fix; None when it can."""
    directory = requested_dir()
    if not directory.is_dir():
        return (
            f"HL7v3 schema set not found at {directory}: messages are not validated "
            f"(set [hl7v3] schema_dir or {ENV_SCHEMA_DIR})"
        )
    missing = missing_files(directory)
    if missing:
        return (
            f"HL7v3 schema set at {directory} lacks {len(missing)} file(s), first "
            f"{CATALOG[missing[0]]}: messages are not validated"
        )
    return None


def schema_set_dir() -> Path:
    """The usable schema set directory, or `SchemaSetMissingError`."""
    problem = schema_set_problem()
    if problem is not None:
        raise SchemaSetMissingError(problem)
    return requested_dir()


def locate(name: str) -> Path | None:
    """The file for an included schema `name` (a bare file name), or None if unknown."""
    if (own_schema_dir() / name).is_file():
        return own_schema_dir() / name
    rel = CATALOG.get(name)
    return schema_set_dir() / rel if rel else None


class CatalogResolver(etree.Resolver):
    """Resolves every schema include by file name: ours from the package, the rest from
    the schema set per `CATALOG`; anything else is refused (no network, no other file).

    Each resolved document gets a canonical base URL in one virtual folder pair
    (`hl7_schemas/`, `coreschemas/` of the package), whatever tree it came from, so a file
    included from several places is one document to the schema compiler (as it was when
    all files sat in one folder), not a duplicate definition.
    """

    def resolve(  # type: ignore[override]  # lxml-stubs omit the context argument
        self, system_url: str | None, public_id: str | None, context: object
    ) -> object:
        name = (system_url or "").replace("\\", "/").rsplit("/", 1)[-1]
        path = locate(name)
        if path is None:
            raise SchemaSetMissingError(f"schema include {name!r} is not in the catalog")
        folder = "coreschemas" if CATALOG.get(name, "").split("/")[-2:-1] == ["coreschemas"] else ""
        base = (own_schema_dir() / ".." / folder / name) if folder else own_schema_dir() / name
        return self.resolve_string(path.read_bytes(), context, base_url=_uri(base))


def _uri(path: Path) -> str:
    return Path(os.path.normpath(path)).as_uri()


def schema_parser() -> etree.XMLParser:
    """The parser for schema documents: no network, no entities, includes via the catalog."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(CatalogResolver())
    return parser


def linked_schema_tree(target: Path) -> Path:
    """A folder pair of symbolic links under `target` (`hl7_schemas/`, `coreschemas/`) to our
    schemas and the catalog's files, for tools without our resolver (`xmllint --schema`):
    links, not copies, in a folder the caller owns (a temporary one). Returns `hl7_schemas`."""
    base = schema_set_dir()
    hl7, core = target / "hl7_schemas", target / "coreschemas"
    hl7.mkdir(parents=True, exist_ok=True)
    core.mkdir(parents=True, exist_ok=True)
    for own in own_schema_dir().glob("*.xsd"):
        (hl7 / own.name).symlink_to(own.resolve())
    for name, rel in CATALOG.items():
        folder = core if rel.split("/")[-2] == "coreschemas" else hl7
        (folder / name).symlink_to((base / rel).resolve())
    return hl7
