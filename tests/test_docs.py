"""Every complete spec shown in the docs checks (so the docs cannot drift from the language)."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from netc.compiler.check import check_text

DOCS = [ROOT / "docs" / "language.md", ROOT / "README.md", ROOT / "docs" / "tuning.md", ROOT / "docs" / "training.md",
        ROOT / "docs" / "data.md"]
BLOCKS = [(p.name, i, m.group(1)) for p in DOCS if p.exists()
          for i, m in enumerate(re.finditer(r"```yaml\n(.*?)```", p.read_text(encoding="utf-8"), re.S))
          if re.search(r"^netc: 1", m.group(1), re.M)]


def test_docs_have_complete_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("doc,i,text", BLOCKS, ids=[f"{d}#{i}" for d, i, _ in BLOCKS])
def test_doc_example_checks(doc, i, text):
    check_text(text, f"{doc}#{i}")


PY_DOCS = [ROOT / "docs" / "engine.md", ROOT / "docs" / "data.md", ROOT / "docs" / "inference.md"]
PY_BLOCKS = [(p.name, i, m.group(1)) for p in PY_DOCS if p.exists()
             for i, m in enumerate(re.finditer(r"```python\n(.*?)```", p.read_text(encoding="utf-8"), re.S))]


def test_python_docs_have_examples():
    assert len(PY_BLOCKS) >= 1


@pytest.mark.parametrize("doc,i,code", PY_BLOCKS, ids=[f"{d}#py{i}" for d, i, _ in PY_BLOCKS])
def test_doc_python_example_runs(doc, i, code):
    """Python examples in the docs run as written (each in a fresh namespace; their asserts are the test)."""
    if re.search(r"^\s*(import|from) (torch|netc\.runner)\b", code, re.M):
        pytest.importorskip("torch", reason="this example needs the [train] extra (.ci/run's torch-free job)")
    exec(compile(code, f"{doc}#py{i}", "exec"), {"__name__": f"doc_{i}"})  # noqa: S102 - our own docs
