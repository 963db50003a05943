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


# --------------------------------------------------------------------------- bounded, linear elaboration

from netc.compiler import elaborate as elab  # noqa: E402
from netc.compiler.check import check_text  # noqa: E402
from netc.diagnostics import SpecError  # noqa: E402


def _repeated(n: int) -> str:
    return f"netc: 1\nname: big\ninput: [8]\nmodel: Dense(8) * {n}\n"


def _elaboration_lines(text: str) -> int:
    """Lines executed inside compiler/elaborate.py while checking ``text``: work, not time."""
    count = 0
    target = elab.__file__

    def tracer(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != target:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        check_text(text)
    finally:
        sys.settrace(None)
    return count


def test_elaboration_work_grows_linearly_with_repeated_ops():
    small, large = _elaboration_lines(_repeated(300)), _elaboration_lines(_repeated(3000))
    assert large <= 11 * small, (small, large)  # quadratic naming made this ratio ~100


def test_dense_8_times_20000_is_checked_with_distinct_names():
    program = check_text(_repeated(20000))
    graph = program.main
    assert len(graph.nodes) == 20000
    assert len({n.name for n in graph.nodes}) == 20000
    assert graph.nodes[1].name == "dense_1" and graph.nodes[-1].name == "dense_19999"


def test_node_bound_is_refused_up_front_with_its_flag(capsys, tmp_path):
    with pytest.raises(SpecError) as e:
        check_text(_repeated(999_999_999))
    d = e.value.diagnostics[0]
    assert d.kind == "resource" and "more than 100,000 nodes" in d.message and "--max-nodes" in d.hint
    assert d.span is not None and d.span.line == 4
    path = tmp_path / "s.yaml"
    path.write_text(_repeated(5000), encoding="utf-8")
    assert main(["check", str(path), "--max-nodes", "1000"]) == 1
    assert "more than 1,000 nodes" in capsys.readouterr().err
    assert main(["check", str(path), "--max-nodes", "10000"]) == 0


@pytest.mark.parametrize("spec", [
    # blocks nested three deep, each repeating the one below 100 times: 10^6 expansions
    "netc: 1\nname: b\ninput: [8]\nblocks:\n  A: {out: ReLU * 100}\n  B: {out: A * 100}\n  C: {out: B * 100}\n"
    "model: C\n",
    # a block of renames only (no op node at all), repeated
    "netc: 1\nname: b\ninput: [8]\nblocks:\n  R:\n    a: in\n    b: a\n    out: b\nmodel: R * 60000\n",
])
def test_expansion_bombs_stop_at_the_node_bound(spec):
    with pytest.raises(SpecError) as e:
        check_text(spec)
    assert any("more than 100,000 nodes" in d.message for d in e.value.diagnostics)


# --------------------------------------------------------------------------- clean errors, never exit 70

HEAD = "netc: 1\nname: m\ninput: [8]\n"


def _case_files(tmp_path: Path) -> None:
    (tmp_path / "arith.yaml").write_text(HEAD + f"model: Dense({' + '.join(['1'] * 1000)})\n")
    (tmp_path / "int5000.yaml").write_text(HEAD + f"model: Dense({'9' * 5000})\n")
    (tmp_path / "int4300.yaml").write_text(HEAD + f"params: {{a: {'9' * 4300}}}\nmodel: Dense(a)\n")
    (tmp_path / "hex.yaml").write_text(HEAD + f"params: {{a: 0x{'f' * 4000}}}\nmodel: Dense(a)\n")
    (tmp_path / "product.yaml").write_text(HEAD + f"model: Dense({' * '.join(['9' * 90] * 50)})\n")
    (tmp_path / "repeat.yaml").write_text(HEAD + f"model: Dense(8) * {'9' * 5000}\n")
    (tmp_path / "nul.yaml").write_text(HEAD + 'imports: {lib: "a\\0b.yaml"}\nmodel: Dense(8)\n')
    os.symlink("loop2.yaml", tmp_path / "loop1.yaml")
    os.symlink("loop1.yaml", tmp_path / "loop2.yaml")
    (tmp_path / "loop.yaml").write_text(HEAD + "imports: {lib: loop1.yaml}\nmodel: Dense(8)\n")
    with open(tmp_path / "sparse.yaml", "wb") as f:
        f.truncate(20 * 1024**3)  # 20 GB, no blocks on disk
    (tmp_path / "sparse_import.yaml").write_text(HEAD + "imports: {lib: sparse.yaml}\nmodel: Dense(8)\n")
    (tmp_path / "zero_import.yaml").write_text(HEAD + "imports: {lib: /dev/zero}\nmodel: Dense(8)\n")
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "fifo_import.yaml").write_text(HEAD + "imports: {lib: fifo.yaml}\nmodel: Dense(8)\n")
    (tmp_path / "s.yaml").write_text(HEAD + "model: Dense(8)\n")


FAULTS = [
    (["check", "arith.yaml"], 1, "expression too deep"),
    (["check", "int5000.yaml"], 1, "limited to 100 digits"),
    (["check", "int4300.yaml"], 1, "limited to 100 digits"),
    (["check", "hex.yaml"], 1, "limited to 100 digits"),
    (["check", "product.yaml"], 1, "more than 100 digits"),
    (["check", "repeat.yaml"], 1, "repetition count of 5,000 digits"),
    (["check", "nul.yaml"], 1, "NUL byte"),
    (["check", "loop.yaml"], 1, "symlink loop"),
    (["check", "loop1.yaml"], 1, "symlink loop"),
    (["check", "sparse_import.yaml"], 1, "limited to 2,000,000"),
    (["check", "sparse.yaml"], 1, "limited to 2,000,000"),
    (["check", "/dev/zero"], 1, "not a regular file"),
    (["check", "zero_import.yaml"], 1, "not a regular file"),
    (["check", "fifo.yaml"], 1, "not a regular file"),
    (["check", "fifo_import.yaml"], 1, "not a regular file"),
    (["summary", "fifo.yaml"], 1, "not a regular file"),
    (["compile", "/dev/zero"], 1, "not a regular file"),
    (["schema", "-o", "no/such/dir/s.json"], 2, "no such directory"),
    (["compile", "s.yaml", "-o", "s.yaml"], 2, "would overwrite the input"),
    (["compile", "s.yaml", "-o", "./../{dir}/s.yaml"], 2, "would overwrite the input"),
    (["compile", "s.yaml", "-o", "no/such/dir/s.py"], 2, "no such directory"),
]


def test_hostile_cli_inputs_are_clean_errors(tmp_path):
    """Each case in a fresh process (a FIFO or /dev/zero must neither hang nor exhaust memory)."""
    _case_files(tmp_path)
    before = (tmp_path / "s.yaml").read_text()
    for args, code, needle in FAULTS:
        args = [a.replace("{dir}", tmp_path.name) for a in args]
        r = subprocess.run([sys.executable, "-m", "netc", *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (args, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
        assert "error[" in r.stderr, (args, r.stderr)  # located (file:line:col) or named (error[cli])
    assert (tmp_path / "s.yaml").read_text() == before  # the spec was not overwritten


def test_api_path_with_nul_is_a_spec_error():
    with pytest.raises(SpecError, match="NUL"):
        netc.load(Path("a\0b.yaml"))


def test_output_to_a_fifo_without_reader_is_refused_not_a_hang(tmp_path, capsys):
    """Found by bench/fuzz.py's CLI cases: writing to a FIFO nobody reads waited forever."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    for argv in (["compile", str(spec), "-o", str(fifo)], ["compile", str(spec), "--format", "ir", "-o", str(fifo)],
                 ["schema", "-o", str(fifo)]):
        assert main(argv) == 2
        assert "is a FIFO that no process reads" in capsys.readouterr().err


def test_param_of_the_wrong_type_is_located_at_the_parameter(tmp_path, capsys):
    """Found by bench/fuzz.py's CLI cases: --param n=<5,000 digits> was an error without a location."""
    spec = tmp_path / "p.yaml"
    spec.write_text("netc: 1\nname: m\nparams: {n: 8}\ninput: [8]\nmodel: Dense(n)\n")
    assert main(["check", str(spec), "--param", "n=" + "9" * 5000]) == 2  # command-line misuse, located
    err = capsys.readouterr().err
    assert f"{spec}:3:13: error[cli]: --param n='999" in err and "expected int like the default 8" in err
    assert len(err) < 500
