"""Losses and metrics from an installed package (entry points netc.losses / netc.metrics), never from a spec.

The package is real: a module and its .dist-info with entry_points.txt, written to a temporary directory
that is put on sys.path, so importlib.metadata finds it as it finds any installed distribution.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import netc
from netc.compiler.frontend import front_end
from netc.compiler.train import metrics as declared_metrics
from netc.compiler.train import objectives as declared_losses
from netc.diagnostics import SpecError, UsageError
from netc.runner.cli import inputs_of
from netc.runner.loop import evaluate, fit, seed_everything
from netc.runner.objectives import LossContext, build_loss, resolve_loss
from netc.runner.progress import Progress

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

PLUGIN = '''
"""A third-party package adding one loss and one metric to netc."""
import numpy as np
from netc.compiler.train.metrics import Metric
from netc.compiler.train.objectives import LossEntry
from netc.compiler.train.registry import Param


def poly1(ctx, epsilon):
    import torch.nn.functional as F

    def loss(out, y):  # PolyLoss (Leng et al. 2022): cross-entropy + epsilon * (1 - p_true)
        ce = F.cross_entropy(out, y, reduction="none")
        return (ce + epsilon * (1 - out.softmax(-1).gather(1, y[:, None])[:, 0])).mean()
    return loss


def top3(o):
    best = np.argsort(-o.probs, axis=1)[:, :3]
    return float((best == o.y[:, None]).any(axis=1).mean())


LOSSES = [LossEntry("poly1", "cross-entropy plus epsilon * (1 - p_true)",
                    {"epsilon": Param(1.0, float, "weight of the polynomial term")}, build=poly1)]
METRICS = [Metric("top3", "the true class is among the three likeliest", "classification", "max", fn=top3,
                  needs_probs=True)]
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The package netc_poly, installed (module + dist-info) in a directory on sys.path."""
    (tmp_path / "netc_poly.py").write_text(PLUGIN)
    info = tmp_path / "netc_poly-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: netc-poly\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[netc.losses]\npoly = netc_poly\n\n[netc.metrics]\npoly = netc_poly\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # the tables look for plugins once per process: forget what an earlier test found
    monkeypatch.setattr(declared_losses.LOSSES, "plugins", None)
    monkeypatch.setattr(declared_metrics.METRICS, "plugins", None)
    yield
    monkeypatch.setattr(declared_losses.LOSSES, "plugins", None)
    monkeypatch.setattr(declared_metrics.METRICS, "plugins", None)


def spec(path, train: str) -> str:
    return textwrap.dedent(f"""\
        netc: 1
        name: plug
        input: [64]
        model: Dense(64) → ReLU → Dense(10)
        train:
          data: {path}
          batch_size: 32
          optimizer: adam(lr=3e-3)
        """) + "".join(f"  {line}\n" for line in train.strip().splitlines())


def digits(tmp_path):
    d = np.load(netc.__file__.replace("__init__.py", "data/digits.npz"))
    np.savez(tmp_path / "d.npz", x=d["data"][:400].astype(np.float32), y=d["target"][:400].astype(np.int64))
    return tmp_path / "d.npz"


def test_plugin_loss_and_metric_train_one_epoch(installed, tmp_path):
    text = spec(digits(tmp_path), "loss: poly1(epsilon=2)\nmetrics: [accuracy, top3]\n"
                                  "early_stopping: {monitor: val.top3, patience: 2}")
    checked = front_end(text)  # netc check: the names and the argument resolve through the entry points
    cfg = checked.train_config(["train.epochs=1", "train.plots=false"])
    assert cfg.monitor_mode() == "max"  # the plugin metric's own direction
    seed_everything(0)
    model, inputs = netc.build(checked.program), inputs_of(checked.program.main)
    before = evaluate(model, inputs, cfg)
    result = fit(model, inputs, cfg, tmp_path / "run", progress=Progress(stream=io.StringIO(), plain=True))
    record = result.history[0]
    assert 0 < record["val"]["top3"] <= 1 and record["val"]["top3"] >= record["val"]["accuracy"]
    assert result.test["loss"] < 0.9 * before["loss"] and result.test["top3"] > before["top3"]


def test_plugin_loss_is_what_the_package_computes(installed):
    out, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    got = build_loss(resolve_loss("poly1(epsilon=0.5)"), LossContext(num_classes=10))(out, y)
    p_true = out.softmax(-1)[torch.arange(8), y]
    assert torch.allclose(got, (F.cross_entropy(out, y, reduction="none") + 0.5 * (1 - p_true)).mean())


def test_plugin_names_get_hints_and_unknown_names_are_refused(installed, tmp_path):
    with pytest.raises(SpecError) as e:
        front_end(spec(digits(tmp_path), "loss: poly(epsilon=2)"))
    assert "unknown loss 'poly'" in str(e.value) and "did you mean 'poly1'" in str(e.value)
    with pytest.raises(SpecError, match="poly1 has no argument 'eps'"):
        front_end(spec(digits(tmp_path), "loss: poly1(eps=2)"))


def test_without_the_package_the_names_are_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(declared_losses.LOSSES, "plugins", None)
    with pytest.raises(SpecError, match="unknown loss 'poly1'"):
        front_end(spec(digits(tmp_path), "loss: poly1"))
    monkeypatch.setattr(declared_losses.LOSSES, "plugins", None)


def test_a_broken_plugin_is_named_not_a_traceback(tmp_path, monkeypatch):
    (tmp_path / "netc_broken.py").write_text("raise ImportError('needs libfoo')\n")
    info = tmp_path / "netc_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: netc-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[netc.losses]\nbroken = netc_broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(declared_losses.LOSSES, "plugins", None)
    with pytest.raises(UsageError, match="'netc_broken' \\(netc.losses\\) failed to load: ImportError: needs libfoo"):
        front_end(spec(digits(tmp_path), "loss: poly1"))
    monkeypatch.setattr(declared_losses.LOSSES, "plugins", None)
