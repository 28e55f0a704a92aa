"""The README's quick start is what CI runs: keep them in sync."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


def quick_start() -> list[str]:
    return [
        line[6:]
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("    $ ")
    ]


def test_readme_opens_with_exactly_two_commands() -> None:
    lines = quick_start()
    assert len(lines) == 2
    assert lines[0].endswith("prefetch demo")
    assert "pytest" in lines[1]


def test_ci_runs_the_readme_test_line() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sed -n 's/^    \\$ //p' README.md | sed -n 2p" in ci
    assert "PREFETCH_REQUIRE_POSTGRES=1" in ci
