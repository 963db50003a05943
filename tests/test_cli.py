"""The front-end commands: check, summary, ops, schema — output, JSON and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from netc.cli import main

MLP = str(ROOT / "examples" / "mnist_mlp.yaml")
CNN = str(ROOT / "examples" / "cifar10_cnn.yaml")
BAD = str(ROOT / "tests" / "golden" / "diagnostics" / "11_dense_needs_flatten.yaml")


def test_check_ok_and_exit_0(capsys):
    assert main(["check", MLP, CNN]) == 0
    out = capsys.readouterr().out
    assert "101,770 params" in out and "122,570 params" in out


def test_check_error_exit_1_with_caret(capsys):
    assert main(["check", BAD]) == 1
    err = capsys.readouterr().err
    assert "error[shape]: Dense(10) expects (N, features), got (N, 64, 13, 13)" in err
    assert "^^^^^^^^^" in err and "hint: insert Flatten before Dense" in err


def test_check_json_for_editors(capsys):
    assert main(["check", "--format", "json", BAD, MLP]) == 1
    diags = json.loads(capsys.readouterr().out)
    assert len(diags) == 1
    d = diags[0]
    assert set(d) == {"file", "line", "column", "end_line", "end_column", "severity", "code", "message", "hint"}
    assert (d["line"], d["column"], d["end_column"], d["code"]) == (4, 67, 76, "shape")


def test_summary_json_and_memory(capsys):
    assert main(["summary", CNN, "--format", "json", "--batch-size", "64"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["total_params"] == 122_570
    assert r["nodes"][0] == {"name": "conv2d", "op": "Conv2D", "shape": ["N", 32, 30, 30], "params": 896,
                             "macs": 777_600, "line": 7}
    assert r["memory"]["params_float32_bytes"] == 122_570 * 4
    assert r["memory"]["activations_bf16_bytes"] * 2 == r["memory"]["activations_float32_bytes"]


def test_summary_text(capsys):
    assert main(["summary", CNN]) == 0
    out = capsys.readouterr().out
    assert "total params: 122,570" in out and "(N, 64, 4, 4)" in out


def test_ops_lists_every_registry_op(capsys):
    from netc.compiler.registry import REGISTRY

    assert main(["ops", "--format", "json"]) == 0
    ops = json.loads(capsys.readouterr().out)
    assert {o["name"] for o in ops} == set(REGISTRY.ops)
    assert main(["ops"]) == 0
    assert "Conv2D(filters, kernel, stride=1" in capsys.readouterr().out


def test_schema_command_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "netc spec"


@pytest.mark.parametrize("argv,code", [
    (["check"], 2),
    (["check", "--bogus", MLP], 2),
    (["frobnicate"], 2),
    (["summary", MLP, "--batch-size", "0"], 2),
    (["summary", MLP, "--format", "xml"], 2),
    ([], 2),
])
def test_cli_misuse_exits_2(argv, code, capsys):
    with pytest.raises(SystemExit) as info:
        rc = main(argv)
        raise SystemExit(rc)
    assert info.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_param_override_errors_are_clean(capsys):
    assert main(["check", MLP, "--param", "classes=3"]) == 2  # a usage mistake, like an unknown --set (issue 18)
    assert "no parameter 'classes'" in capsys.readouterr().err
    assert main(["check", MLP, "--param", "oops"]) == 2


def test_python_dash_m_netc_works():
    out = subprocess.run([sys.executable, "-m", "netc", "check", MLP], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout
