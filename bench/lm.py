"""Language-model training speed: tokens per second of ``netc train`` against a hand-written nanoGPT-style loop.

    python bench/lm.py                      # examples/char_gpt.yaml on the first 60,000 characters of pydoc
    python bench/lm.py --rounds 5 --epochs 3 --chars 200000

Bar (design.md §5): netc's training tokens/s >= 0.95 x the hand-written loop's, i.e. the ratio of epoch
times netc/hand <= 1.05.

What runs, in ONE process, alternating (paired rounds, the order flipped every round):

* **netc**: ``engine.train`` with the ``Language`` objective — what ``netc train examples/char_gpt.yaml``
  runs — with the progress bar drawn as on a terminal, metrics log, checkpoints, and per epoch the whole
  validation split (loss, perplexity, bits per character, next-token accuracy).
* **hand-written**: nanoGPT's loop on the same blocks: a ``randperm`` per epoch, index slices, forward,
  per-token ``F.cross_entropy``, ``zero_grad / backward``, gradient clipping to 1.0, ``AdamW.step``; then
  a validation pass (summed cross-entropy and argmax hits) and one printed line.

Same module (built by netc from the spec, reset to the same initial weights), the same token blocks (the
runner's tokenizer and blocks), batch size, optimizer (AdamW lr 2e-3, weight decay 0.01) and threads. No
learning-rate schedule in either (the spec's cosine schedule is switched off here: nanoGPT sets its lr by
hand each step, which costs nothing to speak of). An epoch is start-to-start wall time; each block's first
epoch is a warm-up. Tokens per epoch = training blocks x block length.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as netc train sets it, before torch loads
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from runner_overhead import EpochClock, TTYSink, spread  # noqa: E402

import netc  # noqa: E402
from netc.compiler.check import check_file  # noqa: E402
from netc.runner.cli import inputs_of  # noqa: E402
from netc.runner.config import TrainConfig  # noqa: E402
from netc.runner.engine import train  # noqa: E402
from netc.runner.language import Language  # noqa: E402
from netc.runner.text import language_data  # noqa: E402

RATIO_BAR = 1.05  # epoch time netc / hand (tokens/s netc >= 0.95 x hand)
SPEC = ROOT / "examples" / "char_gpt.yaml"


def netc_block(model, init, inputs, cfg: TrainConfig, epochs: int, run_dir: Path, sink: TTYSink
               ) -> tuple[list[float], list[float]]:
    """``epochs`` measured epochs of netc's loop (after a warm-up, before a closing one): wall and CPU seconds."""
    model.load_state_dict(init)
    clock = EpochClock(sink)
    train(Language(model, inputs, run_dir), cfg.apply_overrides([f"train.epochs={epochs + 2}"]), run_dir,
          progress=clock)
    return ([b - a for a, b in zip(clock.starts[1:], clock.starts[2:])],
            [b - a for a, b in zip(clock.cpu[1:], clock.cpu[2:])])


def hand_block(model, init, blocks: torch.Tensor, val: torch.Tensor, cfg: TrainConfig, epochs: int,
               sink: TTYSink) -> tuple[list[float], list[float]]:
    """nanoGPT's loop: ``epochs`` measured epochs after one warm-up: wall and CPU seconds."""
    model.load_state_dict(init)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    times, cpu = [], []
    for epoch in range(epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        perm = torch.randperm(len(blocks))
        total = torch.zeros(())
        for i in range(0, len(blocks), cfg.batch_size):
            b = blocks[perm[i:i + cfg.batch_size]]
            logits = model(b[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), b[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.detach()
        model.eval()
        with torch.no_grad():
            nll, hits = 0.0, 0
            for i in range(0, len(val), cfg.eval_batch_size):
                b = val[i:i + cfg.eval_batch_size]
                out = model(b[:, :-1])
                flat, y = out.reshape(-1, out.size(-1)), b[:, 1:].reshape(-1)
                nll += float(F.cross_entropy(flat, y, reduction="sum"))
                hits += int((flat.argmax(-1) == y).sum())
        n_val = val.shape[0] * (val.shape[1] - 1)
        print(f"epoch {epoch} train.loss {float(total) / -(-len(blocks) // cfg.batch_size):.4f} "
              f"val.loss {nll / n_val:.4f} val.acc {hits / n_val:.4f}", file=sink)
        if epoch > 0:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return times, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=2, help="measured epochs per loop and round")
    ap.add_argument("--chars", type=int, default=60_000, help="characters of the corpus used")
    args = ap.parse_args()
    program = check_file(str(SPEC))
    inputs = inputs_of(program.main)
    cfg = TrainConfig.from_dict({**program.train, "schedule": None, "plots": False, "checkpoint_every": 0})
    cfg = cfg.apply_overrides([f"train.data.limit={args.chars}", "train.device=cpu"])
    torch.manual_seed(0)
    model = netc.build(program, train=True)
    init = copy.deepcopy(model.state_dict())
    data = language_data(cfg, inputs)
    tokens = data.train.shape[0] * data.block
    sink = TTYSink()
    print(f"{SPEC.name}: {sum(p.numel() for p in model.parameters()):,} parameters, {len(data.train)} train blocks "
          f"of {data.block} tokens ({tokens:,} tokens per epoch), batch {cfg.batch_size}, {torch.get_num_threads()} "
          f"threads; {args.rounds} rounds x {args.epochs} epochs per loop; load {os.getloadavg()[0]:.1f}", flush=True)
    netc_t: list[float] = []
    hand_t: list[float] = []
    paired: list[float] = []
    cpu_paired: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            blocks = [("netc", lambda r=r: netc_block(model, init, inputs, cfg, args.epochs, Path(work) / f"r{r}", sink)),
                      ("hand", lambda: hand_block(model, init, data.train, data.val, cfg, args.epochs, sink))]
            if r % 2:
                blocks.reverse()
            both = {k: fn() for k, fn in blocks}
            got = {k: v[0] for k, v in both.items()}
            cpu_paired.append(statistics.median(both["netc"][1]) / statistics.median(both["hand"][1]))
            netc_t += got["netc"]
            hand_t += got["hand"]
            paired.append(statistics.median(got["netc"]) / statistics.median(got["hand"]))
            print(f"  round {r + 1}: netc {tokens / statistics.median(got['netc']):,.0f} tokens/s  hand "
                  f"{tokens / statistics.median(got['hand']):,.0f} tokens/s  epoch-time ratio {paired[-1]:.3f} (CPU-time "
                  f"ratio {cpu_paired[-1]:.3f})",
                  flush=True)
    ratio = statistics.median(paired)
    print(f"  netc: {spread(netc_t)}  ({tokens / statistics.median(netc_t):,.0f} tokens/s)")
    print(f"  hand: {spread(hand_t)}  ({tokens / statistics.median(hand_t):,.0f} tokens/s)")
    print(f"  epoch-time ratio netc/hand (median of per-round ratios) {ratio:.3f}, bar <= {RATIO_BAR}: "
          f"{'PASS' if ratio <= RATIO_BAR else 'FAIL'}; load after {os.getloadavg()[0]:.1f}", flush=True)
    print(f"  CPU time per epoch (process_time, insensitive to waiting for a core): netc/hand median of per-round "
          f"ratios {statistics.median(cpu_paired):.3f} (per-round {min(cpu_paired):.3f}..{max(cpu_paired):.3f})")
    return 0 if ratio <= RATIO_BAR else 1


if __name__ == "__main__":
    raise SystemExit(main())
