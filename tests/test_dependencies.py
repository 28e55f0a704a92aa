"""Every import comes from a declared dependency, and every declared dependency is used.

A package that is on the machine only because something else installed it (as `click`
came with older typer) is not a dependency: this test reads every `import` in
`prefetch/`, `tests/` and `bench/` with `ast`, maps each top-level module to the
distribution that provides it (`importlib.metadata.packages_distributions`), and requires
that distribution in `[project] dependencies` (for `prefetch/`) or in those plus the
`test` extra (for `tests/` and `bench/`). CI installs into a fresh virtual environment, so
an undeclared package fails there too; this test names the file and the import.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"prefetch"}

# Declared but never imported by name, each for a reason.
USED_WITHOUT_IMPORT = {
    "psycopg": "the PostgreSQL driver SQLAlchemy loads from a postgresql+psycopg:// URL",
    "pytest-timeout": "pytest plugin (timeout = ... in [tool.pytest.ini_options])",
    "ruff": "lint and format tool run by .ci/run",
    "mypy": "type checker run by .ci/run",
    "lxml-stubs": "type stubs for mypy",
    "types-requests": "type stubs for mypy",
    "httpx2": "the HTTP client FastAPI's TestClient (starlette.testclient) runs on",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return _norm(match.group(0))


def declared() -> tuple[set[str], set[str]]:
    """(runtime, runtime + every extra) distribution names, normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    extras = {
        _requirement_name(r) for reqs in project["optional-dependencies"].values() for r in reqs
    }
    return runtime, runtime | extras


def _local_modules(folder: Path) -> set[str]:
    """Helper modules the tests or benches import by bare name (`sec_helpers`, ...)."""
    return {p.stem for p in folder.rglob("*.py")} | {
        p.name for p in folder.rglob("*") if p.is_dir()
    }


def imports(folder: Path) -> Iterator[tuple[Path, int, str]]:
    """(file, line, top-level module) of every absolute import under `folder`."""
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, node.lineno, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.lineno, node.module.split(".")[0]


def undeclared(folder: Path, allowed: set[str], *also_local: Path) -> list[str]:
    """`file:line: module` for each import whose distribution is not in `allowed`
    (modules of `folder` and of the `also_local` folders are the project's own)."""
    providers = packages_distributions()
    local = _local_modules(folder) | FIRST_PARTY
    for other in also_local:
        local |= _local_modules(other)
    problems = []
    for path, line, module in imports(folder):
        if module in sys.stdlib_module_names or module in local or module == "__future__":
            continue
        dists = {_norm(d) for d in providers.get(module, [])}
        if not dists & allowed:
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            problems.append(f"{where}:{line}: {module} (from {sorted(dists) or 'nothing'})")
    return problems


def test_package_imports_only_runtime_dependencies() -> None:
    runtime, _ = declared()
    assert undeclared(ROOT / "prefetch", runtime) == []


def test_tests_and_benches_import_only_declared_dependencies() -> None:
    _, everything = declared()
    # tests/bench tests the benches' own helpers (`pacer_bound`)
    assert undeclared(ROOT / "tests", everything, ROOT / "bench") == []
    assert undeclared(ROOT / "bench", everything) == []


def test_every_declared_dependency_is_imported_or_has_a_reason() -> None:
    _, everything = declared()
    providers = packages_distributions()
    used: set[str] = set()
    for folder in ("prefetch", "tests", "bench"):
        for _path, _line, module in imports(ROOT / folder):
            used |= {_norm(d) for d in providers.get(module, [])}
    unused = everything - used - {_norm(n) for n in USED_WITHOUT_IMPORT}
    assert unused == set(), f"declared but never imported: {sorted(unused)}"


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    # The check itself can fail: an import of a package that is installed (pytest) but
    # not in the allowed set is reported with its file and line.
    (tmp_path / "mod.py").write_text("import os\n\nimport pytest\n")
    assert undeclared(tmp_path, {"lxml"}) == [f"{tmp_path / 'mod.py'}:3: pytest (from ['pytest'])"]
    assert undeclared(tmp_path, {"pytest"}) == []
