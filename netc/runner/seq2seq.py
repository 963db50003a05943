"""Sequence-to-sequence as an engine objective: teacher forcing in training, greedy or beam decoding after.

A model with two inputs, the source ids ``(N, S)`` and the target prefix ``(N, T)``, gives per-position
logits ``(N, T, V)``: position t predicts target token t + 1 from the source and the target tokens up to
t (the decoder's self-attention must be causal). Training feeds the true prefix ``[BOS] y1 .. y(T-1)``
(teacher forcing) and scores every non-padding position; validation and test also decode greedily,
one token at a time from ``[BOS]``, and count whole targets decoded exactly (``exact_match``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from netc.runner import checkpoint as ckpt
from netc.runner.engine import Context, Epoch
from netc.runner.language import TokenObjective, check_vocab
from netc.runner.metrics import METRICS
from netc.runner.rundir import RunDir
from netc.runner.text import BOS, EOS, FILE, PAD, PairData, check_ids, pair_data


def until_eos(ids: list[int]) -> list[int]:
    """The ids before the first [EOS] (padding dropped)."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i != PAD:
            out.append(int(i))
    return out


def _cached(model: torch.nn.Module, cached: bool) -> Any:
    """The model as a :class:`~netc.runner.generate.Cached` decoder stepping its target input, or None
    where it cannot step (then every token costs a full forward pass)."""
    from netc.runner.generate import Cached

    graph = getattr(model, "netc_graph", None)
    if not cached or graph is None or len(graph.inputs) != 2:
        return None
    run = Cached(model, stream=graph.inputs[1].name)
    return run if run.supports else None


@torch.no_grad()
def greedy(model: torch.nn.Module, src: torch.Tensor, length: int, batch: int = 1024,
           cached: bool = True) -> list[list[int]]:
    """Greedy decoding: each step appends the most likely next token; ids up to [EOS] per source.

    With the key/value cache the encoder runs once per batch of sources and each step is one position
    of the decoder; without it (or for a model the cache cannot step) every step is a full forward pass."""
    run = _cached(model, cached)
    out: list[list[int]] = []
    for i in range(0, len(src), batch):
        s = src[i:i + batch]
        picked = torch.empty((len(s), length), dtype=torch.long, device=s.device)
        if run is not None:
            run.reset({run.graph.inputs[0].name: s})
            nxt = torch.full((len(s),), BOS, dtype=torch.long, device=s.device)
            for t in range(length):
                nxt = run.step(nxt[:, None])[:, -1].float().argmax(-1)
                picked[:, t] = nxt
        else:
            tgt = torch.full((len(s), length), PAD, dtype=torch.long, device=s.device)
            tgt[:, 0] = BOS
            for t in range(length):  # positions after t are padding; a causal decoder never reads them
                nxt = model(s, tgt)[:, t].float().argmax(-1)
                picked[:, t] = nxt
                if t + 1 < length:
                    tgt[:, t + 1] = nxt
        out += [until_eos(r) for r in picked.tolist()]
    return out


@torch.no_grad()
def beam(model: torch.nn.Module, src: torch.Tensor, length: int, width: int, cached: bool = True) -> list[list[int]]:
    """Beam search per source: keep the ``width`` most likely prefixes (summed log-probabilities); with the
    key/value cache each step is one decoder position per beam, the caches following their beams."""
    run = _cached(model, cached)
    results = []
    for s in src:
        beams: list[tuple[float, list[int]]] = [(0.0, [])]
        done: list[tuple[float, list[int]]] = []
        if run is not None:
            run.reset({run.graph.inputs[0].name: s[None]})
            logits = run.step(torch.full((1, 1), BOS, dtype=torch.long, device=src.device))[:, -1]
        for t in range(length):
            if run is None:
                tgt = torch.full((len(beams), length), PAD, dtype=torch.long, device=src.device)
                tgt[:, 0] = BOS
                for b, (_, ids) in enumerate(beams):
                    tgt[b, 1:1 + len(ids)] = torch.tensor(ids[:length - 1], dtype=torch.long)
                logits = model(s.expand(len(beams), -1), tgt)[:, t]
            logp = F.log_softmax(logits.float(), -1)
            top = torch.topk(logp, min(width, logp.shape[-1]), dim=-1)
            grown = [(score + float(v), ids + [int(k)], b) for b, ((score, ids), vs, ks) in
                     enumerate(zip(beams, top.values, top.indices)) for v, k in zip(vs, ks)]
            grown.sort(key=lambda c: -c[0])
            beams, parents = [], []
            for score, ids, b in grown:
                if ids[-1] == EOS or t == length - 1:
                    done.append((score, ids))
                else:
                    beams.append((score, ids))
                    parents.append(b)
                if len(beams) == width:
                    break
            if not beams or (len(done) >= width and max(d[0] for d in done) >= beams[0][0]):
                break
            if run is not None:  # the surviving beams' caches, then one step on each beam's new token
                run.reorder(torch.tensor(parents, device=src.device))
                logits = run.step(torch.tensor([[ids[-1]] for _, ids in beams], device=src.device))[:, -1]
        best = max(done or beams, key=lambda c: c[0])
        results.append(until_eos(best[1]))
    return results


@torch.no_grad()
def pair_stats(model: torch.nn.Module, src: torch.Tensor, tgt: torch.Tensor, batch: int, amp: Any,
               decode: bool = True) -> dict[str, float]:
    """Teacher-forced cross-entropy, token hits and (``decode``) greedy exact matches over a split."""
    nll = torch.zeros((), dtype=torch.float64, device=src.device)
    correct = torch.zeros((), dtype=torch.int64, device=src.device)
    for i in range(0, len(src), batch):
        s, t = src[i:i + batch], tgt[i:i + batch]
        with amp:
            out = model(s, t[:, :-1]).float()
        flat, y = out.reshape(-1, out.shape[-1]), t[:, 1:].reshape(-1)
        keep = y != PAD
        nll += F.cross_entropy(flat[keep], y[keep], reduction="sum").double()
        correct += (flat[keep].argmax(-1) == y[keep]).sum()
    stats = {"nll": float(nll), "tokens": float((tgt[:, 1:] != PAD).sum()), "correct": float(correct),
             "sequences": float(len(src)), "exact": 0.0}
    if decode:
        got = greedy(model, src, tgt.shape[1] - 1, batch)
        want = [until_eos(r) for r in tgt[:, 1:].tolist()]
        stats["exact"] = float(sum(g == w for g, w in zip(got, want)))
    return stats


def pair_record(stats: dict[str, float], names: list[str]) -> dict[str, float]:
    """Loss (mean cross-entropy per target token) and the named seq2seq metrics of one split."""
    return {"loss": stats["nll"] / stats["tokens"], **{n: METRICS[n].fn(stats) for n in names}}


class Seq2Seq(TokenObjective):
    """``model(src, [BOS] y[:-1])`` scored against ``y`` at every non-padding target position."""

    name = "seq2seq"

    def prepare(self, ctx: Context) -> None:
        """Tokenizer and padded pairs (the saved tokenizer when resuming), a probe of the logits, optimizer."""
        saved = Path(self.resume) / FILE if self.resume is not None else None
        self.data: PairData = pair_data(ctx.cfg, self.inputs, ctx.device, saved)
        check_ids(self.model, self.data.tokenizer)
        src, tgt = self.data.src["train"], self.data.tgt["train"]
        out_shape = self.probe(src[:2], tgt[:2, :-1])
        check_vocab(out_shape, tgt.shape[1] - 1, self.data.tokenizer.vocab_size, "a sequence-to-sequence model")
        self.setup_training(ctx, "seq2seq", "val" in self.data.src, len(src), self.data.tokenizer)

    def token_loss(self, idx: torch.Tensor) -> torch.Tensor:
        """Teacher-forced cross-entropy over the non-padding target tokens of the pairs ``idx``."""
        s, t = self.data.src["train"][idx], self.data.tgt["train"][idx]
        out = self.net(s, t[:, :-1])
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), t[:, 1:].reshape(-1), ignore_index=PAD,
                               label_smoothing=self.smoothing)

    def end_epoch(self, ctx: Context, ep: Epoch, record: dict[str, Any]) -> None:
        """The whole validation split: teacher-forced loss and token accuracy, greedy exact match."""
        if "val" in self.data.src:
            self.net.eval()
            stats = pair_stats(ckpt._unwrap(self.net), self.data.src["val"], self.data.tgt["val"],
                               ctx.cfg.eval_batch_size, ctx.amp, decode="exact_match" in self.metric_names)
            record["val"] = pair_record(stats, self.metric_names)

    def config(self) -> dict[str, Any]:
        """The declared inputs and the tokenizer file, for eval and decoding."""
        return {"inputs": [[list(v) if isinstance(v, tuple) else v for v in i] for i in self.inputs],
                "text": {"task": "seq2seq", "tokenizer": FILE, "vocab_size": self.data.tokenizer.vocab_size}}

    def finish(self, ctx: Context, rd: RunDir, history: list[dict[str, Any]]
               ) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
        """Test with the best weights; a few decoded test examples in results.json."""
        if ctx.dist.main and (rd.best / ckpt.WEIGHTS).exists():
            ckpt.load_weights(self.model, rd.best)
        ctx.dist.broadcast_module(self.model)
        test: dict[str, float] = {}
        extra: dict[str, Any] = {}
        d = self.data
        if "test" in d.src:
            self.model.eval()
            test = pair_record(pair_stats(self.model, d.src["test"], d.tgt["test"], ctx.cfg.eval_batch_size,
                                          ctx.amp), self.metric_names)
            got = greedy(self.model, d.src["test"][:5], d.tgt["test"].shape[1] - 1)
            extra["examples"] = [{"source": d.tokenizer.decode(s), "target": t, "prediction": d.tokenizer.decode(g)}
                                 for s, t, g in zip(d.src["test"][:5].tolist(), d.targets["test"][:5], got)]
            ctx.reporter.note("test  " + "  ".join(f"{k} {v:.4g}" for k, v in test.items()))
        if ctx.dist.main and ctx.cfg.plots and history:
            from netc.runner.supervised import _plots

            _plots(rd, history, {}, ctx.reporter)
        return test, {}, extra
