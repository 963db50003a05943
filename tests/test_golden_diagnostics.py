"""Golden diagnostics: each broken spec in tests/golden/diagnostics has its expected `netc check` text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT, UPDATE_GOLDEN

from netc.compiler.check import check_file
from netc.diagnostics import SpecError

CASES = sorted((ROOT / "tests" / "golden" / "diagnostics").glob("*.yaml"))


def render(path: Path) -> tuple[str, SpecError]:
    rel = os.path.relpath(path, ROOT)
    cwd = os.getcwd()
    os.chdir(ROOT)  # diagnostics carry the path as given: keep it repository-relative
    try:
        check_file(rel)
    except SpecError as e:
        return str(e) + "\n", e
    finally:
        os.chdir(cwd)
    raise AssertionError(f"{rel} was accepted but is a golden *error* case")


def test_there_are_at_least_30_distinct_mistakes():
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_diagnostic(path: Path):
    text, err = render(path)
    expected = path.with_suffix(".out")
    if UPDATE_GOLDEN or not expected.exists():
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")
    # Every diagnostic is located and carries a message; errors point into the file.
    for d in err.diagnostics:
        assert d.message
        if d.kind != "import":
            assert d.span is not None and d.span.line >= 1 and d.span.col >= 1, d


def test_golden_files_have_no_orphans():
    outs = {p.stem for p in (ROOT / "tests" / "golden" / "diagnostics").glob("*.out")}
    assert outs <= {p.stem for p in CASES}
