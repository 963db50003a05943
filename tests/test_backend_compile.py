"""``netc compile``: Python source that runs without netc, the IR text, TorchScript and ONNX."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

import netc
from netc.backend import emit
from netc.cli import main
from netc.compiler.passes import run_pipeline

CIFAR = ROOT / "examples" / "cifar10_cnn.yaml"
MNIST = ROOT / "examples" / "mnist_mlp.yaml"
LSTM_SPEC = "netc: 1\nname: seq\ninput: [T, 3]\nmodel: LSTM(4, bidirectional=true) → Dense(2)\n"
GAN = ("netc: 1\nname: gan\nmodels:\n  generator:\n    input: [4]\n    model: Dense(16) → Tanh\n"
       "  discriminator:\n    input: [16]\n    model: Dense(1)\n")


def _netc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netc", *args], capture_output=True, text=True, cwd=cwd)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_compiled_classics_run_in_a_fresh_interpreter_without_netc(tmp_path):
    for spec, module in ((CIFAR, "m"), (MNIST, "mlp")):
        out = _netc("compile", str(spec), "-o", str(tmp_path / f"{module}.py"))
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
    # -I: no user site, no PYTHONPATH; -S: no .pth files, so the editable install of netc is
    # invisible. Only the directory holding torch is put on the path, after the output dir.
    torch_dir = str(Path(torch.__file__).resolve().parents[1])
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(tmp_path)!r}, {torch_dir!r}]\n"
        "try:\n    import netc\nexcept ImportError:\n    pass\n"
        "else:\n    raise SystemExit('netc is importable: the test would prove nothing')\n"
        "import torch\n"
        "from m import Model\n"
        "model = Model()\n"
        "print(sum(p.numel() for p in model.parameters()), tuple(model(torch.randn(2, 3, 32, 32)).shape))\n"
        "from mlp import Model\n"
        "model = Model()\n"
        "print(sum(p.numel() for p in model.parameters()), tuple(model(torch.randn(2, 1, 28, 28)).shape))\n"
    )
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["122570 (2, 10)", "101770 (2, 10)"]


def _as_written() -> list[str]:
    """Flags for an unoptimised compile: -O0 (the default is -O2)."""
    return ["-O0"]


def test_compile_python_to_stdout_is_compile_source(capsys):
    assert main(["compile", str(CIFAR), *_as_written()]) == 0
    assert capsys.readouterr().out == netc.compile_source(CIFAR)


def test_default_compile_is_optimised(capsys):
    program = netc.load(CIFAR)
    optimised = run_pipeline(dataclasses.replace(program.main, training=False), 2, None, None)
    assert main(["compile", str(CIFAR)]) == 0
    out = capsys.readouterr().out
    assert out == emit.program_source(program, graphs={program.main.name: optimised})


def test_compile_python_does_not_import_torch(tmp_path):
    code = ("import sys\nfrom netc.cli import main\n"
            f"assert main(['compile', {str(CIFAR)!r}, '-o', {str(tmp_path / 'm.py')!r}]) == 0\n"
            "assert 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stderr and "122,570 parameters" in out.stderr


def test_compile_ir_prints_the_graph_text(capsys):
    assert main(["compile", str(CIFAR), "--format", "ir", *_as_written()]) == 0
    assert capsys.readouterr().out == netc.load(CIFAR).main.text() + "\n"


def test_compile_multi_model_python_and_model_choice(tmp_path, capsys):
    spec = _write(tmp_path, "gan.yaml", GAN)
    assert main(["compile", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "class Generator(nn.Module)" in out and "class Discriminator(nn.Module)" in out
    assert main(["compile", str(spec), "--model", "discriminator"]) == 0
    out = capsys.readouterr().out
    assert "class Discriminator(nn.Module)" in out and "Generator" not in out
    assert main(["compile", str(spec), "--format", "onnx"]) == 2
    assert "--model generator" in capsys.readouterr().err
    assert main(["compile", str(spec), "--model", "critic"]) == 2


def test_errors_are_diagnostics_not_tracebacks(tmp_path):
    bad = _write(tmp_path, "bad.yaml", "netc: 1\ninput: [3, 8, 8]\nmodel: Conv2D(4, 3) → Dense(2)\n")
    out = _netc("compile", str(bad))
    assert out.returncode == 1 and "error[shape]" in out.stderr and "Traceback" not in out.stderr
    blocks = _write(tmp_path, "blocks.yaml", "netc: 1\nblocks:\n  Unit(c): Dense(c) → ReLU\n")
    out = _netc("compile", str(blocks))
    assert out.returncode == 2 and "only blocks" in out.stderr and "Traceback" not in out.stderr
    out = _netc("compile", str(MNIST), "-o", str(tmp_path / "no" / "such" / "dir" / "m.py"))
    assert out.returncode == 2 and "cannot write" in out.stderr and "Traceback" not in out.stderr


# ----------------------------------------------------------------------------- TorchScript

@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("text", [CIFAR.read_text(encoding="utf-8"), LSTM_SPEC], ids=["cifar10_cnn", "bilstm"])
def test_torchscript_export_loads_and_matches(tmp_path, capsys, text):
    spec = _write(tmp_path, "spec.yaml", text)
    out = tmp_path / "model.pt"
    assert main(["compile", str(spec), "--format", "torchscript", "-o", str(out)]) == 0
    assert "TorchScript (scripted)" in capsys.readouterr().err
    loaded = torch.jit.load(str(out))
    module = netc.build(spec, train=False)
    module.load_state_dict(loaded.state_dict())
    x = torch.randn(3, 3, 32, 32) if "cifar" in text else torch.randn(3, 6, 3)
    torch.testing.assert_close(loaded(x), module(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_falls_back_to_tracing(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("cannot script this\nwith details")

    monkeypatch.setattr(torch.jit, "script", refuse)
    out = tmp_path / "m.pt"
    assert main(["compile", str(MNIST), "--format", "torchscript", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "torch.jit.script failed (RuntimeError: cannot script this)" in err and "tracing instead" in err
    assert "TorchScript (traced)" in err
    assert torch.jit.load(str(out))(torch.randn(4, 1, 28, 28)).shape == (4, 10)


# ----------------------------------------------------------------------------- ONNX

def test_onnx_without_the_onnx_package_says_what_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert main(["compile", str(MNIST), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2  # a missing extra
    err = capsys.readouterr().err
    assert "needs the ONNX extra" in err and "pip install 'netc[onnx]'" in err and "Traceback" not in err


def test_onnx_export_failure_is_a_clear_message(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnx")

    def fail(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator frobnicate. Please report it")

    monkeypatch.setattr(torch.onnx, "export", fail)
    assert main(["compile", str(MNIST), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "cannot be exported to ONNX: RuntimeError: Unsupported: ONNX export of operator frobnicate" in err
    assert "Please report" not in err and "Traceback" not in err


ENCODER_SPEC = ("netc: 1\nname: enc\ninput: {shape: [T], dtype: int64}\nmodel: Embedding(20, 8) → "
                "PositionalEncoding(max_len=16) → TransformerEncoder(1, 2, ff=16) → SeqPool → Dense(2)\n")


@pytest.mark.parametrize("text", [CIFAR.read_text(encoding="utf-8"), LSTM_SPEC, ENCODER_SPEC],
                         ids=["cifar10_cnn", "bilstm", "transformer"])
def test_onnx_export_is_verified_in_onnxruntime(tmp_path, capsys, text):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    spec = _write(tmp_path, "spec.yaml", text)
    out = tmp_path / "model.onnx"
    assert main(["compile", str(spec), "--format", "onnx", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "verified in onnxruntime" in err and "max abs difference" in err
    # The file is a real, batch-dynamic model: run it at yet another batch size.
    program = netc.load(spec)
    graph = program.main
    from netc.backend.build import example_inputs

    xs = example_inputs(graph, batch=5, seed=3)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {i.name: x.numpy() for i, x in zip(graph.inputs, xs, strict=True)})
    assert y.shape[0] == 5


def test_compile_applies_param_overrides(tmp_path, capsys):
    spec = _write(tmp_path, "p.yaml", "netc: 1\nparams: {width: 8}\ninput: [4]\nmodel: Dense(width) → Dense(2)\n")
    assert main(["compile", str(spec), "--param", "width=16"]) == 0
    assert "self.dense = nn.Linear(4, 16)" in capsys.readouterr().out
