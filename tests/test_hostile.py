"""Hostile inputs (issue 21): no input executes code, hangs, or ends in a traceback."""

from __future__ import annotations

import ast
import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import netc
from netc.backend.emit import source_text
from netc.cli import main

SPEC = "netc: 1\nname: m\ninput: [8]\nmodel: Dense(8) → ReLU → Dense(2)\n"

# --------------------------------------------------------------------------- generated code is data

# Each payload, if it ever ran, sets builtins.NETC_PWNED; the pieces around it try to escape a
# docstring, a `#` comment or a string literal of the emitted source.
PAYLOAD = '__import__("builtins").__setattr__("NETC_PWNED", 1)'
PIECES = ['"""', "'''", '"', "'", "\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0c", "\t", "\\", "\\n",
          "#", "\udcff", "\udc80", "é", "→", " ", "        ", "x", ".yaml", PAYLOAD, "\n" + PAYLOAD + "\n",
          '"""\n' + PAYLOAD + '\n"""', "\n        " + PAYLOAD + "\n", "\\\n" + PAYLOAD]
hostile_text = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)


def _pwned() -> bool:
    return bool(getattr(builtins, "NETC_PWNED", False)) or bool(os.environ.get("NETC_PWNED"))


def _hostile_spec(tmp_path: Path, name: str) -> Path:
    """A valid spec saved under a hostile file name (skipped when the OS refuses the name)."""
    assume(len(os.fsencode(name)) < 250)
    path = tmp_path / name
    try:
        path.write_text(SPEC, encoding="utf-8")
    except (OSError, ValueError):
        assume(False)
    return path


@given(hostile_text | st.text(max_size=40))
@example('"""\n' + PAYLOAD + '\n"""')
@example("\x00\u2028\\")
def test_source_text_cannot_leave_a_comment_string_or_docstring(text):
    safe = source_text(text)
    assert safe.isprintable() and "\n" not in safe
    safe.encode("utf-8")  # no lone surrogates
    assert ast.literal_eval('"' + safe + '"') == text
    assert ast.literal_eval('"""' + safe + '"""') == text
    tree = ast.parse(f'"""{safe}"""\nx = 1  # {safe}\n')
    assert len(tree.body) == 2


def _check_source(source: str) -> None:
    compile(source, "<emitted>", "exec")
    assert not _pwned()


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(name=hostile_text)
@example(name='a"""\n' + PAYLOAD + '\n"""b.yaml')
@example(name="x\n        " + PAYLOAD + "\n.yaml")
@example(name="\udcff\u2028\\.yaml")
def test_hostile_file_name_through_netc_build(tmp_path, name):
    path = _hostile_spec(tmp_path, name)
    module = netc.build(path)
    assert not _pwned()
    assert type(module).__name__ == "Model"
    _check_source(netc.compile_source(path))


@SETTINGS
@given(name=hostile_text)
@example(name='a"""\n' + PAYLOAD + '\n"""b.yaml')
@example(name="x\n        " + PAYLOAD + "\n.yaml")
def test_hostile_file_name_through_netc_compile(tmp_path, name, capsys):
    path = _hostile_spec(tmp_path, name)
    out = tmp_path / "out.py"
    assert main(["compile", str(path), "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    _check_source(source)
    namespace: dict[str, object] = {}
    exec(compile(source, str(out), "exec"), namespace)  # run what `netc compile` wrote
    assert not _pwned() and "Model" in namespace


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=hostile_text)
@example(name='a"""\n' + PAYLOAD + '\n"""b.yaml')
def test_hostile_file_name_through_export(tmp_path, name, capsys):
    """``netc compile --format torchscript`` (the export path) builds the module from the same source."""
    path = _hostile_spec(tmp_path, name)
    out = tmp_path / "model.pt"
    assert main(["compile", str(path), "--format", "torchscript", "-o", str(out)]) == 0
    assert out.stat().st_size > 0 and not _pwned()


def test_hostile_file_name_through_the_cli_process(tmp_path):
    path = tmp_path / 'a"""\n__import__("os").mkdir("PWNED")\n"""\udcff\u2028.yaml'
    path.write_text(SPEC, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "netc", "compile", os.fsencode(path), "-o", "out.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    source = (tmp_path / "out.py").read_text(encoding="utf-8")
    compile(source, "out.py", "exec")
    r = subprocess.run([sys.executable, "out.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "PWNED").exists()
