"""Fusion bench: eval latency of a Conv-BN-ReLU network and a Transformer, before and after netc -O2.

    python bench/fusion.py                 # both tables, 1 and 2 threads
    python bench/fusion.py --threads 2 --rounds 30
    python bench/fusion.py --threads 1 --clock cpu   # CPU time: robust on a shared machine

Conv-BN-ReLU (6 conv blocks, 3×32×32 input, BatchNorm with random running statistics):
the unoptimised eval module against ``torch.fx.experimental.optimization.fuse``,
``torch.jit.optimize_for_inference(torch.jit.script(m))`` and netc -O2
(``netc.backend.weights.optimize_module``), at batch 1 and 64, as ratios to unoptimised;
plus -O1 and -O2 without channels_last / lower_maxpool / fuse_activation, to show what each adds.
Transformer (specs/transformer_primitives.yaml): unoptimised, -O2 without the
attention pass, and -O2, at batch 1 and 32.

Timing: all variants of one configuration run interleaved (one call each per round, in a
freshly shuffled order every round) under ``torch.inference_mode()``, with a fixed
``torch.set_num_threads``. Milliseconds are medians over rounds; ratios are *paired*:
the median over rounds of (time of a variant / time of the other) within the same round,
which cancels load that drifts during the run (other processes share the CPU). Every
variant's output is checked against the unoptimised module first (max |Δ| / max |y| ≤ 1e-5).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

# Idle OpenMP workers sleep instead of spinning (as netc train does): spinning waiters stall
# multi-threaded runs on shared cores. Set before torch loads OpenMP; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's differential helpers

from equivalence import randomize_batchnorm

import netc
from netc.backend.build import example_inputs
from netc.backend.weights import optimize_module
from netc.compiler.passes import PIPELINE

CONV_SPEC = """
netc: 1
name: conv_bn_relu
input: [3, 32, 32]
blocks:
  Unit(c): Conv2D(c, 3, padding=1, bias=false) → BatchNorm → ReLU
model: >-
  Unit(32) → Unit(32) → MaxPool(2) → Unit(64) → Unit(64) → MaxPool(2)
  → Unit(128) → Unit(128) → GlobalAvgPool → Dense(10)
"""
TRANSFORMER_SPEC = ROOT / "specs" / "transformer_primitives.yaml"
BAR = {64: 0.60, 1: 0.75}  # design.md: netc -O2 latency / unoptimised, per batch size
TOLERANCE = 1e-5  # max |Δ| / max |y_unoptimised|


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock_name = "wall"  # set by --clock


def interleaved(variants: dict[str, Callable], x: tuple, rounds: int, warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each variant in each round (every round runs every variant once)."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants.items())
    shuffle = random.Random(0).shuffle
    with torch.inference_mode():
        for f in variants.values():
            for _ in range(warmup):
                f(*x)
        for _ in range(rounds):
            shuffle(order)  # no variant always runs first (or right after the same neighbour)
            for name, f in order:
                clock = CLOCKS[clock_name]
                t = clock()
                f(*x)
                times[name].append(clock() - t)
    return times


def paired(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) within the same round: robust to load that drifts."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def check(variants: dict[str, Callable], ref: Callable, x: tuple) -> dict[str, float]:
    """Max |Δ| / max |y| of every variant against ``ref``."""
    with torch.inference_mode():
        y = ref(*x)
        out = {}
        for k, f in variants.items():
            d = float((f(*x) - y).abs().max() / y.abs().max())
            out[k] = d
            if not d <= TOLERANCE:
                raise SystemExit(f"{k}: output differs from unoptimised by {d:.2e} (relative), over {TOLERANCE}")
    return out


def conv_variants(m: torch.nn.Module) -> dict[str, Callable]:
    from torch.fx.experimental.optimization import fuse

    v: dict[str, Callable] = {"unoptimised": m, "fx fuse": fuse(copy.deepcopy(m))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v["jit optimize_for_inference"] = torch.jit.optimize_for_inference(torch.jit.script(copy.deepcopy(m)))
        except Exception as e:  # noqa: BLE001  report and go on: "where it works"
            print(f"note: torch.jit.optimize_for_inference failed: {type(e).__name__}: {e}", file=sys.stderr)
    # ablations: what each layout/activation pass adds on top of the rest of -O2
    v["netc -O1 (= unoptimised here: the noise floor)"] = optimize_module(m, 1)
    for p in ("channels_last", "lower_maxpool", "fuse_activation"):
        v[f"netc -O2 without {p}"] = optimize_module(m, names=[q for q in PIPELINE if q != p])
    v["netc -O2"] = optimize_module(m, 2)
    return v


def table(title: str, results: dict[int, dict[str, list[float]]], errors: dict[str, float]) -> list[str]:
    """Median ms per variant and batch, and the paired ratio to unoptimised."""
    batches = list(results)
    lines = [f"### {title}", "",
             "| variant | " + " | ".join(f"batch {b} (ms)" for b in batches) + " | "
             + " | ".join(f"ratio b{b}" for b in batches) + " | max rel err |",
             "|---" * (2 * len(batches) + 2) + "|"]
    for k in results[batches[0]]:
        ms = " | ".join(f"{statistics.median(results[b][k]) * 1e3:.3f}" for b in batches)
        ratio = " | ".join(f"{paired(results[b], k, 'unoptimised'):.3f}" for b in batches)
        lines.append(f"| {k} | {ms} | {ratio} | {errors.get(k, 0.0):.1e} |")
    return lines


def run(threads: int, rounds: int) -> list[str]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = [(f"## torch {torch.__version__}, {threads} thread(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
            f"{clock_name} clock; "
            f"{rounds} interleaved rounds at batch 64 and 32, {rounds * 10} (conv) and {rounds * 4} (transformer) "
            "at batch 1"), ""]

    # 1. Conv-BN-ReLU: unoptimised vs torch's fusers vs netc -O2
    m = netc.build(CONV_SPEC, train=False)
    randomize_batchnorm(m)
    variants = conv_variants(m)
    res, errs = {}, {}
    for b in (1, 64):
        x = example_inputs(m.netc_graph, batch=b, seed=b)
        errs = {k: max(errs.get(k, 0.0), e) for k, e in check(variants, m, x).items()}
        res[b] = interleaved(variants, x, rounds if b == 64 else rounds * 10)
    out += table("Conv-BN-ReLU (6 blocks, 3×32×32)", res, errs)
    verdicts = []
    for b, bar in BAR.items():
        r = paired(res[b], "netc -O2", "unoptimised")
        vs = [(k, paired(res[b], "netc -O2", k)) for k in ("fx fuse", "jit optimize_for_inference") if k in res[b]]
        verdicts.append(f"- batch {b}: netc -O2 / unoptimised = {r:.3f} (bar {bar}: {'met' if r <= bar else 'MISSED'}); "
                        + ", ".join(f"netc -O2 / {k} = {q:.3f}" for k, q in vs))
    out += ["", *verdicts, ""]

    # 2. Transformer: the attention pass's effect
    t = netc.build(TRANSFORMER_SPEC, train=False)
    no_attn = [p for p in PIPELINE if p != "fuse_attention"]
    tv = {"unoptimised": t, "netc -O2 without fuse_attention": optimize_module(t, names=no_attn),
          "netc -O2": optimize_module(t, 2)}
    tres, terrs = {}, {}
    for b in (1, 32):
        x = example_inputs(t.netc_graph, batch=b, seq=128, seed=b)
        terrs = {k: max(terrs.get(k, 0.0), e) for k, e in check(tv, t, x).items()}
        tres[b] = interleaved(tv, x, rounds if b > 1 else rounds * 4)
    out += table("Transformer (specs/transformer_primitives.yaml, T=128, d=128, 2 layers)", tres, terrs)
    return out + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds at the largest batch (default 15)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: latency (default); cpu: process CPU time, which other processes' load barely "
                         "disturbs (with --threads 1 it is the forward's own compute time)")
    args = ap.parse_args(argv)
    global clock_name
    clock_name = args.clock
    for n in (int(s) for s in args.threads.split(",")):
        print("\n".join(run(n, args.rounds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
