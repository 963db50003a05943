"""``netc profile SPEC_OR_RUN [--batch B] [--threads T]``: what ``netc summary`` estimates, measured.

Per layer of the unoptimised eval module: median time of its forward (forward pre-/post-hooks on every
leaf module) and its share of the whole forward; what no layer accounts for (functional adds,
activations, reshapes) is one "other" row. Then the whole forward of the unoptimised module, of each
candidate of the tuner (``netc.backend.tune``: -O2, -O2 without channels_last, pre-packed, jit frozen)
and of the peers torch.fx fuse and ``torch.jit.optimize_for_inference``, as paired medians against the
unoptimised module — and which candidate the tuner keeps. A run directory's trained weights are
profiled (its decision cache is ``RUN/tune/``); a spec gets freshly initialised weights.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path
from typing import Any

from netc.diagnostics import EXIT_OK


def layer_times(module: Any, inputs: tuple, rounds: int) -> tuple[list[tuple[str, str, float]], float]:
    """[(layer, type, median seconds)] in call order, and the median seconds of the whole forward."""
    import torch

    starts: dict[str, float] = {}
    spent: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    handles = []
    for name, m in module.named_modules():
        if name and not list(m.children()):
            kinds[name] = type(m).__name__

            def pre(_m, _x, name=name):
                starts[name] = time.perf_counter()

            def post(_m, _x, _y, name=name):
                spent.setdefault(name, []).append(time.perf_counter() - starts[name])

            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    whole = []
    try:
        with torch.inference_mode():
            module(*inputs)
            spent.clear()
            for _ in range(rounds):
                t = time.perf_counter()
                module(*inputs)
                whole.append(time.perf_counter() - t)
    finally:
        for h in handles:
            h.remove()
    layers = [(n, kinds[n], statistics.median(ts)) for n, ts in spent.items()]
    return layers, statistics.median(whole)


def run_profile(args: argparse.Namespace) -> int:
    """Print the per-layer table, the totals of every variant and the tuner's choice."""
    import torch
    from torch.fx.experimental.optimization import fuse

    from netc.backend.build import example_inputs
    from netc.backend.tune import (
        candidates,
        jit_frozen,
        paired_scores,
        relative_error,
        tune_module,
    )
    from netc.runner.cli import _build, _checked, _load_run, _supervised_graph
    from netc.runner.rundir import RunDir

    torch.set_num_threads(args.threads)
    target = Path(args.target)
    rd = RunDir.around(target) if target.is_dir() else None
    if rd is not None:
        model, _, _, _ = _load_run(args.target, None, None, "cpu")
        cache = rd.root / "tune"
    else:
        checked = _checked(args.target, args.params)
        model = _build(checked.program)
        cache = None
    model = model.eval()
    graph = _supervised_graph(checked.program) if rd is None else model.netc_graph
    inputs = example_inputs(model.netc_graph if rd is not None else graph, batch=args.batch, seed=0)

    # 1. per layer, unoptimised
    layers, total = layer_times(model, inputs, args.rounds)
    print(f"{graph.name}: batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}; "
          f"median of {args.rounds} forwards, unoptimised eval module")
    width = max([len(n) for n, _, _ in layers] + [5])
    print(f"  {'layer':<{width}}  {'type':<16} {'ms':>9} {'share':>7}")
    for n, kind, s in layers:
        print(f"  {n:<{width}}  {kind:<16} {s * 1e3:>9.3f} {s / total:>7.1%}")
    other = max(total - sum(s for _, _, s in layers), 0.0)
    print(f"  {'other':<{width}}  {'(functional ops)':<16} {other * 1e3:>9.3f} {other / total:>7.1%}")
    print(f"  {'total':<{width}}  {'':<16} {total * 1e3:>9.3f} {1:>7.0%}")

    # 2. totals: the tuner's candidates and torch's own optimisers, paired against unoptimised
    fns: dict[str, Any] = {}
    with torch.inference_mode():
        y = model(*inputs)
    builders = dict(candidates(model, inputs))
    builders["peer: torch.fx fuse"] = lambda: fuse(copy.deepcopy(model))
    builders["peer: jit optimize_for_inference"] = lambda: jit_frozen(model)
    for k, b in builders.items():
        try:
            f = b()
            with torch.inference_mode():
                if relative_error(f(*inputs), y) <= 1e-4:
                    fns[k] = f
        except Exception:  # noqa: BLE001  a variant torch cannot build here is left out
            continue
    scores = paired_scores(fns, inputs, budget_s=3.0, rounds=max(args.rounds, 10))
    print("\n  whole forward, time / unoptimised (paired median; lower is faster)")
    for k, r in sorted(scores.items(), key=lambda kv: kv[1]):
        print(f"  {k:<36} {r:>6.3f}")
    chosen = tune_module(model, inputs=inputs, cache_dir=cache)
    how = "measured now" if chosen.netc_scores is not None else "from the decision cache"
    print(f"\n  netc -O2 as tuned keeps: {chosen.netc_choice} ({how})")
    if getattr(chosen, "netc_as_matrices", ()):
        print("  convolutions run as matrix products: " + ", ".join(chosen.netc_as_matrices))
    return EXIT_OK
