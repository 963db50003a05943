"""GPU bench: netc's CUDA paths, training and inference, verified in one run (issue 20).

    python bench/gpu.py --out /tmp/gpu              # a machine with CUDA: every step, under 8 minutes on one GPU
    python bench/gpu.py --dry-run --out /tmp/gpu    # no GPU: the same code paths on CPU at tiny sizes (CI runs it)
    python bench/gpu.py --steps examples,inference --budget 300

Writes ``gpu.json`` (every measurement, the environment) and ``gpu.md`` (one Markdown table of it all)
into ``--out`` after every row, so a run cut short still leaves its report. Exit status: 0 when every
row passed (or is n/a), 1 when any row failed, 3 when none failed but the time budget cut rows, 4 when
the watchdog stopped the run, 2 without CUDA and without ``--dry-run``.

The steps, each through netc's own entry points:

1. **examples**: every ``examples/*.yaml`` trained in this process by ``netc.cli.main(["train", ...])``
   (the ``netc train`` command) on the CPU (fp32, the reference) and on the device in fp32, bf16 and
   fp16 (``--set train.precision=...``), same spec, seed and split, a few epochs each; the device
   run's test metric must be in the CPU run's ballpark (accuracy within ``ACCURACY_TOL``, RMSE within
   a factor ``RMSE_FACTOR``) and every logged loss finite (the engine stops on NaN: fp16 without NaN).
   The fp32 device run is then evaluated by ``netc eval RUN --device D`` (the -O2 inference graph on
   the device), which must reproduce the run's test metric. An example that does not train on the CPU
   either (no ``train:`` data for it, e.g. ``multi_input``) is n/a, with netc's message; the GAN
   objective trains in fp32 whatever ``train.precision`` says, so its bf16/fp16 rows are n/a.
2. **overhead**: epoch time of ``netc.runner.loop.fit`` (what ``netc train`` calls; progress bar on, as
   in ``bench/runner_overhead.py``) against a hand-written loop on the device (data on the device, a
   device ``randperm``, ``zero_grad/backward/step``, a validation pass) with the same module, initial
   weights, tensors and batch size, without and with ``torch.compile`` (``train.compile``; the hand
   loop compiles its model alike). Paired rounds in alternating order; bar (design.md §5): median
   per-round ratio ≤ 1.03 and difference ≤ 0.02 s per epoch.
3. **torchrun**: ``netc train examples/digits_cnn.yaml --nproc-per-node W`` (W = the GPU count; NCCL on
   CUDA, gloo on the CPU; ``train.sync_batchnorm``), then the same job with ``--max-restarts 1`` whose
   worker is SIGKILLed after epoch 2: torchrun restarts it, it resumes from the run's ``last/``, and
   its per-epoch records must equal the uninterrupted job's (to ``RESUME_TOL``).
4. **inference**: ResNet-18 and GoogLeNet (``specs/``, 224×224, 1000 classes) in eval mode with random
   BatchNorm statistics: unoptimised vs netc -O2 (``optimize_module``) vs netc -O2 as tuned
   (``tune_module``: on CUDA, cuDNN autotuning and -O2 captured in a CUDA graph among the candidates;
   its choice is in the row) vs ``torch.compile``, at batch 1 and 64; outputs must agree
   (max |Δ| / max |y| ≤ ``EVAL_TOL``; TF32 is off in this step so that the check is an fp32 one), then
   interleaved timing rounds; the tuned -O2 must not be slower than unoptimised (paired ratio ≤ ``O2_BAR``).

Time: ``--budget`` seconds in all (default 420 on a GPU, 240 in a dry run), shared among the chosen steps by weight;
a step never starts an item its remaining share cannot hold (estimated from the items before it) and
subprocesses get the share as their timeout; a watchdog writes the report and exits at budget + 45 s
(465 s by default: the issue's 8 minutes, start-up included).

``--dry-run`` (no GPU needed): device ``cpu``, precision fp32 only (netc's mixed precision needs CUDA;
on a CPU it falls back to fp32 with a note), 1 epoch on 300 samples, W = 2 gloo processes,
32×32 inputs with 10 classes and batches 1 and 4, one timing round, and ``torch.compile`` with
``backend="eager"`` (dynamo traces the same modules; the default inductor backend would need a C
compiler and a minute per model). Timings are reported, not judged, in a dry run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import functools
import io
import itertools
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as netc train sets it, before torch loads OpenMP
os.environ["NETC_DEBUG"] = "1"  # an internal error in netc.cli.main raises here (we keep its traceback)

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # runner_overhead's netc side of the loop comparison
sys.path.insert(0, str(ROOT / "tests"))  # equivalence.randomize_batchnorm, as bench/fusion.py uses it

from equivalence import randomize_batchnorm
from runner_overhead import TTYSink, hand_epoch, netc_block, write_cifar_batches

import netc
from netc.backend.build import example_inputs
from netc.backend.tune import tune_module
from netc.backend.weights import optimize_module
from netc.cli import main as netc_main
from netc.compiler.check import check_file
from netc.runner.cli import inputs_of
from netc.runner.config import TrainConfig
from netc.runner.data import load_data

EXAMPLES = ROOT / "examples"
SPECS = ROOT / "specs"
STEPS = ("examples", "overhead", "torchrun", "inference")
WEIGHT = {"examples": 0.34, "overhead": 0.19, "torchrun": 0.12, "inference": 0.35}  # shares of --budget
ACCURACY_TOL = 0.06  # |device - CPU| test accuracy after a few epochs (dropout masks differ by device)
RMSE_FACTOR = 1.3  # device / CPU test RMSE within [1/1.3, 1.3]
EVAL_TOL = 1e-4  # max |Δ| / max |y| between inference variants (fp32, TF32 off)
O2_BAR = 1.05  # -O2 / unoptimised paired latency ratio: "never slower", with 5 % for timing noise
RATIO_BAR, DIFF_BAR = 1.03, 0.02  # design.md §5: netc / hand-written epoch time, and seconds per epoch above it


# ---------------------------------------------------------------- settings: a GPU run or a dry run

@dataclass
class Settings:
    """What each step runs; ``for_device`` and ``for_dry_run`` are the two sets of values."""

    device: str
    dry: bool
    precisions: tuple[str, ...]
    epochs: int  # per example run
    sets: tuple[str, ...]  # extra --set items of every example run
    overhead_cases: tuple[str, ...]
    rounds: int  # overhead: paired rounds per case
    block_epochs: int  # overhead: measured epochs per block
    cifar_samples: int
    world: int  # torchrun processes
    ddp_epochs: int
    ddp_sets: tuple[str, ...]
    image: dict[str, int]  # inference: params of the classic specs
    batches: tuple[int, ...]
    timing_rounds: dict[int, int]  # inference: interleaved rounds per batch size
    compile_backend: str | None  # None: torch.compile's default (inductor)
    budget: float

    @classmethod
    def for_device(cls, budget: float) -> Settings:
        """One CUDA machine, sized for the issue's 8 minutes on one H200."""
        return cls(device="cuda", dry=False, precisions=("fp32", "bf16", "fp16"), epochs=6,
                   sets=("train.plots=false",), overhead_cases=("digits_cnn", "cifar10_cnn"), rounds=3,
                   block_epochs=3, cifar_samples=5000, world=torch.cuda.device_count(), ddp_epochs=10, ddp_sets=(),
                   image={"size": 224, "classes": 1000}, batches=(1, 64), timing_rounds={1: 50, 64: 20},
                   compile_backend=None, budget=budget)

    @classmethod
    def for_dry_run(cls, budget: float) -> Settings:
        """The CPU, tiny sizes: every code path above in well under a minute on 2 cores."""
        return cls(device="cpu", dry=True, precisions=("fp32",), epochs=1,
                   sets=("train.plots=false", "train.data.limit=300"), overhead_cases=("digits_cnn",), rounds=1,
                   block_epochs=1, cifar_samples=500, world=2, ddp_epochs=6, ddp_sets=("train.data.limit=600",),
                   image={"size": 32, "classes": 10}, batches=(1, 4), timing_rounds={1: 3, 4: 2},
                   compile_backend="eager", budget=budget)

    def compile(self, fn: Callable, **kw) -> Callable:
        """``torch.compile(fn)`` with this run's backend."""
        if self.compile_backend is not None:
            kw["backend"] = self.compile_backend
        return _TORCH_COMPILE(fn, **kw)


_TORCH_COMPILE = torch.compile


# ---------------------------------------------------------------- the report: rows, written as they come

@dataclass
class Row:
    """One verdict: a step's item, its status (ok / fail / n/a / skipped), a short result and the numbers."""

    step: str
    name: str
    status: str
    result: str
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


class Report:
    """The rows so far and the environment; ``save`` writes gpu.json and gpu.md."""

    def __init__(self, out: Path, settings: Settings, argv: list[str]):
        self.out, self.settings = out, settings
        self.rows: list[Row] = []
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.env = environment(settings, argv)
        out.mkdir(parents=True, exist_ok=True)

    def add(self, row: Row) -> Row:
        with self.lock:
            self.rows.append(row)
        mark = {"ok": "PASS", "fail": "FAIL", "n/a": "n/a", "skipped": "SKIP"}[row.status]
        print(f"[{row.step}] {row.name}: {mark}  {row.result}  ({row.seconds:.1f}s)"
              + (f"\n    {row.detail.splitlines()[0] if row.detail else ''}" if row.status == "fail" else ""),
              flush=True)
        self.save()
        return row

    def exit_code(self) -> int:
        statuses = {r.status for r in self.rows}
        return 1 if "fail" in statuses else 3 if "skipped" in statuses else 0

    def save(self, note: str = "") -> None:
        with self.lock:
            rows = list(self.rows)
        wall = time.perf_counter() - self.started
        doc = {"env": self.env, "settings": {k: v for k, v in asdict(self.settings).items()}, "wall_s": wall,
               "note": note, "exit_code": self.exit_code(), "rows": [asdict(r) for r in rows]}
        atomic_text(self.out / "gpu.json", json.dumps(doc, indent=2, default=str))
        atomic_text(self.out / "gpu.md", markdown(self.env, rows, wall, note))


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def markdown(env: dict[str, Any], rows: list[Row], wall: float, note: str) -> str:
    """The one table: every row of every step."""
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "fail", "n/a", "skipped")}
    lines = [f"`{env['command']}` on {env['device_name']} ({env['date']}): torch {env['torch']}, "
             f"CUDA {env['cuda'] or '-'}, cuDNN {env['cudnn'] or '-'}, {env['gpus']} GPU(s), {env['cpus']} CPUs. "
             f"Wall time {wall:.0f} s; {counts['ok']} passed, {counts['fail']} failed, {counts['n/a']} n/a, "
             f"{counts['skipped']} skipped for time." + (f" {note}" if note else ""), "",
             "| step | what | result | verdict | seconds |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        verdict = {"ok": "pass", "fail": "**FAIL**", "n/a": "n/a", "skipped": "skipped (time)"}[r.status]
        why = f" — {r.detail.splitlines()[0]}" if r.detail and r.status != "ok" else ""
        lines.append(f"| {r.step} | {r.name} | {r.result}{why} | {verdict} | {r.seconds:.1f} |".replace("\n", " "))
    return "\n".join(lines) + "\n"


def environment(s: Settings, argv: list[str]) -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {"command": "python bench/gpu.py " + " ".join(argv), "date": datetime.date.today().isoformat(),
            "device": s.device, "device_name": torch.cuda.get_device_name(0) if cuda and not s.dry else
            f"CPU ({platform.processor() or platform.machine()}, dry run)", "gpus": torch.cuda.device_count(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()
            if cuda else None, "python": platform.python_version(), "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0]}


# ---------------------------------------------------------------- time: a budget per step

class Clock:
    """The run's deadline and the current step's share of what is left."""

    def __init__(self, budget: float, steps: list[str]):
        self.end = time.perf_counter() + budget
        self.pending = list(steps)
        self.step_end = self.end

    def start(self, step: str) -> None:
        """Give ``step`` its weight's share of the time left (what earlier steps saved is shared out too)."""
        left = self.end - time.perf_counter()
        share = WEIGHT[step] / sum(WEIGHT[p] for p in self.pending)
        self.pending.remove(step)
        self.step_end = time.perf_counter() + max(0.0, left * share)

    def left(self) -> float:
        return self.step_end - time.perf_counter()

    def fits(self, estimate: float) -> bool:
        return self.left() >= estimate


CHILDREN: list[subprocess.Popen] = []  # subprocesses the watchdog must stop


def watchdog(report: Report, seconds: float) -> threading.Timer:
    """After ``seconds``: write the report as it stands, stop our subprocesses, exit 4."""

    def fire() -> None:
        for p in CHILDREN:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        report.save(note=f"STOPPED by the watchdog after {seconds:.0f} s: the rows after the last one are missing.")
        print(f"gpu.py: watchdog: over {seconds:.0f} s, stopped; partial report in {report.out}", flush=True,
              file=sys.__stdout__)  # not into a netc command's captured output
        os._exit(4)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


# ---------------------------------------------------------------- step 1: every example, CPU vs device precisions

@dataclass
class Run:
    """One in-process ``netc`` command: exit code, seconds, output, and the run directory's results."""

    code: int
    seconds: float
    output: str
    results: dict[str, Any]
    history: list[dict[str, Any]]

    def error(self) -> str:
        lines = [ln for ln in self.output.splitlines() if "error" in ln or "Error" in ln]
        return (lines[0] if lines else self.output.strip().splitlines()[-1] if self.output.strip() else "").strip()


def netc_command(argv: list[str], run_dir: Path | None = None) -> Run:
    """``netc ARGV`` in this process (netc.cli.main), its output captured; an exception is exit 70 + traceback."""
    buf = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            code = netc_main(argv)
        except SystemExit as e:  # argparse misuse
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - a bug in netc: keep the traceback in the row
            traceback.print_exc(file=buf)
            code = 70
    seconds = time.perf_counter() - t
    results, history = {}, []
    if run_dir is not None and code == 0:
        results = json.loads((run_dir / "results.json").read_text())
        history = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return Run(code, seconds, buf.getvalue(), results, history)


def example_data(name: str, s: Settings, work: Path) -> list[str]:
    """--set items giving data to an example that has none of its own here (else none).

    The CIFAR-10 CNN reads CIFAR-shaped random batches written by this bench (as runner_overhead.py does):
    its metric is chance either way, but its convolutions and loss run on the device in every precision.
    """
    if name != "cifar10_cnn":
        return []
    path = work / "cifar-10-batches-py"
    if not (path / "test_batch").exists():
        write_cifar_batches(path, s.cifar_samples, s.cifar_samples // 5)
    return ["train.data.source=cifar10", f"train.data.path={path}"]


def train_example(spec: Path, device: str, precision: str, s: Settings, out: Path, data: list[str]) -> Run:
    sets = [f"train.epochs={s.epochs}", f"train.precision={precision}", *s.sets, *data]
    argv = ["train", str(spec), "--out", str(out), "--force", "--device", device]
    for item in sets:
        argv += ["--set", item]
    return netc_command(argv, out)


def headline(run: Run) -> tuple[str, float] | None:
    """The run's test metric: (name, value); None for a GAN (no test metric)."""
    test = run.results.get("test") or {}
    for name in ("accuracy", "rmse"):
        if name in test and test[name] is not None:
            return name, float(test[name])
    return None


def finite_losses(run: Run) -> bool:
    return all(v is not None and math.isfinite(v) for r in run.history for split in ("train", "val")
               for v in (r.get(split) or {}).values())


def ballpark(name: str, got: float, ref: float) -> bool:
    if name == "accuracy":
        return abs(got - ref) <= ACCURACY_TOL
    return ref / RMSE_FACTOR <= got <= ref * RMSE_FACTOR


def epoch_seconds(run: Run) -> float:
    return statistics.median(r["seconds"] for r in run.history) if run.history else float("nan")


def step_examples(s: Settings, rep: Report, clock: Clock, work: Path) -> None:
    """Each example: the CPU fp32 reference, then the device in each precision, then netc eval on the device."""
    longest = 5.0
    for spec in sorted(EXAMPLES.glob("*.yaml")):
        name = spec.stem
        if not clock.fits(longest * (len(s.precisions) + 1)):
            rep.add(Row("examples", name, "skipped", "time budget spent", 0.0))
            continue
        # 1a. the reference: CPU, fp32, same seed and split
        data = example_data(name, s, work)
        ref = train_example(spec, "cpu", "fp32", s, work / f"{name}_cpu", data)
        longest = max(longest, ref.seconds)
        if ref.code == 1:  # a clean netc error on the CPU too: this example does not train here at all
            rep.add(Row("examples", name, "n/a", "does not train on the CPU either", ref.seconds, {"code": 1},
                        ref.error()))
            continue
        if ref.code != 0:
            rep.add(Row("examples", f"{name} cpu fp32", "fail", f"exit {ref.code}", ref.seconds, {"code": ref.code},
                        ref.output[-3000:]))
            continue
        ref_metric = headline(ref)
        gan = (ref.results.get("objective") == "gan")
        # 1b. the device, in each precision: same ballpark as the CPU, every loss finite
        for precision in s.precisions:
            label = f"{name} {s.device} {precision}"
            if gan and precision != "fp32":
                rep.add(Row("examples", label, "n/a", "the GAN objective trains in fp32 (mixed_precision = False)",
                            0.0))
                continue
            if not clock.fits(longest):
                rep.add(Row("examples", label, "skipped", "time budget spent", 0.0))
                continue
            out = work / f"{name}_{s.device}_{precision}"
            run = train_example(spec, s.device, precision, s, out, data)
            longest = max(longest, run.seconds)
            nums = {"code": run.code, "epoch_s": epoch_seconds(run), "cpu_epoch_s": epoch_seconds(ref),
                    "epochs_run": run.results.get("epochs_run"), "test": run.results.get("test"),
                    "cpu_test": ref.results.get("test")}
            if run.code != 0:
                rep.add(Row("examples", label, "fail", f"exit {run.code}", run.seconds, nums, run.output[-3000:]))
                continue
            got = headline(run)
            if ref_metric is None or got is None:  # no test metric (the GAN): its finite losses are the evidence
                last, cpu_last = run.history[-1]["train"], ref.history[-1]["train"]
                ok = finite_losses(run)
                rep.add(Row("examples", label, "ok" if ok else "fail",
                            "train " + ", ".join(f"{k} {v:.3g}" for k, v in last.items())
                            + " (CPU " + ", ".join(f"{k} {v:.3g}" for k, v in list(cpu_last.items())[:2]) + "); epoch "
                              f"{nums['epoch_s']:.2f}s vs CPU {nums['cpu_epoch_s']:.2f}s", run.seconds, nums))
                continue
            metric, value = got
            ok = finite_losses(run) and ballpark(metric, value, ref_metric[1])
            rep.add(Row("examples", label, "ok" if ok else "fail",
                        f"test {metric} {value:.4g} vs CPU {ref_metric[1]:.4g}; epoch {nums['epoch_s']:.2f}s vs "
                        f"CPU {nums['cpu_epoch_s']:.2f}s", run.seconds, nums,
                        "" if ok else f"outside the ballpark (accuracy ±{ACCURACY_TOL}, RMSE ×/÷{RMSE_FACTOR}) "
                                      "or a non-finite loss"))
            # 1c. netc eval on the device: the -O2 inference graph of the fp32 run gives its test metric again
            if precision == "fp32":
                ev = netc_command(["eval", str(out), "--device", s.device])
                lines = [ln.split() for ln in ev.output.splitlines()]
                shown = next((float(w[1]) for w in lines if w[:1] == [metric]), None)
                samples = next((int(w[2]) for w in lines if w[1:2] == ["split,"]), 1)  # "test split, N samples"
                # accuracy: one test sample may flip (TF32 convolutions, a near tie); printed to 4 decimals
                tol = (1.0 / samples + 1e-4) if metric == "accuracy" else 1e-3 * value + 1e-4
                ok = ev.code == 0 and shown is not None and abs(shown - value) <= tol
                rep.add(Row("examples", f"{name} netc eval {s.device} (-O2)", "ok" if ok else "fail",
                            f"test {metric} {shown if shown is not None else '-'} vs training run {value:.4g}",
                            ev.seconds, {"code": ev.code, "eval": shown, "train": value},
                            "" if ok else ev.output[-3000:]))


# ---------------------------------------------------------------- step 2: netc fit vs a hand-written loop

def hand_block(net: torch.nn.Module, model: torch.nn.Module, init: dict, data, batch: int, lr: float, epochs: int,
               device: torch.device, sink: TTYSink) -> list[float]:
    """The idiomatic device loop: ``epochs`` measured epochs after one warm-up, seconds each (start to start)."""
    model.load_state_dict(init)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    starts = []
    for epoch in range(epochs + 2):  # a warm-up, the measured ones, and a closing one (as netc_block)
        starts.append(time.perf_counter())
        if epoch == epochs + 1:
            break
        hand_epoch(net, optimizer, data, batch, epoch, sink, device)
    return [b - a for a, b in itertools.pairwise(starts[1:])]


def overhead_case(name: str, compiled: bool, s: Settings, work: Path) -> dict[str, Any]:
    """Paired rounds of netc's fit and the hand-written loop on the device: per-round ratios and differences."""
    common = {"split": {"val": 0.1, "test": 0.2, "seed": 0}, "loss": "cross_entropy", "optimizer": "adam(lr=1e-3)",
              "metrics": ["accuracy"], "plots": False, "batch_size": 64, "device": s.device, "compile": compiled}
    if name == "digits_cnn":
        spec, train = EXAMPLES / "digits_cnn.yaml", {**common, "data": "digits"}
    else:
        example_data(name, s, work)
        cifar = work / "cifar-10-batches-py"
        spec, train = EXAMPLES / "cifar10_cnn.yaml", {**common, "data": {"source": "cifar10", "path": str(cifar)}}
    program = check_file(str(spec))
    inputs = inputs_of(program.main)
    cfg = TrainConfig.from_dict(train)
    device = torch.device(s.device)
    torch.manual_seed(0)
    model = netc.build(program, train=True).to(device)
    init = copy.deepcopy(model.state_dict())
    data = load_data(cfg, inputs, device=device)  # the runner's tensors, on the device, for the hand loop
    sink = TTYSink()
    net = s.compile(model) if compiled else model
    # netc_block runs fit with train.compile as cfg says; in a dry run torch.compile is the eager backend's
    patch = (contextlib.nullcontext() if s.compile_backend is None
             else _patched_compile(functools.partial(_TORCH_COMPILE, backend=s.compile_backend)))
    netc_t, hand_t, ratios, diffs = [], [], [], []
    with patch:
        for r in range(s.rounds):
            blocks = [("netc", lambda r=r: netc_block(model, init, inputs, cfg, s.block_epochs,
                                                      work / f"{name}_{compiled}_{r}", sink)[0]),
                      ("hand", lambda: hand_block(net, model, init, data, cfg.batch_size, 1e-3, s.block_epochs,
                                                  device, sink))]
            got = {k: f() for k, f in (blocks if r % 2 == 0 else blocks[::-1])}  # alternate who goes first
            netc_t += got["netc"]
            hand_t += got["hand"]
            ratios.append(statistics.median(got["netc"]) / statistics.median(got["hand"]))
            diffs.append(statistics.median(got["netc"]) - statistics.median(got["hand"]))
    return {"netc_median_s": statistics.median(netc_t), "hand_median_s": statistics.median(hand_t),
            "median_paired_ratio": statistics.median(ratios), "median_paired_diff_s": statistics.median(diffs),
            "paired_ratios": ratios, "netc_epochs": netc_t, "hand_epochs": hand_t,
            "samples": len(data.train), "batch_size": cfg.batch_size}


@contextlib.contextmanager
def _patched_compile(fn: Callable):
    """torch.compile as ``fn`` while inside (the dry run's eager backend reaches netc's train.compile too)."""
    torch.compile = fn
    try:
        yield
    finally:
        torch.compile = _TORCH_COMPILE


def step_overhead(s: Settings, rep: Report, clock: Clock, work: Path) -> None:
    estimate = {False: 5.0, True: 60.0 if s.compile_backend is None else 10.0}  # inductor compiles take a while
    for compiled, name in itertools.product((False, True), s.overhead_cases):  # compiled last: a short budget
        label = f"{name}, {s.device}" + (", train.compile" if compiled else "")  # drops those rows first
        if not clock.fits(estimate[compiled]):
            rep.add(Row("overhead", label, "skipped", "time budget spent", 0.0))
            continue
        t = time.perf_counter()
        try:
            res = overhead_case(name, compiled, s, work)
        except Exception:  # noqa: BLE001 - the row says what broke; the other rows still run
            rep.add(Row("overhead", label, "fail", "exception", time.perf_counter() - t, {},
                        traceback.format_exc()[-3000:]))
            continue
        took = time.perf_counter() - t
        estimate[compiled] = max(estimate[compiled], took)
        ok = s.dry or (res["median_paired_ratio"] <= RATIO_BAR and res["median_paired_diff_s"] <= DIFF_BAR)
        rep.add(Row("overhead", label, "ok" if ok else "fail",
                    f"epoch netc {res['netc_median_s'] * 1e3:.1f} ms, hand {res['hand_median_s'] * 1e3:.1f} ms: "
                    f"ratio {res['median_paired_ratio']:.3f}, diff {res['median_paired_diff_s'] * 1e3:+.1f} ms"
                    + (" (dry run: not judged)" if s.dry else f" (bar ≤ {RATIO_BAR}, ≤ +{DIFF_BAR * 1e3:.0f} ms)"),
                    took, res, "" if ok else "over the runner bar of design.md §5"))


# ---------------------------------------------------------------- step 3: torchrun, and a worker killed mid-run

def children(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return sorted(out)


def ddp_command(s: Settings, out: Path, restarts: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "netc", "train", str(EXAMPLES / "digits_cnn.yaml"), "--out", str(out), "--force",
           "--device", s.device, "--nproc-per-node", str(s.world)]
    if restarts is not None:
        cmd += ["--max-restarts", str(restarts)]
    for item in (f"train.epochs={s.ddp_epochs}", "train.checkpoint_every=1", "train.plots=false",
                 "train.sync_batchnorm=true", *s.ddp_sets):
        cmd += ["--set", item]
    return cmd


def launch(cmd: list[str], timeout: float, kill_after_epoch: int | None = None, run_dir: Path | None = None
           ) -> tuple[int, str, dict[str, Any]]:
    """Run ``cmd`` (its own process group); optionally SIGKILL one worker once ``run_dir`` logged that epoch."""
    if run_dir is not None:
        shutil.rmtree(run_dir, ignore_errors=True)  # an earlier run's metrics.jsonl would trigger the kill at once
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NETC_DEBUG", None)
    with tempfile.TemporaryFile(mode="w+") as log:
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
                             start_new_session=True)
        info = _supervise(p, timeout, kill_after_epoch, run_dir)
        log.seek(0)
        return p.returncode, log.read(), info


def _supervise(p: subprocess.Popen, timeout: float, kill_after_epoch: int | None, run_dir: Path | None
               ) -> dict[str, Any]:
    """Wait for ``p`` (killing its group past ``timeout``); kill one worker once ``run_dir`` logged the epoch."""
    CHILDREN.append(p)
    info: dict[str, Any] = {}
    end = time.perf_counter() + timeout
    try:
        while p.poll() is None:
            if time.perf_counter() > end:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                info["timed_out"] = True
                break
            if kill_after_epoch is not None and "killed" not in info and run_dir is not None:
                metrics = run_dir / "metrics.jsonl"
                done = len(metrics.read_text().splitlines()) if metrics.exists() else 0
                workers = children(p.pid)
                if done >= kill_after_epoch and workers:
                    os.kill(workers[-1], signal.SIGKILL)  # one worker dies as on a lost node; torchrun restarts all
                    info.update(killed=workers[-1], killed_after_epochs=done)
            time.sleep(0.01)
    finally:
        CHILDREN.remove(p)
    return info


def same_history(a: list[dict], b: list[dict], tol: float) -> str:
    """'' when the per-epoch train/val values agree within ``tol``; else the first difference."""
    if [r["epoch"] for r in a] != [r["epoch"] for r in b]:
        return f"epochs {[r['epoch'] for r in a]} vs {[r['epoch'] for r in b]}"
    for x, y in zip(a, b):
        for split in ("train", "val"):
            for k, v in (y.get(split) or {}).items():
                w = (x.get(split) or {}).get(k)
                if w is None or v is None or abs(w - v) > tol * max(1.0, abs(v)):
                    return f"epoch {x['epoch']} {split}.{k}: {w} vs {v}"
    return ""


def read_run(run_dir: Path) -> tuple[list[dict], dict]:
    metrics, results = run_dir / "metrics.jsonl", run_dir / "results.json"
    return ([json.loads(ln) for ln in metrics.read_text().splitlines()] if metrics.exists() else [],
            json.loads(results.read_text()) if results.exists() else {})


def step_torchrun(s: Settings, rep: Report, clock: Clock, work: Path) -> None:
    backend = "nccl" if s.device == "cuda" else "gloo"
    label = f"netc train --nproc-per-node {s.world} ({backend}, sync_batchnorm)"
    note = ("; world 1: netc trains in one process (no process group, so no NCCL/DDP/SyncBatchNorm)"
            if s.world == 1 else "")
    # 3a. the job, uninterrupted
    t = time.perf_counter()
    code, output, info = launch(ddp_command(s, work / "ddp"), clock.left() * 0.45, run_dir=work / "ddp")
    took = time.perf_counter() - t
    history, results = read_run(work / "ddp")
    epochs_ok = [r["epoch"] for r in history] == list(range(1, s.ddp_epochs + 1))
    ok = code == 0 and epochs_ok and finite_losses(Run(0, 0, "", results, history))
    acc = (results.get("test") or {}).get("accuracy")
    rep.add(Row("torchrun", label, "ok" if ok else "fail",
                f"{len(history)} epochs, test accuracy {acc if acc is None else round(acc, 4)}{note}", took,
                {"code": code, "world": s.world, "backend": backend, **info, "test": results.get("test")},
                "" if ok else output[-3000:]))
    if not ok:
        return
    # 3b. the same job, a worker SIGKILLed after epoch 2: torchrun restarts it, it resumes from last/
    label = f"kill a worker after epoch 2, --max-restarts 1 ({backend})"
    if not clock.fits(took * 1.5):
        rep.add(Row("torchrun", label, "skipped", "time budget spent", 0.0))
        return
    t = time.perf_counter()
    out = work / "ddp_killed"
    code, output, info = launch(ddp_command(s, out, restarts=1), clock.left(), kill_after_epoch=2, run_dir=out)
    took = time.perf_counter() - t
    got, got_results = read_run(out)
    tol = 1e-6 if s.device == "cpu" else 0.02  # CUDA kernels (cuDNN) need not be bitwise deterministic
    differs = same_history(got, history, tol)
    resumed = "resuming from" in output
    ok = code == 0 and "killed" in info and resumed and not differs
    why = ("the job ended before a worker could be killed (more epochs needed)" if "killed" not in info else
           "no 'resuming from' line: torchrun did not restart the worker" if not resumed else differs)
    rep.add(Row("torchrun", label, "ok" if ok else "fail",
                f"killed pid {info.get('killed')} after {info.get('killed_after_epochs')} epoch(s); resumed; "
                f"{len(got)} epochs equal to the uninterrupted job's (tol {tol:g})" if ok else "see detail", took,
                {"code": code, **info, "test": got_results.get("test")},
                "" if ok else f"{why}\n{output[-3000:]}"))


# ---------------------------------------------------------------- step 4: inference of the classic specs

def timed(variants: dict[str, Callable], x: tuple, rounds: int, sync: Callable[[], None]) -> dict[str, list[float]]:
    """Seconds per call of each variant, interleaved in a shuffled order each round (after one warm-up call)."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants.items())
    shuffle = random.Random(0).shuffle
    with torch.inference_mode():
        for f in variants.values():
            f(*x)
        sync()
        for _ in range(rounds):
            shuffle(order)
            for name, f in order:
                t = time.perf_counter()
                f(*x)
                sync()
                times[name].append(time.perf_counter() - t)
    return times


def paired(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def step_inference(s: Settings, rep: Report, clock: Clock, work: Path) -> None:
    device = torch.device(s.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # an fp32 equality check
    estimate = 20.0 if s.compile_backend is not None else 60.0
    try:
        for spec in (SPECS / "resnet18.yaml", SPECS / "googlenet.yaml"):
            name = f"{spec.stem} {s.image['size']}×{s.image['size']}"
            if not clock.fits(estimate):
                rep.add(Row("inference", name, "skipped", "time budget spent", 0.0))
                continue
            began = t = time.perf_counter()
            try:
                unopt = randomize_batchnorm(netc.build(spec, train=False, params=s.image)).to(device).eval()
                variants = {"unoptimised": unopt, "netc -O2": optimize_module(unopt),
                            "torch.compile": s.compile(unopt, dynamic=False)}
                for b in s.batches:
                    x = tuple(v.to(device) for v in example_inputs(unopt.netc_graph, batch=b, seed=b))
                    # the tuner's choice for this batch (on CUDA: cuDNN autotuning, -O2 in a CUDA graph, …)
                    tuned = tune_module(unopt, b, inputs=x, cache_dir=work / "tune", budget_s=2.0 if not s.dry else 0.2)
                    variants["netc -O2 (tuned)"] = tuned
                    with torch.inference_mode():  # the check (and torch.compile's compilation, on first call)
                        y = unopt(*x)
                        errors = {k: float((f(*x) - y).abs().max() / y.abs().max()) for k, f in variants.items()}
                    times = timed(variants, x, s.timing_rounds[b], sync)
                    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                    ratios = {k: paired(times, k, "unoptimised") for k in variants}
                    bad = {k: e for k, e in errors.items() if not e <= EVAL_TOL}
                    slow = not s.dry and ratios["netc -O2 (tuned)"] > O2_BAR
                    shown = ", ".join(f"{k} {ms[k]:.2f} ms" + (f" (×{ratios[k]:.2f})" if k != "unoptimised" else "")
                                      for k in variants)
                    rep.add(Row("inference", f"{name}, batch {b}", "fail" if bad or slow else "ok",
                                f"{shown}; max rel err {max(errors.values()):.1e}"
                                + (" (dry run: times not judged)" if s.dry else ""), time.perf_counter() - t,
                                {"batch": b, "ms": ms, "ratio_to_unoptimised": ratios, "max_rel_err": errors,
                                 "rounds": s.timing_rounds[b], "tuned_choice": tuned.netc_choice},
                                f"outputs differ: {bad}" if bad else
                                f"tuned -O2 slower than unoptimised (×{ratios['netc -O2 (tuned)']:.3f} > {O2_BAR})"
                                if slow else ""))
                    t = time.perf_counter()
            except Exception:  # noqa: BLE001 - the row says what broke; the other model still runs
                rep.add(Row("inference", name, "fail", "exception", time.perf_counter() - t, {},
                            traceback.format_exc()[-3000:]))
            estimate = max(estimate, time.perf_counter() - began)  # the next model: build, compiles, timing
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: the same code paths without a GPU")
    ap.add_argument("--out", type=Path, default=None, help="where gpu.json and gpu.md go (default: a temporary "
                                                           "directory)")
    ap.add_argument("--work", type=Path, default=None, help="where the run directories go (default: a temporary "
                                                            "directory; kept out of --out, which may be copied back)")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--budget", type=float, default=None, help="seconds for all steps (default 420; 240 in a dry "
                                                               "run); a watchdog stops the run 45 s after it")
    a = ap.parse_args(argv)
    steps = [x for x in a.steps.split(",") if x]
    unknown = [x for x in steps if x not in STEPS]
    if unknown:
        ap.error(f"unknown step(s) {unknown}; choose from {','.join(STEPS)}")
    if not a.dry_run and not torch.cuda.is_available():
        print("gpu.py: no CUDA device here; run with --dry-run to exercise the same code paths on the CPU",
              file=sys.stderr)
        return 2
    s = (Settings.for_dry_run if a.dry_run else Settings.for_device)(a.budget or (240.0 if a.dry_run else 420.0))
    out = (a.out or Path(tempfile.mkdtemp(prefix="netc_gpu_"))).resolve()
    work = (a.work or Path(tempfile.mkdtemp(prefix="netc_gpu_runs_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rep = Report(out, s, argv)
    print(f"gpu.py: {rep.env['device_name']}, torch {rep.env['torch']}, steps {','.join(steps)}, budget "
          f"{s.budget:.0f}s; report in {out}, runs in {work}", flush=True)
    dog = watchdog(rep, s.budget + 45)
    clock = Clock(s.budget, steps)
    run = {"examples": step_examples, "overhead": step_overhead, "torchrun": step_torchrun,
           "inference": step_inference}
    for step in steps:
        clock.start(step)
        t = time.perf_counter()
        try:
            run[step](s, rep, clock, work)
        except Exception:  # noqa: BLE001 - one broken step is a failed row, not a lost report
            rep.add(Row(step, "(step)", "fail", "exception", time.perf_counter() - t, {},
                        traceback.format_exc()[-3000:]))
    dog.cancel()
    rep.save()
    code = rep.exit_code()
    print(f"gpu.py: {len(rep.rows)} rows, exit {code}, {time.perf_counter() - rep.started:.0f}s; "
          f"{out / 'gpu.md'} and {out / 'gpu.json'}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
