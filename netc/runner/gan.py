"""Adversarial training as an engine objective: a generator and a discriminator, one step each per batch.

The discriminator learns to call real samples real and generated ones fake, then the generator
learns to make the discriminator call its samples real (the non-saturating objective with ``bce``;
least squares with ``mse``). Real samples are scaled to [-1, 1] unless ``train.normalize`` says
otherwise, to match a Tanh generator. Everything else (checkpoints, exact resume, Ctrl-C, NaN stop,
DDP, progress) is the engine's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from netc.compiler.train.targets import gan_loss_refusal
from netc.diagnostics import DataError, SpecError
from netc.runner.config import TrainConfig
from netc.runner.data import Dataset, Split, load_data
from netc.runner.engine import Context, FitResult, Objective, train
from netc.runner.objectives import (
    build_optimizer,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)
from netc.runner.progress import Progress
from netc.runner.rundir import RunDir
from netc.runner.sources import Inputs
from netc.runner.supervised import preprocess_info

GAN_MODELS = ("generator", "discriminator")  # the model names a GAN spec declares


def is_gan(model_names) -> bool:
    """True when a spec's models are exactly a generator and a discriminator."""
    return set(model_names) == set(GAN_MODELS)


def criteria() -> dict:
    """The torch function of each loss in netc.compiler.train.targets.GAN_LOSSES."""
    import torch.nn.functional as F

    return {"bce": F.binary_cross_entropy_with_logits, "mse": F.mse_loss}


def _criterion(name: str):
    fns = criteria()
    if name not in fns:  # netc check refuses it first; --set can still get here
        message, hint = gan_loss_refusal(name)
        raise SpecError(f"train.{message}", hint=hint, kind="arg")
    return fns[name]


class GAN(Objective):
    """Per batch: a discriminator step on real and generated samples, then a generator step."""

    name = "gan"
    log_names = ("d_loss", "g_loss", "d_real", "d_fake")  # D(real), D(fake) as mean probabilities
    shown = 1
    mixed_precision = False  # the adversarial game trains in fp32
    diverged_what = "a GAN loss"
    diverged_hint = ("lower the learning rate (GANs often use adam(lr=2e-4, betas=[0.5, 0.999])) or set "
                     "train.clip_grad_norm")

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module, latent: Inputs,
                 inputs: Inputs, data: Dataset | None = None):
        self.generator, self.discriminator = generator, discriminator
        self.latent, self.inputs, self.data = latent, inputs, data
        self.module = torch.nn.ModuleDict({"generator": generator, "discriminator": discriminator})

    def prepare(self, ctx: Context) -> None:
        """Real samples on the device (labels unused), both models probed for compatible shapes, optimizers."""
        cfg, device = ctx.cfg, ctx.device
        if cfg.accumulate != 1:
            raise SpecError("train.accumulate: a GAN takes one discriminator and one generator step per batch",
                            hint="remove accumulate (or set it to 1) for GAN specs", kind="arg")
        ds = self.data if self.data is not None else load_data(
            cfg.data, self.inputs, split=cfg.split, normalize=cfg.normalize or "symmetric", device=device)
        if not isinstance(ds.train, Split):
            raise DataError(f"{ds.origin}: a GAN holds its real samples in memory, and these data are streamed",
                            hint="set train.data.stream: false (the data must then fit in memory)")
        self.ds, self.real = ds, ds.train.xs[0]
        self.z_shape = tuple(self.latent[0][1])
        if len(self.latent) != 1 or not all(isinstance(d, int) for d in self.z_shape):
            raise DataError(f"the generator needs one fixed-size latent input, it declares {self.latent}",
                            hint="declare e.g. input: [64] for the generator")
        self.module.to(device)
        self.z_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        self.generators = {"noise": self.z_gen}
        with torch.no_grad():
            self.module.eval()
            fake_shape = tuple(self.generator(torch.zeros((2, *self.z_shape), device=device)).shape[1:])
            d_shape = tuple(self.discriminator(self.real[:2]).shape[1:])
        if fake_shape != tuple(self.real.shape[1:]):
            raise DataError(f"the generator makes samples of shape {fake_shape} but the data (the discriminator's "
                            f"input) are {tuple(self.real.shape[1:])}",
                            hint="end the generator with a Reshape to the discriminator's input shape")
        if math.prod(d_shape) != 1:
            raise DataError(f"the discriminator must output one logit per sample, it outputs {d_shape}",
                            hint="end the discriminator with Dense(1)")
        self.criterion = _criterion(resolve_loss(cfg.loss or "bce").name)
        sched = resolve_schedule(cfg.schedule) if cfg.schedule else None
        if sched is not None and sched.entry.needs_metric:  # type: ignore[attr-defined]
            raise SpecError(f"train.schedule: {sched.name} needs a validation loss, which a GAN does not have",
                            hint="use step, exponential, cosine or onecycle", kind="arg")
        call = resolve_optimizer(cfg.optimizer)  # the same optimizer (and schedule) for each model
        self.opt_g = build_optimizer(call, self.generator.parameters())
        self.opt_d = build_optimizer(call, self.discriminator.parameters())
        self.optimizers = {"generator": self.opt_g, "discriminator": self.opt_d}
        self.n_train = len(self.real)

    def wrap(self, ctx: Context) -> None:
        """DDP for each model (rank 0's restored weights reach every rank)."""
        self.gen, self.disc = ctx.dist.wrap(self.generator), ctx.dist.wrap(self.discriminator)

    def step(self, ctx: Context, micro: Sequence[tuple[torch.Tensor, float]]) -> torch.Tensor:
        """One discriminator step, then one generator step, on fresh noise."""
        ((idx, weight),) = micro
        x = self.real[idx]
        z = torch.randn((len(x), *self.z_shape), generator=self.z_gen, device=ctx.device)
        fake = self.gen(z)
        # a. discriminator: real -> 1, fake -> 0 (the generator is not updated here)
        d_real, d_fake = self.disc(x), self.disc(fake.detach())
        ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_fake)
        d_loss = self.criterion(d_real, ones) + self.criterion(d_fake, zeros)
        if weight != 1.0:  # share of the global batch mean
            d_loss = d_loss * weight
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        ctx.update(self.opt_d, self.discriminator.parameters)
        # b. generator: make the discriminator call the fakes real (D outside DDP: its grads stay local)
        g_loss = self.criterion(self.discriminator(fake), ones)
        if weight != 1.0:
            g_loss = g_loss * weight
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        ctx.update(self.opt_g, self.generator.parameters)
        values = torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(d_real).mean().detach(),
                              torch.sigmoid(d_fake).mean().detach()])
        if weight != 1.0:  # D(real), D(fake) as shares of the global batch too
            values[2:] *= weight
        return values

    def config(self) -> dict[str, Any]:
        """The latent shape and the preprocessing (samples map back to data units)."""
        return {"latent": [list(self.z_shape)], "preprocess": preprocess_info(self.ds)}

    def finish(self, ctx: Context, rd: RunDir, history: list[dict[str, Any]]
               ) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
        """A grid of samples from the trained generator; the last epoch's values."""
        if ctx.dist.main and ctx.cfg.plots and self.real.dim() == 4:
            from netc.runner import plots

            samples = generate(self.generator, self.z_shape, 64, seed=ctx.cfg.seed,
                               preprocess=preprocess_info(self.ds))
            plots.sample_grid(samples.cpu(), rd.plot("samples"))
        return {}, {}, {"final": history[-1]["train"] if history else {}}


def fit_gan(generator: torch.nn.Module, discriminator: torch.nn.Module, latent: Inputs, inputs: Inputs,
            cfg: TrainConfig, run_dir: str | Path, resume: str | Path | None = None, *,
            data: Dataset | None = None, progress: Progress | bool = True,
            on_start: Callable[[], None] | None = None,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Train a GAN; ``latent`` is the generator's declared input, ``inputs`` the discriminator's (the data)."""
    return train(GAN(generator, discriminator, latent, inputs, data), cfg, run_dir, resume, progress=progress,
                 on_start=on_start, on_epoch=on_epoch)


def generate(generator: torch.nn.Module, z_shape: tuple[int, ...], n: int, *, seed: int = 0,
             preprocess: dict | None = None) -> torch.Tensor:
    """``n`` samples from ``generator`` (eval mode), mapped back to data units when ``preprocess`` is given."""
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    z = torch.randn((n, *z_shape), generator=torch.Generator().manual_seed(seed)).to(device)
    generator.eval()
    with torch.inference_mode():
        out = generator(z).float()
    if preprocess is not None and preprocess["inputs"]:
        norm = preprocess["inputs"][0]
        if norm["method"] != "none":
            out = out * torch.as_tensor(norm["scale"], device=out.device, dtype=out.dtype) + torch.as_tensor(
                norm["shift"], device=out.device, dtype=out.dtype)
    return out
