"""Adversarial training: a generator and a discriminator, alternating one step each per batch.

``fit_gan`` mirrors ``loop.fit`` (same data path, checkpoints, progress, Ctrl-C and NaN handling,
exact resume) with a different inner step: the discriminator learns to call real samples real and
generated ones fake, then the generator learns to make the discriminator call its samples real
(the non-saturating objective with ``bce``; least squares with ``mse``). Real samples are scaled to
[-1, 1] unless ``train.normalize`` says otherwise, to match a Tanh generator.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from netc.diagnostics import DataError, SpecError
from netc.runner import checkpoint as ckpt
from netc.runner import distributed
from netc.runner.config import TrainConfig
from netc.runner.data import Dataset, load_data
from netc.runner.loop import (
    AUTO_CHECKPOINT_SECONDS,
    FitResult,
    TrainingDiverged,
    TrainingInterrupted,
    _Diverged,
    _first_bad,
    _history_text,
    _Interrupted,
    _StopFlag,
    _write_json,
    preprocess_info,
    resolve_device,
    seed_everything,
)
from netc.runner.objectives import (
    build_optimizer,
    build_schedule,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)
from netc.runner.progress import Progress
from netc.runner.sources import Inputs

GAN_MODELS = ("generator", "discriminator")  # the model names a GAN spec declares


def is_gan(model_names) -> bool:
    """True when a spec's models are exactly a generator and a discriminator."""
    return set(model_names) == set(GAN_MODELS)


def _criterion(name: str):
    import torch.nn.functional as F

    if name == "bce":
        return F.binary_cross_entropy_with_logits  # non-saturating GAN
    if name == "mse":
        return F.mse_loss  # least-squares GAN
    raise SpecError(f"train.loss: a GAN trains with bce (non-saturating) or mse (least squares), not {name}",
                    hint="set loss: bce", kind="arg")


def fit_gan(generator: torch.nn.Module, discriminator: torch.nn.Module, latent: Inputs, inputs: Inputs,
            cfg: TrainConfig, run_dir: str | Path, resume: str | Path | None = None, *,
            data: Dataset | None = None, progress: Progress | bool = True) -> FitResult:
    """Train a GAN; ``latent`` is the generator's declared input, ``inputs`` the discriminator's (the data)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))

    # 1. Device (cuda:LOCAL_RANK under DDP) and seeds (mixed precision is not used for the adversarial game).
    dist = distributed.init(resolve_device(cfg.device))
    device = dist.device
    if not dist.main:
        reporter = Progress(enabled=False)
    if cfg.accumulate != 1:
        raise SpecError("train.accumulate: a GAN takes one discriminator and one generator step per batch",
                        hint="remove accumulate (or set it to 1) for GAN specs", kind="arg")
    seed_everything(cfg.seed)

    # 2. Real samples (labels unused) on the device; probe both models for compatible shapes.
    ds = data if data is not None else load_data(cfg.data, inputs, split=cfg.split,
                                                 normalize=cfg.normalize or "symmetric", device=device)
    real = ds.train.xs[0]
    z_shape = tuple(latent[0][1])
    if len(latent) != 1 or not all(isinstance(d, int) for d in z_shape):
        raise DataError(f"the generator needs one fixed-size latent input, it declares {latent}",
                        hint="declare e.g. input: [64] for the generator")
    pair = torch.nn.ModuleDict({"generator": generator, "discriminator": discriminator}).to(device)
    z_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
    with torch.no_grad():
        pair.eval()
        fake_shape = tuple(generator(torch.zeros((2, *z_shape), device=device)).shape[1:])
        d_shape = tuple(discriminator(real[:2]).shape[1:])
    if fake_shape != tuple(real.shape[1:]):
        raise DataError(f"the generator makes samples of shape {fake_shape} but the data (the discriminator's "
                        f"input) are {tuple(real.shape[1:])}", hint="end the generator with a Reshape to the "
                                                                    "discriminator's input shape")
    if math.prod(d_shape) != 1:
        raise DataError(f"the discriminator must output one logit per sample, it outputs {d_shape}",
                        hint="end the discriminator with Dense(1)")

    # 3. Objective: one criterion, the same optimizer (and schedule) for each model.
    loss_name = resolve_loss(cfg.loss or "bce").name
    criterion = _criterion(loss_name)
    opt_call = resolve_optimizer(cfg.optimizer)
    opt_g, opt_d = build_optimizer(opt_call, generator.parameters()), build_optimizer(opt_call, discriminator.parameters())
    n_train, bs = len(real), cfg.batch_size
    steps_per_epoch = math.ceil(n_train / bs)
    sched_call = resolve_schedule(cfg.schedule) if cfg.schedule else None
    if sched_call is not None and sched_call.entry.needs_metric:  # type: ignore[attr-defined]
        raise SpecError(f"train.schedule: {sched_call.name} needs a validation loss, which a GAN does not have",
                        hint="use step, exponential, cosine or onecycle", kind="arg")
    scheds = [build_schedule(sched_call, o, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch)
              for o in (opt_g, opt_d)] if sched_call else []
    per_step = sched_call is not None and sched_call.entry.interval == "step"  # type: ignore[attr-defined]
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    clip = cfg.clip_grad_norm

    # 4. Resume from run_dir/last, or start fresh.
    epoch0, step, history, cursor = 0, 0, [], None
    if resume is not None:
        where = Path(resume) / "last"

        def read() -> dict[str, Any]:  # rank 0 reads; DDP hands its weights on when it wraps the models
            ckpt.load_weights(pair, ckpt.resolve_dir(where))
            return ckpt.load_state(where)

        state = dist.from_main(read)
        opt_g.load_state_dict(state["optimizer_g"])
        opt_d.load_state_dict(state["optimizer_d"])
        for s, sd in zip(scheds, state.get("schedulers") or []):
            s.load_state_dict(sd)
        ckpt.set_rng_state(state["rng"])
        batch_gen.set_state(state["batch_gen"])
        z_gen.set_state(state["z_gen"])
        epoch0, step, cursor = state["epoch"], state["step"], state.get("cursor")
        history = [json.loads(line) for line in state["history"].splitlines()]
        reporter.note(f"resuming from {where} at " + (f"epoch {epoch0 + 1}, step {cursor['batch']}" if cursor
                                                      else f"the end of epoch {epoch0}"))
    gen, disc = dist.wrap(generator), dist.wrap(discriminator)  # DDP: rank 0's (restored) weights reach every rank
    history_text = _history_text(history)
    if dist.main:
        _write_json(run_dir / "config.json", {"train": cfg.to_dict(), "objective": "gan",
                                             "latent": [list(z_shape)], "preprocess": preprocess_info(ds)})
        ckpt.atomic_write(run_dir / "metrics.jsonl", history_text)
    files = ckpt.Writer(enabled=dist.main)
    saved_at, saved_epoch = time.perf_counter(), epoch0

    def state_dict(epoch: int, cursor: dict | None = None) -> dict[str, Any]:
        return {"epoch": epoch, "step": step, "history": history_text, "cursor": cursor, "config": cfg.to_dict(),
                "optimizer_g": opt_g.state_dict(), "optimizer_d": opt_d.state_dict(),
                "schedulers": [s.state_dict() for s in scheds], "rng": ckpt.rng_state(),
                "batch_gen": batch_gen.get_state(), "z_gen": z_gen.get_state()}

    # 5. Epochs: per batch one discriminator step, then one generator step.
    epoch = epoch0
    with reporter, _StopFlag(reporter, enabled=not dist.enabled) as stop, \
            open(run_dir / "metrics.jsonl" if dist.main else os.devnull, "a", encoding="utf-8") as log:
        try:
            for epoch in range(epoch0 + 1, cfg.epochs + 1):
                t0 = time.perf_counter()
                pair.train()
                dist.seed_epoch(cfg.seed, epoch, z_gen)  # DDP: per-rank noise and dropout, replayable
                resumed, cursor = cursor, None
                perm = resumed["perm"].to(device) if resumed else torch.randperm(n_train, generator=batch_gen).to(device)
                chunks = perm.split(bs)  # the global batches; each rank trains on its share (distributed.py)
                steps = dist.plan(chunks)
                first = resumed["batch"] if resumed else 0
                # per batch: d_loss, g_loss, D(real) and D(fake) as probabilities (kept on the device)
                logs: list[torch.Tensor] = list(resumed["logs"].to(device).unbind()) if resumed else []
                checked = 0
                reporter.start_epoch(epoch, cfg.epochs, len(chunks), first)
                for b in range(first, len(chunks)):
                    if stop.requested:
                        raise _Interrupted(epoch, b, perm, logs, [])
                    ((idx, weight),) = steps[b]
                    x = real[idx]
                    z = torch.randn((len(x), *z_shape), generator=z_gen, device=device)
                    fake = gen(z)
                    # 5a. discriminator: real -> 1, fake -> 0 (the generator is not updated here)
                    d_real, d_fake = disc(x), disc(fake.detach())
                    ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_fake)
                    d_loss = criterion(d_real, ones) + criterion(d_fake, zeros)
                    if weight != 1.0:  # share of the global batch mean
                        d_loss = d_loss * weight
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    if clip is not None:
                        torch.nn.utils.clip_grad_norm_(discriminator.parameters(), clip)
                    opt_d.step()
                    # 5b. generator: make the discriminator call the fakes real (D outside DDP: its grads stay local)
                    g_loss = criterion(discriminator(fake), ones)
                    if weight != 1.0:
                        g_loss = g_loss * weight
                    opt_g.zero_grad(set_to_none=True)
                    g_loss.backward()
                    if clip is not None:
                        torch.nn.utils.clip_grad_norm_(generator.parameters(), clip)
                    opt_g.step()
                    for s in scheds if per_step else ():
                        s.step()
                    step += 1
                    logs.append(torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(d_real).mean().detach(),
                                             torch.sigmoid(d_fake).mean().detach()]))
                    if weight != 1.0:  # D(real), D(fake) as shares of the global batch too
                        logs[-1][2:] *= weight
                    if reporter.due():
                        bad = None if dist.enabled else _first_bad(logs, checked)  # DDP: checked at the end
                        if bad is not None:
                            raise _Diverged(bad)
                        checked = len(logs)
                        reporter.update(b + 1, lambda lg=logs: float(lg[-1][1]))
                if dist.enabled:  # the global batches' values (rank-weighted shares averaged), alike on all ranks
                    logs, checked = list(dist.mean(torch.stack(logs)).unbind()), 0
                bad = _first_bad(logs, checked)
                if bad is not None:
                    raise _Diverged(bad)
                # 5c. epoch record: sample-weighted means over the batches
                sizes = torch.tensor([len(c) for c in chunks], dtype=torch.float64)
                means = (torch.stack(logs).double().cpu() * sizes[:, None]).sum(0) / n_train
                record = {"epoch": epoch, "epochs": cfg.epochs,
                          "train": dict(zip(("d_loss", "g_loss", "d_real", "d_fake"), means.tolist())),
                          "lr": opt_g.param_groups[0]["lr"], "seconds": round(time.perf_counter() - t0, 4)}
                history.append(record)
                line = _history_text([record])
                history_text += line
                log.write(line)
                log.flush()
                reporter.end_epoch(record)
                for s in scheds if not per_step else ():
                    s.step()
                due = (epoch % cfg.checkpoint_every == 0 if cfg.checkpoint_every
                       else time.perf_counter() - saved_at >= AUTO_CHECKPOINT_SECONDS)
                if due or epoch == cfg.epochs:
                    files.checkpoint(run_dir / "last", pair, state_dict(epoch))
                    saved_at, saved_epoch = time.perf_counter(), epoch
        except _Interrupted as i:
            cur = {"perm": i.perm.cpu(), "batch": i.batch,
                   "logs": torch.stack(i.losses).cpu() if i.losses else torch.empty(0, 4)}
            files.checkpoint(run_dir / "last", pair, state_dict(i.epoch - 1, cur))
            files.flush()
            raise TrainingInterrupted(f"training interrupted at epoch {i.epoch}, step {i.batch}/{len(chunks)}; a "
                                      f"resumable checkpoint is in {run_dir / 'last'}",
                                      hint=f"resume with: netc train SPEC --resume {run_dir}") from None
        except _Diverged as d:
            files.flush()
            keep = (f"the last good checkpoint (epoch {saved_epoch}) is in {run_dir / 'last'}" if saved_epoch
                    else "no checkpoint was saved before that")
            raise TrainingDiverged(f"a GAN loss became NaN/Inf at epoch {epoch}, step {d.batch + 1}/{steps_per_epoch}"
                                   f"; training stopped and {keep}",
                                   hint="lower the learning rate (GANs often use adam(lr=2e-4, betas=[0.5, 0.999])) "
                                        "or set train.clip_grad_norm") from None
        finally:
            files.close()

    # 6. Samples from the trained generator, results.json.
    if not dist.main:
        return FitResult(run_dir, history, {}, {}, "", None, None, False, len(history))
    if cfg.plots and real.dim() == 4:
        from netc.runner import plots

        samples = generate(generator, z_shape, 64, seed=cfg.seed, preprocess=preprocess_info(ds))
        plots.sample_grid(samples.cpu(), run_dir / "samples.png")
    final = history[-1]["train"] if history else {}
    _write_json(run_dir / "results.json", {"objective": "gan", "epochs_run": epoch, "final": final})
    return FitResult(run_dir, history, {}, {}, "", None, None, False, len(history))


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
