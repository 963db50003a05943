"""Front-end latency against the bars of design.md §4.

  python bench/check_latency.py [--runs 21]

Prints, for the largest example/spec: the cold whole-process median of `netc check`
(bar ≤ 250 ms, stretch 150 ms), for reference the bare `python -c pass` start-up of
this machine, the in-process re-check median of a changed document (what a language
server does; bar ≤ 20 ms); and the check time of generated 1,000-op and 2,000-op specs
(bar ≤ 1 s, growth ≤ 2.2×). Torch must never be imported by `netc check`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def largest_spec() -> Path:
    files = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("specs/*.yaml")])
    from netc.compiler.check import check_file

    def size(p: Path) -> int:
        try:
            return len(check_file(p).main.nodes)
        except Exception:
            return -1
    return max(files, key=size)


def cold(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def generated(n_ops: int) -> str:
    """A spec with n_ops ops: a chain of residual Dense blocks written as named nodes."""
    lines = ["netc: 1", "name: generated", "input: [64]", "model:"]
    ops = 0
    i = 0
    prev = "x"
    while ops < n_ops:
        lines.append(f"  h{i}: {prev} → Dense(64) → ReLU")
        lines.append(f"  r{i}: Add(h{i}, {prev}) → LayerNorm")
        prev = f"r{i}"
        ops += 4
        i += 1
    lines.append(f"  out: {prev} → Dense(10)")
    return "\n".join(lines) + "\n"


def in_process(text: str, file: str, runs: int, cold_parse: bool = False) -> float:
    """Median in-process check time of a changed document.

    With ``cold_parse`` every chain is parsed again (no parse cache): the whole front end's
    cost for a new document; without it, what a language server pays after an edit.
    """
    from netc.compiler.check import check_text
    from netc.dsl.chain import _parse_cached

    check_text(text, file)  # warm: imports and the Lark parser, as in a running language server
    times = []
    for k in range(runs):
        edited = text.replace("netc: 1", f"netc: 1\n# edit {k}", 1)  # a changed document each time
        if cold_parse:
            _parse_cached.cache_clear()
        t = time.perf_counter()
        check_text(edited, file)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    spec = largest_spec()
    netc = [sys.executable, "-m", "netc", "check", str(spec)]
    base = cold([sys.executable, "-c", "pass"], args.runs)
    c = cold(netc, args.runs)
    probe = subprocess.run([sys.executable, "-c", "import sys, runpy; sys.argv=['netc','check',%r];"
                            "\ntry: runpy.run_module('netc', run_name='__main__')\nexcept SystemExit: pass\n"
                            "print('torch' in sys.modules)" % str(spec)], capture_output=True, text=True)
    text = spec.read_text(encoding="utf-8")
    warm = in_process(text, str(spec), args.runs * 3)
    with tempfile.TemporaryDirectory() as d:
        t1k = in_process(generated(1000), str(Path(d) / "g1000.yaml"), 5, cold_parse=True)
        t2k = in_process(generated(2000), str(Path(d) / "g2000.yaml"), 5, cold_parse=True)
    rows = [
        ("largest spec", f"{spec.relative_to(ROOT)}", ""),
        ("python -c pass (machine floor)", f"{base:.0f} ms", ""),
        ("cold `netc check` (whole process)", f"{c:.0f} ms", "bar ≤ 250 ms" + (" ✓" if c <= 250 else " ✗")),
        ("torch imported by netc check", probe.stdout.strip().splitlines()[-1] if probe.stdout else "?", "must be False"),
        ("in-process re-check (changed doc)", f"{warm:.1f} ms", "bar ≤ 20 ms" + (" ✓" if warm <= 20 else " ✗")),
        ("1,000-op spec check (no parse cache)", f"{t1k:.0f} ms", "bar ≤ 1000 ms" + (" ✓" if t1k <= 1000 else " ✗")),
        ("2,000-op spec check (no parse cache)", f"{t2k:.0f} ms", f"growth {t2k / t1k:.2f}× (bar ≤ 2.2×)" + (" ✓" if t2k / t1k <= 2.2 else " ✗")),
    ]
    w = max(len(r[0]) for r in rows)
    for name, val, bar in rows:
        print(f"{name:<{w}}  {val:<28} {bar}")


if __name__ == "__main__":
    main()
