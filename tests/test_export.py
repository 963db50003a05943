"""``netc export`` of a trained run (ONNX checked in onnxruntime against ``netc predict``, TorchScript,
torch.export, Python source) and ``netc.load_run``; bad runs, formats and outputs are clean exits 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from netc.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SPEC = """\
netc: 1
name: tiny
input: [1, 8, 8]
model: Conv2D(4, 3, padding=same) → BatchNorm → ReLU → Flatten → Dropout(0.1) → Dense(10)
train:
  data: {source: digits, limit: 300}
  epochs: 1
  batch_size: 32
  plots: false
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A trained run (BatchNorm and Dropout: -O2 changes the graph) and 7 raw samples beside it."""
    import torch

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("export")
    (d / "s.yaml").write_text(SPEC, encoding="utf-8")
    assert main(["train", str(d / "s.yaml"), "--out", str(d / "run")]) == 0
    raw = np.load(Path(__file__).resolve().parent.parent / "netc" / "data" / "digits.npz")["data"][-7:]
    np.save(d / "x.npy", raw.astype(np.float32))
    return d


def _probs_of_predict(d: Path) -> np.ndarray:
    assert main(["predict", str(d / "run"), str(d / "x.npy"), "-o", str(d / "p.csv")]) == 0
    return np.loadtxt(d / "p.csv", delimiter=",", skiprows=1)[:, 1:]


def test_onnx_export_agrees_with_netc_predict_in_onnxruntime(run, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    assert main(["export", str(run / "run"), "--format", "onnx", "-o", str(run / "m.onnx")]) == 0
    assert "verified in onnxruntime" in capsys.readouterr().err
    x = np.load(run / "x.npy").reshape(-1, 1, 8, 8)  # raw pixel counts: the preprocessing is inside
    sess = ort.InferenceSession(str(run / "m.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert np.abs(probs - _probs_of_predict(run)).max() <= 1e-5


def test_torchscript_torch_export_and_python_match_load_run(run, capsys):
    import torch

    import netc

    trained = netc.load_run(run / "run")
    x = np.load(run / "x.npy")
    want = trained.outputs(x)
    _probs_of_predict(run)  # netc predict's class ids, in the first column
    assert trained.predict(x).tolist() == np.loadtxt(run / "p.csv", delimiter=",", skiprows=1)[:, 0].tolist()
    shift, scale = (torch.tensor(v) for v in (trained.stats["inputs"][0]["shift"], trained.stats["inputs"][0]["scale"]))
    assert torch.allclose(trained.preprocess(x)[0], (torch.from_numpy(x).reshape(-1, 1, 8, 8) - shift) / scale)
    xt = torch.from_numpy(x).reshape(-1, 1, 8, 8)
    assert main(["export", str(run / "run"), "--format", "torchscript", "-o", str(run / "m.pt")]) == 0
    assert (torch.jit.load(str(run / "m.pt"))(xt) - want).abs().max() <= 1e-5
    assert main(["export", str(run / "run"), "--format", "torch.export", "-o", str(run / "m.pt2")]) == 0
    assert (torch.export.load(str(run / "m.pt2")).module()(xt) - want).abs().max() <= 1e-5
    assert main(["export", str(run / "run"), "--format", "python", "-o", str(run / "tiny_model.py")]) == 0
    spec = importlib.util.spec_from_file_location("tiny_model", run / "tiny_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # our own export: readable source beside its safetensors weights
    assert (mod.predict(mod.load(), xt) - want).abs().max() <= 1e-5
    assert "tiny_model.safetensors" in capsys.readouterr().err


def test_bad_run_format_and_output_are_clean_usage_errors(run, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--format", "onnx"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["export", str(run / "run"), "--format", "tflite"])
    assert e.value.code == 2
    capsys.readouterr()
    assert main(["export", str(run / "run"), "-o", str(tmp_path / "missing" / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "hint:" in err and "Traceback" not in err
