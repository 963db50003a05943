"""Language modelling as an engine objective: next-token prediction over blocks of a tokenized corpus.

Each training sample is a block of ``block + 1`` token ids: the model reads the first ``block`` and is
scored (cross-entropy) on predicting each next one. Validation and test report the mean per-token
loss, perplexity, bits per character of the original text and next-token accuracy; the test adds the
perplexities of a unigram and a bigram model counted on the training split, the baselines a
language model has to beat. Everything else (checkpoints, resume, Ctrl-C, NaN stop, DDP) is the engine's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from netc.diagnostics import DataError
from netc.runner import checkpoint as ckpt
from netc.runner.config import check_monitor
from netc.runner.engine import Context, Epoch, Objective
from netc.runner.metrics import METRICS
from netc.runner.objectives import build_optimizer, resolve_loss, resolve_optimizer
from netc.runner.rundir import RunDir
from netc.runner.sources import Inputs
from netc.runner.text import FILE, LMData, check_ids, language_data, ngram_perplexity


def label_smoothing(cfg) -> float:
    """The label smoothing of ``train.loss: cross_entropy(label_smoothing=...)``, else 0."""
    return float(resolve_loss(cfg.loss).kwargs.get("label_smoothing", 0.0)) if cfg.loss else 0.0


def check_vocab(out_shape: tuple[int, ...], length: int, vocab: int, what: str) -> None:
    """The model must give (length, V) logits with V at least the tokenizer's vocabulary."""
    if len(out_shape) != 2 or out_shape[0] != length:
        raise DataError(f"{what} needs per-position logits (N, {length}, vocab), the model gives (N, "
                        f"{', '.join(map(str, out_shape))})", hint="end the model with Dense(vocab) on the "
                                                                    "sequence (no pooling)")
    if out_shape[1] < vocab:
        raise DataError(f"the model predicts {out_shape[1]} token ids but the tokenizer has {vocab}",
                        hint=f"make the last Dense (and the Embedding) at least {vocab} wide")


@torch.no_grad()
def lm_stats(model: torch.nn.Module, blocks: torch.Tensor, batch: int, amp: Any) -> dict[str, float]:
    """Summed next-token cross-entropy (nats), token count and argmax hits over all ``blocks``."""
    nll = torch.zeros((), dtype=torch.float64, device=blocks.device)
    correct = torch.zeros((), dtype=torch.int64, device=blocks.device)
    for i in range(0, len(blocks), batch):
        b = blocks[i:i + batch]
        with amp:
            out = model(b[:, :-1]).float()
        flat, y = out.reshape(-1, out.shape[-1]), b[:, 1:].reshape(-1)
        nll += F.cross_entropy(flat, y, reduction="sum").double()
        correct += (flat.argmax(-1) == y).sum()
    tokens = blocks.shape[0] * (blocks.shape[1] - 1)
    return {"nll": float(nll), "tokens": float(tokens), "correct": float(correct)}


def lm_record(stats: dict[str, float], chars_per_token: float, names: list[str]) -> dict[str, float]:
    """Loss (mean per-token cross-entropy) and the named language metrics of one split."""
    s = {**stats, "chars": stats["tokens"] * chars_per_token}
    return {"loss": s["nll"] / s["tokens"], **{n: METRICS[n].fn(s) for n in names}}


class TokenObjective(Objective):
    """What next-token and sequence-to-sequence training share: a tokenizer saved with the run, a probe of
    the logits, monitor and optimizer from the config, DDP and compile, and a step of micro-batches whose
    loss ``token_loss`` gives."""

    log_names = ("loss",)

    def __init__(self, model: torch.nn.Module, inputs: Inputs, run_dir: Path, resume: Path | None = None):
        self.model, self.inputs, self.run_dir, self.resume = model, inputs, Path(run_dir), resume
        self.module = model

    def probe(self, *args: torch.Tensor) -> tuple[int, ...]:
        """The per-sample shape of the model's output on ``args`` (evaluation mode, no gradients)."""
        self.model.to(args[0].device)
        was = self.model.training
        self.model.eval()
        with torch.no_grad():
            shape = tuple(self.model(*args).shape[1:])
        self.model.train(was)
        return shape

    def setup_training(self, ctx: Context, task: str, has_val: bool, n_train: int, tokenizer: Any) -> None:
        """Metrics and monitor of ``task``, label smoothing, the optimizer; the tokenizer saved in the run."""
        cfg = ctx.cfg
        self.metric_names = cfg.metric_names(task)
        es = cfg.early_stopping
        self.monitor = es.monitor if es else ("val.loss" if has_val else "train.loss")
        check_monitor(self.monitor, self.metric_names, has_val, "train.early_stopping.monitor")
        self.mode = cfg.monitor_mode() if es else "min"
        self.smoothing = label_smoothing(cfg)
        self.optimizer = build_optimizer(resolve_optimizer(cfg.optimizer), self.model.parameters())
        self.optimizers = {"model": self.optimizer}
        self.generators = {}
        self.n_train = n_train
        if ctx.dist.main:
            tokenizer.save(self.run_dir / FILE)

    def wrap(self, ctx: Context) -> None:
        """DDP, then torch.compile if asked."""
        net = ctx.dist.wrap(self.model, ctx.cfg.sync_batchnorm, ctx.reporter.note)
        self.net = torch.compile(net) if ctx.cfg.compile else net
        self.no_sync = ctx.dist.no_sync(self.net)

    def token_loss(self, idx: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the training samples ``idx`` (inside autocast)."""
        raise NotImplementedError

    def step(self, ctx: Context, micro: Sequence[tuple[torch.Tensor, float]]) -> torch.Tensor:
        """Forward and backward on each micro-batch (gradients synchronised on the last), one optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        total = None
        for j, (idx, weight) in enumerate(micro):
            with self.no_sync(j + 1 < len(micro)):
                with ctx.amp:
                    loss = self.token_loss(idx)
                if weight != 1.0:
                    loss = loss * weight
                ctx.backward(loss)
            total = loss.detach() if total is None else total + loss.detach()
        ctx.update(self.optimizer, self.model.parameters)
        return total.reshape(1)  # type: ignore[union-attr]


class Language(TokenObjective):
    """Next-token prediction: ``model(ids[:, :-1])`` scored against ``ids[:, 1:]`` at every position."""

    name = "language"

    def prepare(self, ctx: Context) -> None:
        """Tokenizer and blocks (the saved tokenizer when resuming), a probe of the logits, optimizer."""
        saved = Path(self.resume) / FILE if self.resume is not None else None
        self.data: LMData = language_data(ctx.cfg, self.inputs, ctx.device, saved)
        check_ids(self.model, self.data.tokenizer)
        out_shape = self.probe(self.data.train[:2, :-1])
        check_vocab(out_shape, self.data.block, self.data.tokenizer.vocab_size, "a language model")
        self.setup_training(ctx, "language", self.data.val is not None, len(self.data.train), self.data.tokenizer)

    def token_loss(self, idx: torch.Tensor) -> torch.Tensor:
        """Per-token cross-entropy of the blocks ``idx`` against themselves shifted by one."""
        b = self.data.train[idx]
        out = self.net(b[:, :-1])
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), b[:, 1:].reshape(-1), label_smoothing=self.smoothing)

    def end_epoch(self, ctx: Context, ep: Epoch, record: dict[str, Any]) -> None:
        """Train perplexity from the epoch's mean loss; the whole validation split."""
        loss = record["train"]["loss"]
        if "perplexity" in self.metric_names:
            record["train"]["perplexity"] = math.exp(min(loss, 700.0))
        if self.data.val is not None:
            self.net.eval()
            stats = lm_stats(ckpt._unwrap(self.net), self.data.val, ctx.cfg.eval_batch_size, ctx.amp)
            record["val"] = lm_record(stats, self.data.chars_per_token["val"], self.metric_names)

    def config(self) -> dict[str, Any]:
        """The declared input, the block length and the tokenizer file, for eval and generation."""
        return {"inputs": [[list(v) if isinstance(v, tuple) else v for v in i] for i in self.inputs],
                "text": {"task": "language", "block": self.data.block, "tokenizer": FILE,
                         "vocab_size": self.data.tokenizer.vocab_size}}

    def finish(self, ctx: Context, rd: RunDir, history: list[dict[str, Any]]
               ) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
        """Test with the best weights, beside unigram and bigram perplexities of the training split."""
        if ctx.dist.main and (rd.best / ckpt.WEIGHTS).exists():
            ckpt.load_weights(self.model, rd.best)
        ctx.dist.broadcast_module(self.model)
        test: dict[str, float] = {}
        d = self.data
        if d.test is not None:
            self.model.eval()
            test = lm_record(lm_stats(self.model, d.test, ctx.cfg.eval_batch_size, ctx.amp),
                             d.chars_per_token["test"], self.metric_names)
            test.update(baselines(d))
            ctx.reporter.note("test  " + "  ".join(f"{k} {v:.4g}" for k, v in test.items()))
        if ctx.dist.main and ctx.cfg.plots and history:
            from netc.runner.supervised import _plots

            _plots(rd, history, {}, ctx.reporter)
        return test, {}, {}


def baselines(d: LMData) -> dict[str, float]:
    """Unigram and bigram (add-one) perplexities on the test split, counted on the training split."""
    if d.test_ids is None:
        return {}
    v = d.tokenizer.vocab_size
    return {"unigram_perplexity": ngram_perplexity(d.train_ids, d.test_ids, v, 1),
            "bigram_perplexity": ngram_perplexity(d.train_ids, d.test_ids, v, 2)}
