"""Model-family bench: train every runnable example with ``netc train`` and check its target.

    python bench/families.py                          # every example, torch's default threads (2 here)
    python bench/families.py digits_cnn digits_lstm   # some of them
    python bench/families.py --threads 1 --json out.json --runs /tmp/families

Each example runs as its own process, exactly as a user types it: ``netc train
examples/NAME.yaml --out RUNS/NAME --force`` (fixed seeds and the documented split
{val: 0.1, test: 0.2, seed: 0} come from the spec). The bench reads the closing ``test`` line the
command prints and the run's ``results.json``, measures the command's wall time (process start to
exit: imports, data, training, test, plots), and compares with the targets of issues 5 and 6:

    digits: CNN >= 98.5 %, MLP >= 97 %, LSTM >= 95 %, GRU >= 95 %, Transformer >= 95 %, ResNet >= 98.5 %
    sunspots: the LSTM's test RMSE < the naive last-value forecast's RMSE (both printed by netc train)

The GAN is judged by bench/gan_quality.py (it needs a trained digits CNN: pass --cnn-run RUNS/digits_cnn).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# example -> (metric, comparison, target); "naive_rmse" means: below the naive forecast's RMSE
TARGETS: dict[str, tuple[str, str, float | str]] = {
    "digits_mlp": ("accuracy", ">=", 0.97),
    "digits_cnn": ("accuracy", ">=", 0.985),
    "digits_resnet": ("accuracy", ">=", 0.985),
    "digits_lstm": ("accuracy", ">=", 0.95),
    "digits_gru": ("accuracy", ">=", 0.95),
    "digits_transformer": ("accuracy", ">=", 0.95),
    "digits_inception": ("accuracy", ">=", 0.985),  # the spec's own stated expectation (not an issue bar)
    "sunspots_lstm": ("rmse", "<", "naive_rmse"),
}


def run(name: str, runs: Path, env: dict[str, str]) -> dict:
    spec = f"examples/{name}.yaml"
    out = runs / name
    cmd = ["netc", "train", spec, "--out", str(out), "--force"]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "netc", *cmd[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        return {"example": name, "error": (done.stderr or done.stdout)[-2000:], "wall_s": wall}
    test_line = [ln for ln in done.stdout.splitlines() if ln.startswith("test ")][-1]
    results = json.loads((out / "results.json").read_text())
    history = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    metric, op, target = TARGETS[name]
    value = results["test"][metric]
    bound = results["test"][target] if isinstance(target, str) else target
    ok = value >= bound if op == ">=" else value < bound
    return {"example": name, "command": " ".join(cmd[:3]), "metric": metric, "value": value, "op": op,
            "target": target, "bound": bound, "pass": ok, "wall_s": wall, "epochs_run": results["epochs_run"],
            "best_epoch": results["best_epoch"], "train_s": sum(h["seconds"] for h in history),
            "load_before": load, "test_line": test_line.strip(), "run": str(out)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("examples", nargs="*", default=list(TARGETS), help="example names (default: all)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in each run (OMP_NUM_THREADS); default: torch's own (the core count)")
    ap.add_argument("--runs", type=Path, default=None, help="where the run directories go (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = ap.parse_args()
    unknown = [n for n in a.examples if n not in TARGETS]
    if unknown:
        ap.error(f"unknown example(s) {unknown}; choose from {list(TARGETS)}")
    runs = (a.runs or Path(tempfile.mkdtemp(prefix="families_"))).resolve()
    env = dict(os.environ)
    if a.threads:
        env["OMP_NUM_THREADS"] = str(a.threads)
    import torch  # only to report the thread count the runs get

    threads = a.threads or torch.get_num_threads()
    print(f"netc train of each example: {threads} torch threads, {os.cpu_count()} CPUs, runs in {runs}", flush=True)
    rows = []
    for name in a.examples:
        r = run(name, runs, env)
        rows.append(r)
        if "error" in r:
            print(f"{name:<20} FAILED after {r['wall_s']:.0f}s\n{r['error']}", flush=True)
            continue
        shown = (f"{r['value']:.2%}" if r["metric"] == "accuracy" else f"{r['value']:.2f}")
        bound = (f"{r['bound']:.1%}" if r["metric"] == "accuracy" else f"{r['target']} {r['bound']:.2f}")
        print(f"{name:<20} test {r['metric']} {shown:>8}  target {r['op']} {bound:<18} "
              f"{'PASS' if r['pass'] else 'FAIL'}  wall {r['wall_s']:6.1f}s  ({r['epochs_run']} epochs, best "
              f"{r['best_epoch']}, epochs total {r['train_s']:.1f}s, load {r['load_before']:.1f})", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"threads": threads, "rows": rows}, indent=2))
    return 0 if all(r.get("pass") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
