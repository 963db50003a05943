"""Inference bench: netc -O2 as tuned (netc.backend.tune) against torch's optimisers, every spec, batch 1 and 16.

    python bench/inference.py                       # the table of docs/results.md (1 thread)
    python bench/inference.py --models examples     # only the examples (prefix match)
    python bench/inference.py --models resnet18 --batches 16 --rounds 30
    python bench/inference.py --no-compile          # skip torch.compile (its compile takes minutes)

Per model and batch size, in one process: the unoptimised eval module (BatchNorm with random
running statistics), ``torch.fx.experimental.optimization.fuse``, ``torch.jit.optimize_for_inference``
of the frozen script, netc -O2 as tuned (``tune_module``: the fastest of unoptimised, -O2, -O2
without channels_last, oneDNN pre-packed -O2 and jit-frozen -O2, measured here; its own cache in a
temporary directory) and, as context, ``torch.compile`` (inductor, CPU) and onnxruntime on netc's
ONNX export. Every variant's output is first checked against the unoptimised module's
(max |Δ| / max |y| ≤ 1e-4); one that fails to build or to match is reported and left out.
Timing as in bench/fusion.py: interleaved rounds in a shuffled order, medians, and *paired* ratios
(median over rounds of time(variant) / time(unoptimised) in the same round).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from equivalence import randomize_batchnorm
from fusion import interleaved, paired

import netc
from netc.backend.build import example_inputs
from netc.backend.tune import TOLERANCE, jit_frozen, relative_error, tune_module

# model → (spec, params): the classics at sizes that fit a 2-core laptop-class machine
MODELS: dict[str, tuple[str, dict]] = {
    "resnet18": ("specs/resnet18.yaml", {"classes": 10, "size": 64}),
    "googlenet": ("specs/googlenet.yaml", {"classes": 10, "size": 64}),
    "vgg16": ("specs/vgg16.yaml", {"classes": 10, "size": 32}),
    "alexnet": ("specs/alexnet.yaml", {"classes": 10, "size": 128}),
    "lenet5": ("specs/lenet5.yaml", {}),
    "cifar10_cnn": ("specs/cifar10_cnn.yaml", {}),
    "mlp": ("specs/mlp.yaml", {}),
    "lstm_classifier": ("specs/lstm_classifier.yaml", {}),
    "gru_classifier": ("specs/gru_classifier.yaml", {}),
    "transformer_classifier": ("specs/transformer_classifier.yaml", {"seq_len": 64}),
}
# and every runnable example (embedded-data sizes) whose spec builds one model: the GAN's two models
# and tuning specs are left out
MODELS |= {f"examples/{p.stem}": (f"examples/{p.name}", {}) for p in sorted((ROOT / "examples").glob("*.yaml"))
           if "gan" not in p.stem and "tune" not in p.stem}
PEERS = ("fx fuse", "jit optimize_for_inference")
CONTEXT = ("torch.compile", "onnxruntime")


def onnx_session(m: torch.nn.Module, x: tuple, tmp: Path):
    """onnxruntime on netc's ONNX export of ``m`` (one thread, like torch here)."""
    import onnxruntime as ort

    from netc.backend.compile_cmd import _onnx_export

    graph = m.netc_graph
    names = [f"in{i}" for i in range(len(x))]
    dyn = {n: {0: "N"} for n in names} | {"output": {0: "N"}}
    path = tmp / f"{graph.name}.onnx"
    _onnx_export(m, x, path, names, ["output"], dyn, graph)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda *xs: torch.from_numpy(sess.run(None, {n: t.numpy() for n, t in zip(names, xs)})[0])


def variants(m: torch.nn.Module, x: tuple, tmp: Path, compile_: bool, log) -> dict:
    from torch.fx.experimental.optimization import fuse

    builders = {
        "fx fuse": lambda: fuse(copy.deepcopy(m)),
        "jit optimize_for_inference": lambda: jit_frozen(m),
        "netc -O2 (tuned)": lambda: tune_module(m, inputs=x, cache_dir=tmp / "tune", log=log),
        "onnxruntime": lambda: onnx_session(m, x, tmp),
    }
    if compile_:
        builders["torch.compile"] = lambda: torch.compile(copy.deepcopy(m), backend="inductor")
    out = {"unoptimised": m}
    with torch.inference_mode():
        y = m(*x)
    for k, b in builders.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = b()
                with torch.inference_mode():
                    err = relative_error(f(*x), y)
        except Exception as e:  # noqa: BLE001  reported, not fatal: "where it works"
            log(f"  {k}: not run ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")
            continue
        if err > TOLERANCE:
            log(f"  {k}: left out, output differs by {err:.1e} (relative), over {TOLERANCE}")
            continue
        out[k] = f
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds at batch 16 (5× at batch 1)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    ap.add_argument("--min-seconds", type=float, default=2.0,
                    help="at least this many seconds of unoptimised forwards per row (more rounds for small models)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    cols = ["unoptimised", *PEERS, "netc -O2 (tuned)", *CONTEXT]
    print(f"torch {torch.__version__}, {args.threads} thread(s), OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"load average at start {os.getloadavg()[0]:.2f}\n")
    print("| model | batch | unoptimised (ms) | " + " | ".join(cols[1:]) + " | netc choice | "
          "netc / best peer | verdict |")
    print("|---" * (len(cols) + 5) + "|")
    misses = 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wanted = [m for m in MODELS if any(m == w or m.startswith(w + "/") for w in args.models.split(","))]
        for name in wanted:
            spec, params = MODELS[name]
            torch.manual_seed(0)
            try:
                m = randomize_batchnorm(netc.build(str(ROOT / spec), train=False, params=params))
            except Exception as e:  # noqa: BLE001  e.g. an example with two models: said, not fatal
                log(f"{name}: not built ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")
                continue
            for b in (int(s) for s in args.batches.split(",")):
                x = example_inputs(m.netc_graph, batch=b, seq=64, seed=b)
                t0 = time.perf_counter()
                v = variants(m, x, tmp, not args.no_compile, log)
                log(f"{name} b{b}: built in {time.perf_counter() - t0:.0f} s; choice "
                    f"{getattr(v.get('netc -O2 (tuned)'), 'netc_choice', '?')}")
                # enough rounds for about --min-seconds of the unoptimised module: a model whose forward
                # takes 50 µs needs thousands of rounds before a busy machine's noise leaves the median
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    m(*x)
                    once = time.perf_counter() - t0
                rounds = min(5000, max(args.rounds * (5 if b == 1 else 1), int(args.min_seconds / max(once, 1e-6))))
                res = interleaved(v, x, rounds)
                r = {k: paired(res, k, "unoptimised") for k in v}
                ms = sorted(res["unoptimised"])[len(res["unoptimised"]) // 2] * 1e3
                peers = [k for k in PEERS if k in v]
                netc_k = "netc -O2 (tuned)"
                # against the faster peer (the one with the lower time / unoptimised), paired round by round
                best = min(peers, key=lambda k: r[k]) if peers else None
                vs = paired(res, netc_k, best) if best and netc_k in v else float("nan")
                # the tuner's "unoptimised" is the unoptimised module itself: no slower by construction
                same = getattr(v.get(netc_k), "netc_choice", None) == "unoptimised"
                ok = netc_k in v and (r[netc_k] <= 1.0 or same) and vs <= 1.05
                misses += not ok
                cells = " | ".join(f"{r[k]:.3f}" if k in r else "—" for k in cols[1:])
                print(f"| {name} | {b} | {ms:.2f} | {cells} | {getattr(v.get(netc_k), 'netc_choice', '—')} | "
                      f"{vs:.3f} | {'met' if ok else 'MISSED'} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; ratios are paired medians vs unoptimised "
          "(lower is faster); netc / best peer is the paired median against the faster of fx fuse and "
          "optimize_for_inference; met = netc ≤ 1.0 × unoptimised (or its choice is the unoptimised module "
          "itself) and ≤ 1.05 × best peer")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
