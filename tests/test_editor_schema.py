"""The schema as editors use it: the real `check-jsonschema` CLI (a YAML-speaking validator like
the one in yaml-language-server) accepts every example and spec and rejects every file of
tests/golden/schema_broken/; every property carries a description (the hover text in editors)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT, SPECS

from netc.compiler.check import check_file
from netc.diagnostics import SpecError
from netc.dsl.schema import SCHEMA_PATH

BROKEN = sorted((ROOT / "tests" / "golden" / "schema_broken").glob("*.yaml"))


def _check_jsonschema(files: list, *extra: str) -> subprocess.CompletedProcess:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:  # pragma: no cover
        pytest.fail("check-jsonschema is not installed: pip install -e '.[test]'")
    cmd = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_PATH), *extra, *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_every_example_and_spec_passes_check_jsonschema():
    out = _check_jsonschema(EXAMPLES + SPECS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok -- validation done" in out.stdout


def test_every_broken_file_fails_check_jsonschema():
    assert len(BROKEN) >= 8
    out = _check_jsonschema(BROKEN, "-o", "json")
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert not report["parse_errors"], report["parse_errors"]  # each is valid YAML: the schema rejects it
    failed = {(ROOT / e["filename"]).resolve() for e in report["errors"]}
    assert [p.name for p in BROKEN if p.resolve() not in failed] == []


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_file_fails_netc_check_with_a_located_schema_error(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=")
    target = (path.parent / text.splitlines()[0].split("=", 1)[1]).resolve()
    assert target == SCHEMA_PATH.resolve()  # opened in an editor, the file is underlined too
    with pytest.raises(SpecError) as err:
        check_file(path)
    d = err.value.diagnostics[0]
    assert d.kind == "schema" and d.span is not None and d.span.file == str(path)


def _properties(node, path="#"):
    """(path, name, schema) of every property declared anywhere in the schema."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{path}/properties/{name}", name, sub
        for k, v in node.items():
            yield from _properties(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _properties(v, f"{path}/{i}")


def test_every_property_has_a_description():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    props = list(_properties(schema))
    assert len(props) > 150  # op arguments included
    missing = [p for p, _, sub in props if not (isinstance(sub, dict) and str(sub.get("description", "")).strip())]
    assert missing == []
    for name, sub in schema["definitions"].items():
        assert sub.get("description"), f"definitions/{name}"
