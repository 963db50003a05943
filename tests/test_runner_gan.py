"""Adversarial training: records, samples, exact resume, shape checks, and the CLI path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from netc.diagnostics import DataError, SpecError
from netc.runner import checkpoint as ckpt
from netc.runner.config import TrainConfig
from netc.runner.gan import fit_gan, generate, is_gan
from netc.runner.loop import seed_everything
from netc.runner.progress import Progress

LATENT = [("z", (16,), "float32")]
IMAGES = [("image", (1, 8, 8), "float32")]
CFG = {"data": {"source": "digits", "limit": 320}, "split": {"val": 0, "test": 0}, "loss": "bce",
       "optimizer": "adam(lr=2e-3, betas=[0.5, 0.999])", "epochs": 3, "batch_size": 32, "checkpoint_every": 1}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class Crash(torch.nn.Module):
    def __init__(self, inner, at=None):
        super().__init__()
        self.inner, self.at, self.calls = inner, at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                raise RuntimeError("simulated crash")
        return self.inner(x)


def models(seed=0, crash_at=None, out=64):
    seed_everything(seed)
    g = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.LeakyReLU(0.2), torch.nn.Linear(64, out),
                            torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 8, 8)) if out == 64 else torch.nn.Identity())
    d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.LeakyReLU(0.2),
                            torch.nn.Dropout(0.2), torch.nn.Linear(32, 1))
    return g, Crash(d, crash_at)


def quiet():
    return Progress(stream=io.StringIO(), plain=True)


def test_gan_trains_and_writes_records_and_samples(tmp_path):
    g, d = models()
    r = fit_gan(g, d, LATENT, IMAGES, TrainConfig.from_dict(CFG), tmp_path, progress=quiet())
    assert [rec["epoch"] for rec in r.history] == [1, 2, 3]
    for rec in r.history:
        assert set(rec["train"]) == {"d_loss", "g_loss", "d_real", "d_fake"}
        assert all(np.isfinite(v) for v in rec["train"].values())
        assert 0 < rec["train"]["d_real"] < 1 and 0 < rec["train"]["d_fake"] < 1
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "results.json").read_text())["objective"] == "gan"
    assert set(ckpt.read_weights(tmp_path / "last")) == {f"generator.{k}" for k in g.state_dict()} | \
        {f"discriminator.{k}" for k in d.state_dict()}
    pre = json.loads((tmp_path / "config.json").read_text())["preprocess"]
    assert pre["inputs"][0]["method"] == "symmetric"
    s = generate(g, (16,), 5, preprocess=pre)
    assert s.shape == (5, 1, 8, 8) and float(s.min()) >= -1e-3 and float(s.max()) <= 16 + 1e-3  # digit pixel units


def test_gan_resume_after_a_crash_is_exact(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    ref = fit_gan(*models(), LATENT, IMAGES, cfg, tmp_path / "ref", progress=quiet())
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit_gan(*models(crash_at=2 * 10 * 3 + 5), LATENT, IMAGES, cfg, tmp_path / "run", progress=quiet())
    assert ckpt.load_state(tmp_path / "run" / "last")["epoch"] == 2  # 10 batches x 3 D calls per epoch
    resumed = fit_gan(*models(seed=7), LATENT, IMAGES, cfg, tmp_path / "run", resume=tmp_path / "run",
                      progress=quiet())
    assert [r["train"] for r in resumed.history] == [r["train"] for r in ref.history]


def test_gan_shape_checks(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    with pytest.raises(DataError, match=r"generator makes samples of shape \(32,\) but the data .* \(1, 8, 8\)"):
        fit_gan(*models(out=32), LATENT, IMAGES, cfg, tmp_path, progress=quiet())
    g, _ = models()
    d2 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with pytest.raises(DataError, match="one logit per sample"):
        fit_gan(g, d2, LATENT, IMAGES, cfg, tmp_path, progress=quiet())
    with pytest.raises(SpecError, match="bce .* or mse"):
        fit_gan(*models(), LATENT, IMAGES, cfg.apply_overrides(["train.loss=cross_entropy"]), tmp_path,
                progress=quiet())


def test_is_gan():
    assert is_gan({"generator": 1, "discriminator": 2}) and not is_gan({"main": 1})


def test_gan_through_the_cli(tmp_path, capsys):
    from netc.cli import main

    spec = Path(__file__).resolve().parent.parent / "examples" / "digits_gan.yaml"
    if not spec.exists():
        pytest.skip("no GAN example")
    run = tmp_path / "gan"
    assert main(["train", str(spec), "--out", str(run), "--set", "train.epochs=1",
                 "--set", "train.data.limit=256"]) == 0
    assert main(["predict", str(run), "-n", "6", "-o", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (6, 1, 8, 8)
    assert main(["predict", str(run), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    assert main(["eval", str(run)]) == 2
    assert "GAN run" in capsys.readouterr().err


def test_the_runner_trains_with_every_gan_loss_netc_check_accepts():
    from netc.compiler.train.targets import GAN_LOSSES
    from netc.runner.gan import criteria

    assert set(criteria()) == set(GAN_LOSSES)  # one list of GAN losses: the compiler's
