"""Runner overhead bench: epoch time of ``netc train`` against a hand-written PyTorch loop.

    python bench/runner_overhead.py                          # digits CNN and CIFAR-10 CNN
    python bench/runner_overhead.py --case digits --rounds 8 --epochs 4
    python bench/runner_overhead.py --threads 1              # default: torch's (2 on this machine)
    python bench/runner_overhead.py --case none --start-rounds 7   # only the time-to-first-epoch rows

Bar (design.md §4): the median epoch time of ``netc train`` is at most 1.03 x the hand-written
loop's, and never more than 0.02 s per epoch above it.

What runs, in ONE process, alternating:

* **netc**: ``netc.runner.loop.fit`` — the function ``netc train`` calls — on the spec's model,
  with the progress bar ON and rendered as on a terminal (rich, into a sink that says it is a TTY,
  so every redraw is paid for), the metrics log, automatic checkpoints, per-epoch validation,
  train/val accuracy. Data come from the runner's own loader (``train.data``).
* **hand-written**: the idiomatic PyTorch loop — tensors in memory, a ``randperm`` per epoch,
  index slices, ``zero_grad / backward / step``, the same optimizer, then a validation pass
  (loss and accuracy) and one printed line per epoch. Same module (built by netc from the same
  spec, reset to the same initial weights), same tensors (the runner's loader output), same batch
  size and threads.

Cases: the digits CNN (examples/digits_cnn.yaml on the embedded digits) and the CIFAR-10 CNN
(examples/cifar10_cnn.yaml) on CIFAR-shaped random data that this bench writes as real CIFAR-10
python batches (``data_batch_1`` + ``test_batch``, uint8 (n, 3072) and a label list, pickled as the
originals) and that netc reads through its ``cifar10`` source.

Time to first epoch (design.md §5: at most the hand-written loop's + 0.3 s), in FRESH processes,
alternating: ``netc train examples/digits_cnn.yaml --set train.epochs=1`` (the CLI as a user runs it:
spec check, torch import, model built from the emitted source, data, one epoch) against a standalone
hand-written script that imports torch and numpy, loads the same digits file (netc/data/digits.npz), normalises and splits them,
builds the same CNN with ``torch.nn`` and trains one epoch with Adam. Each is timed from spawn to
the line that reports its first epoch; reported: medians and the median paired difference.

Timing: an epoch is start-to-start wall time (training, validation, metrics, logging, progress,
checkpoints — everything between two epochs). Every round runs one block of each loop, in
alternating order; each block's first epoch is a warm-up and is not counted. Reported: the median
epoch time of each loop; per round, the ratio and the difference of the two loops' median epoch
times; the bars are checked on the medians of those per-round ratios and differences (paired
rounds are robust to the machine's load drifting between rounds); and how noisy the run was (spread of epoch times,
load average before and after).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as netc train sets it (before torch loads); both loops share it
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netc
from netc.compiler.check import check_file
from netc.runner.cli import inputs_of
from netc.runner.config import TrainConfig
from netc.runner.data import load_data
from netc.runner.loop import fit
from netc.runner.progress import Progress

RATIO_BAR = 1.03
DIFF_BAR = 0.02  # seconds per epoch


# ---------------------------------------------------------------- data written by the bench

def write_cifar_batches(directory: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Random CIFAR-shaped data as real CIFAR-10 python batches (what cifar-10-batches-py holds)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in (("data_batch_1", n_train), ("test_batch", n_test)):
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}, f, protocol=2)
    return directory


# ---------------------------------------------------------------- the two loops

class TTYSink(io.StringIO):
    """Where the progress bar draws: claims to be a terminal so rich renders every update; keeps a byte count."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


class EpochClock(Progress):
    """The CLI's progress reporter (rich bar on), also noting when each epoch starts."""

    def __init__(self, sink: TTYSink):
        super().__init__(enabled=True, stream=sink, plain=False)
        self.starts: list[float] = []
        self.cpu: list[float] = []

    def start_epoch(self, *args, **kwargs) -> None:
        self.starts.append(time.perf_counter())
        self.cpu.append(time.process_time())
        super().start_epoch(*args, **kwargs)


def netc_block(model, init, inputs, cfg: TrainConfig, epochs: int, run_dir: Path, sink: TTYSink
               ) -> tuple[list[float], list[float]]:
    """``epochs`` measured epochs of netc's loop (plus a warm-up and a closing one): wall and CPU seconds each."""
    model.load_state_dict(init)
    clock = EpochClock(sink)
    fit(model, inputs, cfg.apply_overrides([f"train.epochs={epochs + 2}"]), run_dir, progress=clock)
    return ([b - a for a, b in zip(clock.starts[1:], clock.starts[2:])],
            [b - a for a, b in zip(clock.cpu[1:], clock.cpu[2:])])


def hand_epoch(net, optimizer, data, batch: int, epoch: int, sink, device=None) -> None:
    """One epoch of the idiomatic hand-written loop: tensors in memory, a randperm, index slices,
    zero_grad / backward / step, then a validation pass and one printed line (reading the device)."""
    x, y = data.train.xs[0], data.train.y
    xv, yv = data.val.xs[0], data.val.y
    n = len(y)
    net.train()
    perm = torch.randperm(n, device=device)
    total = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        xb, yb = x[idx], y[idx]
        out = net(xb)
        loss = F.cross_entropy(out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
        correct += (out.argmax(1) == yb).sum()
    net.eval()
    with torch.no_grad():
        vout = net(xv)
        vloss = F.cross_entropy(vout, yv).item()  # reads the device: the epoch's work is done here
        vacc = (vout.argmax(1) == yv).float().mean().item()
    print(f"epoch {epoch}  train.loss {total.item() / n:.4f}  train.accuracy {correct.item() / n:.4f}  "
          f"val.loss {vloss:.4f}  val.accuracy {vacc:.4f}", file=sink)


def hand_block(model, init, data, cfg: TrainConfig, epochs: int, sink: TTYSink) -> tuple[list[float], list[float]]:
    """The hand-written loop: ``epochs`` measured epochs after one warm-up: wall and CPU seconds each."""
    model.load_state_dict(init)
    lr = float(cfg.optimizer.split("lr=")[1].split(")")[0].split(",")[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    times, cpu = [], []
    for epoch in range(epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        hand_epoch(model, optimizer, data, cfg.batch_size, epoch, sink)
        if epoch > 0:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return times, cpu


# ---------------------------------------------------------------- one case

def spread(ts: list[float]) -> str:
    q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
    return f"median {statistics.median(ts):.4f}s  IQR {q[0]:.4f}-{q[2]:.4f}s  min {min(ts):.4f}s  max {max(ts):.4f}s"


def run_case(name: str, spec: Path, train: dict, rounds: int, epochs: int, work: Path) -> dict:
    program = check_file(str(spec))
    inputs = inputs_of(program.main)
    cfg = TrainConfig.from_dict(train)
    torch.manual_seed(0)
    model = netc.build(program, train=True)
    init = copy.deepcopy(model.state_dict())
    data = load_data(cfg, inputs)  # the runner's tensors, for the hand-written loop
    sink = TTYSink()
    print(f"\n== {name}: {spec.relative_to(ROOT)}, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{len(data.train)} train / {len(data.val)} val samples of {tuple(data.train.xs[0].shape[1:])}, "
          f"batch {cfg.batch_size}, {cfg.optimizer}, {torch.get_num_threads()} threads; {rounds} rounds x "
          f"{epochs} epochs per loop", flush=True)
    netc_times: list[float] = []
    hand_times: list[float] = []
    paired: list[float] = []
    diffs: list[float] = []
    cpu_paired: list[float] = []
    for r in range(rounds):
        blocks = [("netc", lambda r=r: netc_block(model, init, inputs, cfg, epochs, work / f"{name}_{r}", sink)),
                  ("hand", lambda: hand_block(model, init, data, cfg, epochs, sink))]
        if r % 2:
            blocks.reverse()
        both = {k: fn() for k, fn in blocks}
        got = {k: v[0] for k, v in both.items()}
        netc_times += got["netc"]
        hand_times += got["hand"]
        cpu_paired.append(statistics.median(both["netc"][1]) / statistics.median(both["hand"][1]))
        paired.append(statistics.median(got["netc"]) / statistics.median(got["hand"]))
        diffs.append(statistics.median(got["netc"]) - statistics.median(got["hand"]))
        print(f"  round {r + 1}: netc {statistics.median(got['netc']):.4f}s  hand {statistics.median(got['hand']):.4f}s"
              f"  ratio {paired[-1]:.3f}  (CPU ratio {cpu_paired[-1]:.3f})", flush=True)
    mn, mh = statistics.median(netc_times), statistics.median(hand_times)
    result = {"case": name, "netc_median_s": mn, "hand_median_s": mh, "ratio_of_medians": mn / mh,
              "median_paired_ratio": statistics.median(paired), "diff_s": statistics.median(diffs),
              "diff_of_medians_s": mn - mh, "paired_diffs": diffs,
              "netc_epochs": netc_times, "hand_epochs": hand_times, "paired_ratios": paired,
              "cpu_paired_ratios": cpu_paired, "median_cpu_ratio": statistics.median(cpu_paired),
              "progress_chars": sink.chars}
    ok_ratio = result["median_paired_ratio"] <= RATIO_BAR
    ok_diff = result["diff_s"] <= DIFF_BAR
    print(f"  netc: {spread(netc_times)}")
    print(f"  hand: {spread(hand_times)}")
    print(f"  epoch-time ratio netc/hand: median of per-round ratios {result['median_paired_ratio']:.3f} "
          f"(ratio of medians {result['ratio_of_medians']:.3f}; per-round {min(paired):.3f}..{max(paired):.3f}) "
          f"bar <= {RATIO_BAR}: {'PASS' if ok_ratio else 'FAIL'}")
    print(f"  difference per epoch: median of per-round differences {result['diff_s'] * 1000:+.1f} ms (difference "
          f"of medians {result['diff_of_medians_s'] * 1000:+.1f} ms; per-round {min(diffs) * 1000:+.1f}.."
          f"{max(diffs) * 1000:+.1f} ms), bar <= {DIFF_BAR * 1000:.0f} ms: "
          f"{'PASS' if ok_diff else 'FAIL'}   (progress bar drew {sink.chars:,} characters)", flush=True)
    print(f"  CPU time per epoch (process_time, insensitive to waiting for a core): netc/hand median of per-round "
          f"ratios {result['median_cpu_ratio']:.3f} (per-round {min(cpu_paired):.3f}..{max(cpu_paired):.3f})", flush=True)
    result["pass"] = ok_ratio and ok_diff
    return result


HAND_SCRIPT = r'''
import torch
from torch import nn
import torch.nn.functional as F
import numpy as np

torch.manual_seed(0)
d = np.load(DIGITS)  # the same real digits netc ships, read the same way (no scikit-learn import for either)
x = torch.tensor(d["data"] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
y = torch.tensor(d["target"])
perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
n_test, n_val = int(0.2 * len(x)), int(0.1 * len(x))
test, val, tr = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
mean, std = x[tr].mean(), x[tr].std()
x = (x - mean) / std


def block(cin, c):
    return [nn.Conv2d(cin, c, 3, padding="same", bias=False), nn.BatchNorm2d(c), nn.ReLU()]


model = nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
model.train()
for idx in tr[torch.randperm(len(tr))].split(64):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x[idx]), y[idx])
    loss.backward()
    opt.step()
model.eval()
with torch.no_grad():
    out = model(x[val])
print(f"epoch 1/1  val.loss {float(F.cross_entropy(out, y[val])):.4g}  "
      f"val.accuracy {float((out.argmax(1) == y[val]).float().mean()):.4g}", flush=True)
'''


def time_to_first_epoch(cmd: list[str], cwd: Path) -> float:
    """Seconds from spawning ``cmd`` to the stdout line that reports its first epoch ('epoch 1/...')."""
    import subprocess

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    took = None
    for line in p.stdout:  # type: ignore[union-attr]
        if took is None and line.lstrip("\r").startswith("epoch 1/"):
            took = time.perf_counter() - t0
    if p.wait() != 0 or took is None:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {p.returncode}) or printed no first epoch")
    return took


def start_up(rounds: int, work: Path) -> dict:
    """Time to first epoch of ``netc train`` and of the hand-written script, alternating fresh processes."""
    script = work / "hand_digits_cnn.py"
    script.write_text(f"DIGITS = {str(ROOT / 'netc' / 'data' / 'digits.npz')!r}\n" + HAND_SCRIPT)
    netc_cmd = [sys.executable, "-m", "netc", "train", str(ROOT / "examples" / "digits_cnn.yaml"),
                "--set", "train.epochs=1", "--set", "train.plots=false", "--out", str(work / "start"), "--force"]
    hand_cmd = [sys.executable, str(script)]
    netc_t, hand_t = [], []
    for r in range(rounds):
        pair = [(netc_t, netc_cmd), (hand_t, hand_cmd)]
        for times, cmd in pair if r % 2 == 0 else pair[::-1]:
            times.append(time_to_first_epoch(cmd, ROOT))
    diffs = [a - b for a, b in zip(netc_t, hand_t)]
    res = {"case": "start-up", "netc_median_s": statistics.median(netc_t), "hand_median_s": statistics.median(hand_t),
           "median_paired_diff_s": statistics.median(diffs), "netc_s": netc_t, "hand_s": hand_t}
    res["pass"] = res["median_paired_diff_s"] <= 0.3
    print(f"\ntime to first epoch, digits CNN, fresh processes, {rounds} alternating rounds:")
    print(f"  netc train  median {res['netc_median_s']:.2f}s  ({spread(netc_t)})")
    print(f"  hand-written median {res['hand_median_s']:.2f}s  ({spread(hand_t)})")
    print(f"  paired difference median {res['median_paired_diff_s']:+.2f}s (bar: +0.30 s)  "
          f"{'PASS' if res['pass'] else 'FAIL'}")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=["digits", "cifar10", "all", "none"], default="all")
    ap.add_argument("--start-rounds", type=int, default=5, help="fresh-process rounds of the time-to-first-epoch "
                                                              "row (0: skip it)")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds (one block of each loop per round)")
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs per block (after one warm-up)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--cifar-samples", type=int, default=5000)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="runner_overhead_"))
    common = {"split": {"val": 0.1, "test": 0.2, "seed": 0}, "loss": "cross_entropy", "optimizer": "adam(lr=1e-3)",
              "metrics": ["accuracy"], "plots": False}
    cases = {
        "digits_cnn": (ROOT / "examples" / "digits_cnn.yaml", {**common, "data": "digits", "batch_size": 64}),
        "cifar10_cnn": (ROOT / "examples" / "cifar10_cnn.yaml",
                        {**common, "batch_size": 64,
                         "data": {"source": "cifar10",
                                  "path": str(write_cifar_batches(work / "cifar-10-batches-py", a.cifar_samples,
                                                                  a.cifar_samples // 5))}}),
    }
    chosen = [k for k in cases if a.case == "all" or k.startswith(a.case)]
    print(f"runner overhead: netc fit (progress bar on) vs hand-written loop; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {load_before[0]:.2f}")
    results = [run_case(k, *cases[k], a.rounds, a.epochs, work) for k in chosen]
    if a.start_rounds:
        results.append(start_up(a.start_rounds, work))
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-min) on {os.cpu_count()} CPUs: "
          + ("a busy machine, epoch times are noisy; compare the per-round ratios" if max(load_before[0], load_after[0])
             > (os.cpu_count() or 1) else "a quiet machine"))
    for r in results:
        if r["case"] == "start-up":
            print(f"{'first epoch':<12} netc {r['netc_median_s']:.2f}s  hand {r['hand_median_s']:.2f}s  "
                  f"diff {r['median_paired_diff_s']:+.2f} s  {'PASS' if r['pass'] else 'FAIL'}")
            continue
        print(f"{r['case']:<12} netc {r['netc_median_s']:.4f}s  hand {r['hand_median_s']:.4f}s  ratio "
              f"{r['median_paired_ratio']:.3f}  diff {r['diff_s'] * 1000:+.1f} ms  {'PASS' if r['pass'] else 'FAIL'}")
    if a.json:
        a.json.write_text(json.dumps({"load_before": load_before, "load_after": load_after,
                                      "threads": torch.get_num_threads(), "results": results}, indent=2))
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
