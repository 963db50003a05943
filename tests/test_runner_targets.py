"""Targets and losses end to end: one-hot and probability targets, nll with LogSoftmax, class weights, plateau
on a metric, rotation; and the two Keras translations of the classic MNIST MLP, each trained on digits."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch

import netc
from netc.compiler.frontend import front_end
from netc.diagnostics import DataError, SpecError
from netc.runner.augment import Augment, rotate
from netc.runner.cli import inputs_of
from netc.runner.config import AugmentConfig
from netc.runner.data import fit_targets, load_data
from netc.runner.loop import evaluate, fit, seed_everything
from netc.runner.progress import Progress

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# Keras' mnist_mlp (Dense(512)-relu-Dropout(0.2)-Dense(512)-relu-Dropout(0.2)-Dense(10, softmax)) written the netc
# way: logits out, the softmax inside the loss. The digits are 8x8, so the input is 64 pixels, not 784.
KERAS_MLP = "Dense(512) → ReLU → Dropout(0.2) → Dense(512) → ReLU → Dropout(0.2) → Dense(10)"


def digits_npz(path, *, one_hot: bool, dtype=np.float32, n: int = 400):
    """A tiny embedded-digits subset as an .npz, labels as class ids or one-hot rows (Keras' to_categorical)."""
    d = np.load(netc.__file__.replace("__init__.py", "data/digits.npz"))
    x, y = d["data"][:n].astype(np.float32), d["target"][:n].astype(np.int64)
    np.savez(path, x=x, y=np.eye(10, dtype=dtype)[y] if one_hot else y)
    return path


def spec(model: str, train: str) -> str:
    return f"netc: 1\nname: t\ninput: [64]\nmodel: {model}\ntrain:\n" + "".join(
        f"  {line}\n" for line in train.strip().splitlines())


def run(text: str, tmp_path, epochs: int = 1):
    """Build and train a spec; returns (history, test loss before training, test loss after)."""
    checked = front_end(text)
    cfg = checked.train_config([f"train.epochs={epochs}", "train.plots=false"])
    seed_everything(cfg.seed)
    model = netc.build(checked.program)
    inputs = inputs_of(checked.program.main)
    before = evaluate(model, inputs, cfg)["loss"]
    result = fit(model, inputs, cfg, tmp_path / "run", progress=Progress(stream=io.StringIO(), plain=True))
    after = evaluate(model, inputs, cfg)["loss"]
    return result.history, before, after


# ---------------------------------------------------------------- the Keras MLP, both ways

def test_keras_mlp_with_logits_and_class_ids_trains(tmp_path):
    """(a) Keras' sparse_categorical_crossentropy: logits + cross_entropy on class ids."""
    path = digits_npz(tmp_path / "ids.npz", one_hot=False)
    history, before, after = run(spec(KERAS_MLP, f"data: {path}\nloss: cross_entropy\nbatch_size: 32"), tmp_path)
    assert after < 0.6 * before, (before, after)
    assert history[-1]["val"]["accuracy"] > 0.7


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_keras_mlp_with_one_hot_targets_trains(tmp_path, dtype):
    """(b) Keras' categorical_crossentropy on to_categorical labels: the same model, one-hot rows in the file."""
    path = digits_npz(tmp_path / "onehot.npz", one_hot=True, dtype=dtype)
    history, before, after = run(spec(KERAS_MLP, f"data: {path}\nloss: cross_entropy\nbatch_size: 32"), tmp_path)
    assert after < 0.6 * before, (before, after)
    assert history[-1]["val"]["accuracy"] > 0.7


def test_one_hot_rows_are_classification_without_a_loss_and_become_class_ids(tmp_path):
    path = digits_npz(tmp_path / "onehot.npz", one_hot=True)
    cfg = front_end(spec("Dense(10)", f"data: {path}")).train_config()
    ds = load_data(cfg, [("x", (64,), "float32")])
    assert ds.task == "classification"  # the data decide: one-hot rows are classes, not 10 regression targets
    ds = fit_targets(ds, (10,), "classification")
    want = np.load(netc.__file__.replace("__init__.py", "data/digits.npz"))["target"][:400]
    got = torch.cat([ds.train.y, ds.val.y, ds.test.y]).sort().values
    assert ds.train.y.dtype == torch.int64 and torch.equal(got, torch.from_numpy(np.sort(want).astype(np.int64)))


def test_one_hot_columns_of_a_csv_train(tmp_path):
    """A CSV whose class is spread over one-hot columns: train.data.labels names them; predict drops them all."""
    d = np.load(digits_npz(tmp_path / "ids.npz", one_hot=False, n=300))
    header = [f"p{i}" for i in range(64)] + [f"is_{c}" for c in range(10)]
    rows = np.hstack([d["x"], np.eye(10)[d["y"]]])
    np.savetxt(tmp_path / "digits.csv", rows, delimiter=",", header=",".join(header), comments="", fmt="%g")
    labels = "[" + ", ".join(header[64:]) + "]"
    text = spec("Dense(64) → ReLU → Dense(10)", f"data: {{path: {tmp_path / 'digits.csv'}, labels: {labels}}}\n"
                                               "batch_size: 32\noptimizer: adam(lr=3e-3)")
    history, before, after = run(text, tmp_path, epochs=2)
    assert after < 0.7 * before and history[-1]["val"]["accuracy"] > 0.6
    from netc.runner.sources import table_features

    x = table_features(tmp_path / "digits.csv", front_end(text).train_config().data)
    assert x.shape == (300, 64) and np.allclose(x, d["x"], atol=1e-4)  # written with %g


# ---------------------------------------------------------------- soft targets, bad rows

def test_probability_targets_train_and_metrics_read_the_likeliest_class(tmp_path):
    d = np.load(digits_npz(tmp_path / "ids.npz", one_hot=False))
    soft = np.full((len(d["y"]), 10), 0.02, np.float32)
    soft[np.arange(len(d["y"])), d["y"]] = 0.82  # rows sum to 1: knowledge-distillation style targets
    np.savez(tmp_path / "soft.npz", x=d["x"], y=soft)
    history, before, after = run(spec("Dense(64) → ReLU → Dense(10)", f"data: {tmp_path / 'soft.npz'}\n"
                                      "loss: cross_entropy\nbatch_size: 32\noptimizer: adam(lr=3e-3)"),
                                 tmp_path, epochs=3)
    assert after < before and history[-1]["val"]["accuracy"] > 0.6


def test_class_score_rows_that_are_not_probabilities_get_the_right_hint(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((20, 64), np.float32), y=np.full((20, 10), 0.5, np.float32))
    cfg = front_end(spec("Dense(10)", f"data: {tmp_path / 'bad.npz'}\nloss: cross_entropy")).train_config()
    with pytest.raises(DataError, match="one-hot or probabilities") as e:
        load_data(cfg, [("x", (64,), "float32")], task="classification")
    assert "row 0 sums to 5" in str(e.value) and "normalise each row" in e.value.hint


def test_class_score_rows_must_match_the_model_classes(tmp_path):
    cfg = front_end(spec("Dense(10)", f"data: {digits_npz(tmp_path / 'o.npz', one_hot=True)}")).train_config()
    ds = load_data(cfg, [("x", (64,), "float32")])
    with pytest.raises(DataError, match="rows of 10 class scores but the model outputs 7 classes"):
        fit_targets(ds, (7,), "classification")


# ---------------------------------------------------------------- nll, class weights, plateau on a metric

def test_nll_with_log_softmax_trains(tmp_path):
    path = digits_npz(tmp_path / "ids.npz", one_hot=False)
    _, before, after = run(spec("Dense(64) → ReLU → Dense(10) → LogSoftmax",
                                      f"data: {path}\nloss: nll(balanced=true)\nbatch_size: 32\n"
                                      "optimizer: adam(lr=3e-3)"), tmp_path, epochs=3)
    assert after < 0.6 * before


@pytest.mark.parametrize("loss, message", [
    ("cross_entropy(weight=[1, 2, 1])", "gives 3 class weights but model 't' outputs 10 classes"),
    ("focal(weight=[1, 1, 1, 1, 1, 1, 1, 1, 1, -1])", "needs non-negative numbers, got -1"),
    ("nll(weight=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], balanced=true)", "takes weight or balanced, not both"),
])
def test_class_weights_are_checked_by_netc_check(loss, message):
    """Located at train.loss before any data is read (the loss builder refuses the same at run time)."""
    with pytest.raises(SpecError, match=re.escape(message)) as e:
        front_end(spec("Dense(10)" + (" → LogSoftmax" if loss.startswith("nll") else ""),
                       f"data: x.npz\nloss: {loss}"))
    assert e.value.diagnostics[0].span.line == 7  # train.loss


def test_plateau_watches_a_logged_metric(tmp_path):
    """plateau(monitor=val.accuracy, mode=max): with factor 0.5 and patience 0 the rate halves on every epoch whose
    validation accuracy does not beat the best so far; the logged rates follow the logged accuracies."""
    path = digits_npz(tmp_path / "ids.npz", one_hot=False, n=200)
    history, _, _ = run(spec("Dense(10)", f"data: {path}\nbatch_size: 16\noptimizer: sgd(lr=0.5)\n"
                                          "schedule: plateau(monitor=val.accuracy, mode=max, patience=0, factor=0.5)"),
                        tmp_path, epochs=5)
    acc = [r["val"]["accuracy"] for r in history]
    lr, best = 0.5, -1.0
    for record, a in zip(history, acc):
        assert record["lr"] == pytest.approx(lr)
        lr, best = (lr, a) if a > best else (lr * 0.5, best)


# ---------------------------------------------------------------- rotation

def test_rotation_turns_images_about_their_centre():
    x = torch.randn(3, 2, 6, 6)
    r = rotate(x, torch.tensor([90.0, 180.0, 0.0]))
    assert min((r[0] - torch.rot90(x[0], k, (1, 2))).abs().max() for k in (1, 3)) < 1e-5
    assert torch.allclose(r[1], x[1].flip(-1).flip(-2), atol=1e-5)
    assert torch.allclose(r[2], x[2], atol=1e-5)


def test_rotation_augment_is_seeded_and_bounded():
    aug = Augment(AugmentConfig(rotation=15.0), [(1, 8, 8)], [torch.float32])
    x = torch.rand(16, 1, 8, 8)
    a, b = (aug((x,), torch.Generator().manual_seed(3))[0] for _ in range(2))
    c = aug((x,), torch.Generator().manual_seed(4))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    # at most 15 degrees: never as far from the original as a quarter turn
    assert ((a - x).abs().mean() < (rotate(x, torch.full((16,), 90.0)) - x).abs().mean())
    with pytest.raises(DataError, match="rotation"):
        Augment(AugmentConfig(rotation=10.0), [(64,)], [torch.float32])
