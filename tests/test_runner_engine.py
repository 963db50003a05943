"""The engine shared by every objective: resume, signals, bad checkpoints, and a third objective plugged in.

The GAN objective once had its own copy of the loop, which drifted from the supervised one in four
ways (no ``.last.old`` on resume, a bad optimizer state as an internal error, a second Ctrl-C
ignored, no note on a changed config). Each drift has a test here, run on the GAN.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from netc.diagnostics import CheckpointError
from netc.runner import checkpoint as ckpt
from netc.runner.config import TrainConfig
from netc.runner.engine import (
    Context,
    Objective,
    TrainingInterrupted,
    seed_everything,
    train,
)
from netc.runner.gan import fit_gan
from netc.runner.loop import fit
from netc.runner.progress import Progress

LATENT = [("z", (16,), "float32")]
IMAGES = [("image", (1, 8, 8), "float32")]
CFG = {"data": {"source": "digits", "limit": 320}, "split": {"val": 0, "test": 0}, "loss": "bce",
       "optimizer": "adam(lr=2e-3, betas=[0.5, 0.999])", "epochs": 3, "batch_size": 32, "checkpoint_every": 1,
       "plots": False}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class Trip(torch.nn.Module):
    """Wraps a model; at the given training forwards it raises or sends a signal to this process."""

    def __init__(self, inner, at=(), action="crash"):
        super().__init__()
        self.inner, self.at, self.action, self.calls = inner, set(at), action, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls in self.at:
                if self.action == "crash":
                    raise RuntimeError("simulated crash")
                os.kill(os.getpid(), self.action)
        return self.inner(x)


def gan_models(seed=0, at=(), action="crash"):
    seed_everything(seed)
    g = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.LeakyReLU(0.2), torch.nn.Linear(64, 64),
                            torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 8, 8)))
    d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.LeakyReLU(0.2),
                            torch.nn.Linear(32, 1))
    return g, Trip(d, at, action)


def quiet(out=None):
    return Progress(stream=out or io.StringIO(), plain=True)


def crashed_gan(tmp_path, cfg):
    """A GAN run that crashed in epoch 3, with last/ holding epoch 2; and the uninterrupted reference."""
    ref = fit_gan(*gan_models(), LATENT, IMAGES, cfg, tmp_path / "ref", progress=quiet())
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit_gan(*gan_models(at={2 * 10 * 3 + 5}), LATENT, IMAGES, cfg, tmp_path / "run", progress=quiet())
    assert ckpt.load_state(tmp_path / "run" / "last")["epoch"] == 2
    return ref


def test_gan_resumes_from_last_old_when_a_save_was_cut_short(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    ref = crashed_gan(tmp_path, cfg)
    (tmp_path / "run" / "last").rename(tmp_path / "run" / ".last.old")  # the crash came mid-save
    resumed = fit_gan(*gan_models(seed=7), LATENT, IMAGES, cfg, tmp_path / "run", resume=tmp_path / "run",
                      progress=quiet())
    assert [r["train"] for r in resumed.history] == [r["train"] for r in ref.history]


def test_gan_resume_with_another_optimizer_is_a_checkpoint_error(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    crashed_gan(tmp_path, cfg)
    other = cfg.apply_overrides(["train.optimizer=sgd(lr=0.01)"])
    with pytest.raises(CheckpointError, match="cannot resume the generator optimizer state") as e:
        fit_gan(*gan_models(), LATENT, IMAGES, other, tmp_path / "run", resume=tmp_path / "run", progress=quiet())
    assert "the optimizer the run was started with" in e.value.hint


def test_gan_resume_notes_a_changed_config(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    crashed_gan(tmp_path, cfg)
    out = io.StringIO()
    fit_gan(*gan_models(), LATENT, IMAGES, cfg.apply_overrides(["train.batch_size=64"]), tmp_path / "run",
            resume=tmp_path / "run", progress=quiet(out))
    assert "resuming with changed batch_size" in out.getvalue()


def test_gan_second_ctrl_c_aborts(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    # two SIGINTs inside one batch (3 discriminator forwards each): the first asks to stop, the second aborts
    with pytest.raises(TrainingInterrupted, match="training aborted") as e:
        fit_gan(*gan_models(at={31, 32}, action=signal.SIGINT), LATENT, IMAGES, cfg, tmp_path / "run",
                progress=quiet())
    assert e.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_gan_ctrl_c_saves_a_resumable_cursor(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    ref = fit_gan(*gan_models(), LATENT, IMAGES, cfg, tmp_path / "ref", progress=quiet())
    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 2, step 4/10"):
        fit_gan(*gan_models(at={3 * 13 + 1}, action=signal.SIGINT), LATENT, IMAGES, cfg, tmp_path / "run",
                progress=quiet())
    resumed = fit_gan(*gan_models(seed=3), LATENT, IMAGES, cfg, tmp_path / "run", resume=tmp_path / "run",
                      progress=quiet())
    assert [r["train"] for r in resumed.history] == [r["train"] for r in ref.history]


def test_sigterm_checkpoints_like_ctrl_c(tmp_path):
    """Cluster schedulers preempt with SIGTERM: a resumable checkpoint and exit code 130, like Ctrl-C."""
    cfg = TrainConfig.from_dict({"data": {"source": "digits", "limit": 200}, "epochs": 2, "batch_size": 32,
                                 "plots": False})
    seed_everything(0)
    model = Trip(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), at={3}, action=signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 1, step 3/") as e:
        fit(model, [("image", (64,), "float32")], cfg, tmp_path, progress=quiet())
    assert e.value.exit_code == 130
    assert ckpt.load_state(tmp_path / "last")["cursor"]["batch"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_resume_with_the_other_objective_is_refused(tmp_path):
    cfg = TrainConfig.from_dict(CFG)
    crashed_gan(tmp_path, cfg)
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    sup = TrainConfig.from_dict({"data": {"source": "digits", "limit": 200}, "epochs": 1, "plots": False})
    with pytest.raises(CheckpointError, match="checkpoint of a gan run; this spec trains a supervised"):
        fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), [("image", (64,), "float32")], sup,
            tmp_path / "copy", resume=tmp_path / "copy", progress=quiet())


class Denoise(Objective):
    """A third objective written only against the engine's interface: a denoising autoencoder."""

    name = "denoise"
    log_names = ("loss",)

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.module = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 64))

    def prepare(self, ctx: Context) -> None:
        self.module.to(ctx.device)
        self.opt = torch.optim.Adam(self.module.parameters(), lr=1e-2)
        self.optimizers = {"model": self.opt}
        self.noise = torch.Generator().manual_seed(ctx.cfg.seed)
        self.generators = {"noise": self.noise}
        self.monitor, self.n_train = "train.loss", len(self.x)

    def step(self, ctx, micro):
        ((idx, _),) = micro
        x = self.x[idx]
        noisy = x + 0.1 * torch.randn(x.shape, generator=self.noise)
        loss = torch.nn.functional.mse_loss(self.module(noisy), x)
        self.opt.zero_grad()
        ctx.backward(loss)
        ctx.update(self.opt, self.module.parameters)
        return loss.detach().reshape(1)


def test_a_new_objective_needs_no_engine_change(tmp_path):
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data[:256] / 16, dtype=torch.float32)
    cfg = TrainConfig.from_dict({"epochs": 4, "batch_size": 32, "checkpoint_every": 2, "plots": False})
    seed_everything(0)
    r = train(Denoise(x), cfg, tmp_path / "a", progress=quiet())
    assert r.history[-1]["train"]["loss"] < r.history[0]["train"]["loss"]
    assert r.monitor == "train.loss" and r.best_epoch == 4 and (tmp_path / "a" / "best").is_dir()
    seed_everything(0)
    half = TrainConfig.from_dict({**cfg.to_dict(), "epochs": 2})
    train(Denoise(x), half, tmp_path / "b", progress=quiet())
    seed_everything(1)
    resumed = train(Denoise(x), cfg, tmp_path / "b", resume=tmp_path / "b", progress=quiet())
    assert [h["train"] for h in resumed.history] == [h["train"] for h in r.history]


def test_train_without_compile_does_not_import_dynamo(tmp_path):
    """Eager optimizers import torch._dynamo (~1.1 s) for two no-op calls; without compile netc skips that."""
    code = ("import sys, torch\nfrom netc.runner.config import TrainConfig\nfrom netc.runner.loop import fit\n"
            "from netc.runner.progress import Progress\nimport io\n"
            "cfg = TrainConfig.from_dict({'data': {'source': 'digits', 'limit': 100}, 'epochs': 1, 'plots': False,"
            " 'schedule': 'cosine'})\n"
            "fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), [('image', (64,), 'float32')],"
            f" cfg, {str(tmp_path)!r}, progress=Progress(stream=io.StringIO()))\n"
            "from netc.runner import lazy_dynamo\n"
            "assert not lazy_dynamo.is_real(), 'torch._dynamo was imported'\n"
            "import torch._dynamo.config\n"  # anything that needs the real package gets it
            "assert lazy_dynamo.is_real() and torch._dynamo is sys.modules['torch._dynamo']\n"
            "assert torch.compile(lambda x: x * 2, backend='eager')(torch.ones(2)).tolist() == [2.0, 2.0]\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_on_epoch_sees_each_record_and_can_stop_the_run(tmp_path):
    """The hook a tuner prunes through: each logged record, and an exception ends the run there."""
    seen = []

    def hook(record):
        seen.append(record["epoch"])
        if record["epoch"] == 2:
            raise KeyError("pruned")

    cfg = TrainConfig.from_dict({"data": {"source": "digits", "limit": 200}, "epochs": 5, "plots": False,
                                 "checkpoint_every": 1})
    seed_everything(0)
    with pytest.raises(KeyError, match="pruned"):
        fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), [("image", (64,), "float32")], cfg,
            tmp_path, progress=quiet(), on_epoch=hook)
    assert seen == [1, 2] and ckpt.load_state(tmp_path / "last")["epoch"] == 2


def test_the_resume_hint_names_the_spec_the_run_came_from(tmp_path):
    cfg = TrainConfig.from_dict({"data": {"source": "digits", "limit": 200}, "epochs": 2, "batch_size": 32,
                                 "plots": False})

    def model():
        seed_everything(0)
        return Trip(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), at={3}, action=signal.SIGINT)

    (tmp_path / "run.json").write_text('{"spec": "examples/my spec.yaml"}')  # as netc train writes it
    with pytest.raises(TrainingInterrupted) as e:
        fit(model(), [("image", (64,), "float32")], cfg, tmp_path, progress=quiet())
    assert e.value.hint == f"resume with: netc train 'examples/my spec.yaml' --resume {tmp_path}"
    (tmp_path / "run.json").unlink()  # a run made from Python: no spec to name
    with pytest.raises(TrainingInterrupted) as e:
        fit(model(), [("image", (64,), "float32")], cfg, tmp_path / "api", progress=quiet())
    assert f"--resume {tmp_path / 'api'}" in e.value.hint and "from Python" in e.value.hint
