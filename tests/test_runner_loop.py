"""The training loop end to end on embedded data: accuracy, resume exactness, NaN stop, early stopping, outputs."""

from __future__ import annotations

import io
import json
import math
import os
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from netc.diagnostics import CheckpointError
from netc.runner import checkpoint as ckpt
from netc.runner.config import TrainConfig
from netc.runner.data import load_data
from netc.runner.loop import (
    TrainingDiverged,
    TrainingInterrupted,
    evaluate,
    fit,
    predict,
    seed_everything,
    to_outputs,
)
from netc.runner.progress import Progress

FLAT = [("image", (64,), "float32")]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
IMAGE = [("image", (1, 8, 8), "float32")]


def mlp(seed=0, dropout=0.0, hidden=64, out=10):
    seed_everything(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                               torch.nn.Linear(hidden, out))


def quiet():
    return Progress(stream=io.StringIO(), plain=True)


def cfg_of(**kw) -> TrainConfig:
    base = {"data": "digits", "epochs": 2, "batch_size": 32, "optimizer": "adam(lr=3e-3)", "plots": False}
    base.update(kw)
    return TrainConfig.from_dict(base)


def losses(history):
    return [(r["train"]["loss"], r.get("val", {}).get("loss")) for r in history]


# ---------------------------------------------------------------- behaviour

def test_digits_mlp_learns_and_writes_the_run(tmp_path):
    cfg = cfg_of(metrics=["accuracy", "f1", "auc_roc"], plots=True)
    out = io.StringIO()
    r = fit(mlp(), FLAT, cfg, tmp_path, progress=Progress(stream=out, plain=True))
    assert r.test["accuracy"] > 0.90
    assert set(r.test) == {"loss", "accuracy", "f1", "auc_roc"}
    assert r.epochs_run == 2 and r.monitor == "val.loss" and r.best_epoch in (1, 2)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"metrics.jsonl", "config.json", "results.json", "best", "last", "loss.png", "metrics.png",
            "confusion_matrix.png"} <= names
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in records] == [1, 2]
    assert set(records[0]) == {"epoch", "epochs", "train", "val", "lr", "seconds"}
    assert set(records[0]["val"]) == {"loss", "accuracy", "f1", "auc_roc"}
    assert records == r.history
    text = out.getvalue()
    assert "epoch 1/2  train.loss" in text and "test  loss" in text
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["test"] == pytest.approx(r.test)
    assert len(results["report"]["confusion_matrix"]) == 10
    assert sum(map(sum, results["report"]["confusion_matrix"])) == 359  # 20% of 1797
    for png in ("loss.png", "metrics.png", "confusion_matrix.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_epoch_losses_as_a_hand_written_loop(tmp_path):
    """Differential: netc's loop and the idiomatic PyTorch loop give identical losses and weights."""
    cfg = cfg_of(epochs=2, metrics=[], optimizer="sgd(lr=0.05, momentum=0.9)")
    ds = load_data(cfg, FLAT)
    x, y = ds.train.xs[0].clone(), ds.train.y.clone()
    model = mlp(seed=3)
    reference = mlp(seed=3)
    r = fit(model, FLAT, cfg, tmp_path, data=ds, progress=quiet())
    seed_everything(cfg.seed)
    opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(cfg.seed)
    hand = []
    for _ in range(cfg.epochs):
        reference.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=g).split(cfg.batch_size):
            loss = F.cross_entropy(reference(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        hand.append(total / len(x))
    assert [rec["train"]["loss"] for rec in r.history] == pytest.approx(hand, abs=1e-6)
    last = mlp()
    ckpt.load_weights(last, tmp_path / "last")
    for a, b in zip(last.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_cnn_with_augmentation_and_clipping(tmp_path):
    seed_everything(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10))
    cfg = cfg_of(epochs=2, augment={"crop": 1, "flip": False, "noise": 0.05}, clip_grad_norm=1.0,
                 schedule="onecycle(max_lr=0.01)", metrics=["accuracy"])
    r = fit(cnn, IMAGE, cfg, tmp_path, progress=quiet())
    assert r.test["accuracy"] > 0.8


def test_sequence_view_of_digits_with_a_gru(tmp_path):
    class GRU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(8, 32, batch_first=True)
            self.head = torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    seed_everything(0)
    r = fit(GRU(), [("rows", ("T", 8), "float32")], cfg_of(epochs=1, optimizer="adam(lr=1e-2)"), tmp_path,
            progress=quiet())
    assert r.test["accuracy"] > 0.5


def test_series_forecast_reports_naive_baseline_and_predicts_in_units(tmp_path):
    seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    cfg = TrainConfig.from_dict({"data": "sunspots", "epochs": 3, "batch_size": 16, "plots": False,
                                 "optimizer": "adam(lr=1e-2)", "metrics": ["rmse", "mae", "r2"]})
    inputs = [("x", (12, 1), "float32")]
    r = fit(model, inputs, cfg, tmp_path, progress=quiet())
    assert set(r.test) == {"loss", "rmse", "mae", "r2", "naive_rmse"}
    assert r.test["naive_rmse"] > 10  # sunspot units, not normalised ones
    assert 5 < r.test["rmse"] < 100
    pre = json.loads((tmp_path / "config.json").read_text())["preprocess"]
    import statsmodels.api as sm

    series = torch.tensor(sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(), dtype=torch.float32)
    raw_windows = series.unfold(0, 12, 1)[:-1].unsqueeze(-1)  # (n, 12, 1) in sunspot units
    pred = predict(model, raw_windows, preprocess=pre)
    assert pred.shape == (len(raw_windows), 1)
    err = (pred[:, 0] - series[12:]).abs().mean()
    assert float(err) < 60 and float(pred.mean()) > 20  # back in data units


def test_binary_classification_with_bce(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    np.savez(tmp_path / "b.npz", x=x, y=y)
    seed_everything(0)
    model = torch.nn.Linear(5, 1)
    cfg = TrainConfig.from_dict({"data": str(tmp_path / "b.npz"), "loss": "bce", "epochs": 5, "plots": False,
                                 "optimizer": "adam(lr=5e-2)", "batch_size": 16,
                                 "metrics": ["accuracy", "auc_roc", "precision"]})
    r = fit(model, [("x", (5,), "float32")], cfg, tmp_path / "run", progress=quiet())
    assert r.test["accuracy"] > 0.9 and r.test["auc_roc"] > 0.95
    ev = evaluate(model, [("x", (5,), "float32")], cfg)
    assert ev["auc_roc"] == pytest.approx(r.test["auc_roc"])
    assert ev["report"]["classes"] == ["0", "1"]


def test_evaluate_matches_fit_and_sklearn(tmp_path):
    model = mlp()
    cfg = cfg_of(epochs=1, metrics=["accuracy", "precision", "recall", "f1", "auc_roc"])
    r = fit(model, FLAT, cfg, tmp_path, progress=quiet())
    ev = evaluate(model, FLAT, cfg, "test")
    for k, v in r.test.items():
        assert ev[k] == pytest.approx(v)
    ds = load_data(cfg, FLAT)
    logits = predict(model, ds.test.xs[0])
    o = to_outputs(ds, logits, ds.test.y)
    assert ev["accuracy"] == pytest.approx(skm.accuracy_score(o.y, o.pred))
    assert ev["f1"] == pytest.approx(skm.f1_score(o.y, o.pred, average="macro"))
    assert ev["auc_roc"] == pytest.approx(skm.roc_auc_score(o.y, o.probs, multi_class="ovr"))
    val = evaluate(model, FLAT, cfg, "val")
    assert val["split"] == "val" and val["samples"] == 180


# ---------------------------------------------------------------- resume

class Tripwire(torch.nn.Module):
    """Wraps a model; on the n-th training forward it raises (a crash) or sends SIGINT (Ctrl-C)."""

    def __init__(self, inner, at: int | None = None, action: str = "crash"):
        super().__init__()
        self.inner, self.at, self.action, self.calls = inner, at, action, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                if self.action == "crash":
                    raise RuntimeError("simulated crash")
                os.kill(os.getpid(), signal.SIGINT)
        return self.inner(x)


RESUME_CFG = {"data": {"source": "digits", "limit": 400}, "epochs": 4, "batch_size": 32, "plots": False,
              "optimizer": "adam(lr=3e-3)", "schedule": "cosine(warmup=1)", "augment": {"noise": 0.1},
              "metrics": ["accuracy"], "early_stopping": {"monitor": "val.accuracy", "patience": 10},
              "checkpoint_every": 1}


def _reference_run(tmp_path):
    cfg = TrainConfig.from_dict(RESUME_CFG)
    return fit(Tripwire(mlp(dropout=0.3)), FLAT, cfg, tmp_path / "ref", progress=quiet())


def test_resume_after_a_crash_continues_exactly(tmp_path):
    cfg = TrainConfig.from_dict(RESUME_CFG)
    ref = _reference_run(tmp_path)
    steps = math.ceil(400 * 0.7 / 32)  # 280 training samples
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(Tripwire(mlp(dropout=0.3), at=2 * steps + 3), FLAT, cfg, tmp_path / "run", progress=quiet())
    assert ckpt.load_state(tmp_path / "run" / "last")["epoch"] == 2
    resumed = fit(Tripwire(mlp(seed=99, dropout=0.3)), FLAT, cfg, tmp_path / "run", resume=tmp_path / "run",
                  progress=quiet())
    assert losses(resumed.history) == losses(ref.history)  # bit-exact on CPU
    assert resumed.test == ref.test
    assert [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] \
        == [1, 2, 3, 4]


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(tmp_path):
    cfg = TrainConfig.from_dict(RESUME_CFG)
    ref = _reference_run(tmp_path)
    out = io.StringIO()
    with pytest.raises(TrainingInterrupted) as e:
        fit(Tripwire(mlp(dropout=0.3), at=13, action="sigint"), FLAT, cfg, tmp_path / "run",
            progress=Progress(stream=out, plain=True))
    assert e.value.exit_code == 130
    assert "interrupted at epoch 2, step 4/9" in str(e.value)
    assert f"--resume {tmp_path / 'run'}" in e.value.hint
    assert "saving a resumable checkpoint" in out.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    state = ckpt.load_state(tmp_path / "run" / "last")
    assert state["epoch"] == 1 and state["cursor"]["batch"] == 4
    resumed = fit(Tripwire(mlp(seed=5, dropout=0.3)), FLAT, cfg, tmp_path / "run", resume=tmp_path / "run",
                  progress=quiet())
    assert losses(resumed.history) == losses(ref.history)


def test_resume_of_a_finished_run_only_tests(tmp_path):
    cfg = cfg_of(epochs=1)
    first = fit(mlp(), FLAT, cfg, tmp_path, progress=quiet())
    again = fit(mlp(seed=4), FLAT, cfg, tmp_path, resume=tmp_path, progress=quiet())
    assert again.history == first.history and again.test == pytest.approx(first.test)


def test_resume_with_another_model_is_refused(tmp_path):
    cfg = cfg_of(epochs=1)
    fit(mlp(), FLAT, cfg, tmp_path, progress=quiet())
    with pytest.raises(CheckpointError, match=r"shape of 0.weight: checkpoint \(64, 64\), model \(32, 64\)"):
        fit(mlp(hidden=32), FLAT, cfg.apply_overrides(["train.epochs=2"]), tmp_path, resume=tmp_path,
            progress=quiet())


# ---------------------------------------------------------------- stopping

class NaNAfter(torch.nn.Module):
    def __init__(self, inner, after: int):
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                return out * float("nan")
        return out


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path):
    cfg = cfg_of(epochs=3, checkpoint_every=1)
    steps = math.ceil(1797 * 0.7 / 32)
    with pytest.raises(TrainingDiverged) as e:
        fit(NaNAfter(mlp(), after=steps + 4), FLAT, cfg, tmp_path, progress=quiet())
    assert e.value.exit_code == 3
    assert f"loss became NaN/Inf at epoch 2, step 5/{steps}" in str(e.value)
    assert "last good checkpoint (epoch 1)" in str(e.value)
    assert "learning rate" in e.value.hint
    assert ckpt.load_state(tmp_path / "last")["epoch"] == 1
    model = NaNAfter(mlp(), after=0)
    ckpt.load_weights(model, tmp_path / "last")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


def test_nan_in_the_first_epoch_says_nothing_was_saved(tmp_path):
    with pytest.raises(TrainingDiverged, match="at epoch 1, step 1/.*no checkpoint was saved"):
        fit(NaNAfter(mlp(), after=0), FLAT, cfg_of(), tmp_path, progress=quiet())


def test_early_stopping_on_val_loss(tmp_path):
    cfg = cfg_of(epochs=10, optimizer="sgd(lr=0.0)", early_stopping={"monitor": "val.loss", "patience": 2})
    out = io.StringIO()
    r = fit(mlp(), FLAT, cfg, tmp_path, progress=Progress(stream=out, plain=True))
    assert r.stopped_early and r.epochs_run == 3 and r.best_epoch == 1
    assert "early stopping: val.loss has not improved for 2 epoch(s)" in out.getvalue()
    assert ckpt.load_state(tmp_path / "last")["epoch"] == 3


def test_early_stopping_on_a_max_metric(tmp_path):
    cfg = cfg_of(epochs=6, metrics=["accuracy"], early_stopping={"monitor": "train.accuracy", "patience": 1})
    r = fit(mlp(), FLAT, cfg, tmp_path, progress=quiet())
    accs = [rec["train"]["accuracy"] for rec in r.history]
    assert r.best_value == max(accs) and r.monitor == "train.accuracy"
    if r.stopped_early:
        assert accs[-1] <= max(accs[:-1])


def test_monitor_must_be_logged():
    with pytest.raises(Exception, match="'val.f1' is not a logged value"):
        fit(mlp(), FLAT, cfg_of(metrics=["accuracy"], early_stopping={"monitor": "val.f1"}), "/tmp/unused",
            progress=quiet())


# ---------------------------------------------------------------- settings

def test_mixed_precision_falls_back_to_fp32_on_cpu_with_a_note(tmp_path):
    out = io.StringIO()
    fit(mlp(), FLAT, cfg_of(epochs=1, precision="bf16", device="cpu"), tmp_path, progress=Progress(stream=out, plain=True))
    assert "note: precision bf16 needs CUDA; training in fp32 on cpu" in out.getvalue()


def test_tensorboard_missing_is_a_note(tmp_path):
    out = io.StringIO()
    fit(mlp(), FLAT, cfg_of(epochs=1, tensorboard=True), tmp_path, progress=Progress(stream=out, plain=True))
    try:
        import torch.utils.tensorboard  # noqa: F401
        assert (tmp_path / "tensorboard").exists()
    except ImportError:
        assert "tensorboard is not installed" in out.getvalue()


def test_automatic_checkpoints_of_a_short_run_are_written_at_the_end(tmp_path):
    r = fit(mlp(), FLAT, cfg_of(epochs=3), tmp_path, progress=quiet())
    assert ckpt.load_state(tmp_path / "last")["epoch"] == 3
    assert ckpt.load_state(tmp_path / "best")["epoch"] == r.best_epoch


def test_a_crash_still_writes_the_best_weights(tmp_path):
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(Tripwire(mlp(), at=50), FLAT, cfg_of(epochs=5), tmp_path, progress=quiet())
    state = ckpt.load_state(tmp_path / "best")
    assert state["epoch"] == state["best_epoch"] == 1  # 40 steps per epoch: the crash came in epoch 2
    assert not (tmp_path / "last").exists()  # automatic mode: last/ was not due yet


def test_plateau_schedule_and_checkpoint_every(tmp_path):
    cfg = cfg_of(epochs=3, schedule="plateau(patience=0, factor=0.5)", checkpoint_every=2)
    r = fit(mlp(), FLAT, cfg, tmp_path, progress=quiet())
    assert len(r.history) == 3
    assert ckpt.load_state(tmp_path / "last")["epoch"] == 3  # the final epoch is always saved


def test_task_follows_the_data_when_no_loss_is_given(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    np.savez(tmp_path / "r.npz", x=x, y=x @ np.array([1.0, -2.0, 0.5]) + 0.1)  # real-valued targets
    inputs = [("x", (3,), "float32")]
    cfg = TrainConfig.from_dict({"data": str(tmp_path / "r.npz"), "epochs": 3, "plots": False,
                                 "optimizer": "adam(lr=1e-2)"})
    seed_everything(0)
    r = fit(torch.nn.Linear(3, 1), inputs, cfg, tmp_path / "run", progress=quiet())
    assert set(r.test) == {"loss", "rmse", "mae"}  # mse loss and regression metrics by default
    with pytest.raises(Exception, match="'accuracy' is a classification metric but this run is regression"):
        fit(torch.nn.Linear(3, 1), inputs, cfg.apply_overrides(["train.metrics=accuracy"]), tmp_path / "r2",
            progress=quiet())


def test_rich_progress_on_a_terminal(tmp_path):
    class TTY(io.StringIO):
        def isatty(self):
            return True

    out = TTY()
    fit(mlp(), FLAT, cfg_of(epochs=1), tmp_path, progress=Progress(stream=out))
    assert "epoch 1/1" in out.getvalue() and "loss" in out.getvalue()


# ---------------------------------------------------------------- other model shapes

def test_token_inputs_with_an_embedding(tmp_path):
    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(17, 16)
            self.pos = torch.nn.Parameter(torch.zeros(64, 16))
            self.head = torch.nn.Linear(64 * 16, 10)

        def forward(self, tokens):
            return self.head((self.emb(tokens) + self.pos).flatten(1))

    seed_everything(0)
    r = fit(Bag(), [("tokens", (64,), "int64")], cfg_of(epochs=2, optimizer="adam(lr=3e-3)"), tmp_path,
            progress=quiet())
    assert r.test["accuracy"] > 0.8


def test_two_inputs_from_npz(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 4)).astype(np.float32), rng.normal(size=(300, 2)).astype(np.float32)
    y = ((a[:, 0] + b[:, 1]) > 0).astype(np.int64)
    np.savez(tmp_path / "two.npz", a=a, b=b, y=y)

    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fa, self.fb, self.head = torch.nn.Linear(4, 8), torch.nn.Linear(2, 8), torch.nn.Linear(16, 2)

        def forward(self, a, b):
            return self.head(torch.cat([torch.relu(self.fa(a)), torch.relu(self.fb(b))], dim=1))

    seed_everything(0)
    cfg = TrainConfig.from_dict({"data": str(tmp_path / "two.npz"), "epochs": 8, "batch_size": 16, "plots": False,
                                 "optimizer": "adam(lr=1e-2)"})
    r = fit(Two(), [("a", (4,), "float32"), ("b", (2,), "float32")], cfg, tmp_path / "run", progress=quiet())
    assert r.test["accuracy"] > 0.85


def test_per_step_sequence_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6, 3)).astype(np.float32)
    y = (x[:, :, 0] > 0).astype(np.int64)  # one class per time step
    np.savez(tmp_path / "seq.npz", x=x, y=y)
    seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))  # (N, T, 2)
    cfg = TrainConfig.from_dict({"data": str(tmp_path / "seq.npz"), "epochs": 5, "batch_size": 16, "plots": False,
                                 "optimizer": "adam(lr=1e-2)", "metrics": ["accuracy", "auc_roc"]})
    r = fit(model, [("x", (6, 3), "float32")], cfg, tmp_path / "run", progress=quiet())
    assert r.test["accuracy"] > 0.9 and r.report["confusion_matrix"][0][0] > 0
    assert sum(map(sum, r.report["confusion_matrix"])) == 40 * 6  # every step of every test sample
