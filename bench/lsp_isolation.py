"""Language-server isolation: how much a slow document delays another document's diagnostics.

  python bench/lsp_isolation.py [--rounds 7] [--repeat 20000]

Bar (issue 21): a hostile document (``Dense(8) * N``, N = 20,000 by default: the largest the
default node limit allows to run for a while) delays another document's diagnostics by less
than 100 ms. Starts `netc lsp` with its default settings, as an editor does, and per round opens
a small spec (examples/digits_cnn.yaml) alone, or right after opening the hostile one; measures
from writing the small document's didOpen to reading its publishDiagnostics. Reports medians of
both and their difference (the delay), and how long the hostile document's own check took.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's LSP client

from lsp_client import LspClient  # noqa: E402

DIAGS = "textDocument/publishDiagnostics"


def rounds(n: int, hostile: str | None) -> tuple[list[float], list[float]]:
    """Latencies (ms) of the small document, and of the hostile one when opened first."""
    small_text = (ROOT / "examples" / "digits_cnn.yaml").read_text(encoding="utf-8")
    client = LspClient(cwd=ROOT)
    client.initialize(ROOT, {})
    small_ms, big_ms = [], []
    try:
        for k in range(n):
            big = (ROOT / "examples" / f"isolation_big{k}.yaml").as_uri()
            small = (ROOT / "examples" / f"isolation_small{k}.yaml").as_uri()  # never written: open documents only
            if hostile is not None:
                client.open(big, hostile)
            sent = client.open(small, small_text)
            t, _ = client.wait_for(DIAGS, lambda p, u=small: p["uri"] == u)
            small_ms.append((t - sent) * 1e3)
            if hostile is not None:
                t, _ = client.wait_for(DIAGS, lambda p, u=big: p["uri"] == u, timeout=60)
                big_ms.append((t - sent) * 1e3)
    finally:
        client.close()
    return small_ms, big_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=20000, help="N in the hostile Dense(8) * N")
    a = ap.parse_args()
    hostile = f"netc: 1\nname: many\ninput: [8]\nmodel: Dense(8) * {a.repeat}\n"
    alone, _ = rounds(a.rounds, None)
    beside, big = rounds(a.rounds, hostile)
    delay = statistics.median(beside) - statistics.median(alone)
    print(f"netc lsp, default settings, {a.rounds} rounds, load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs")
    print(f"  small spec alone:                         median {statistics.median(alone):7.1f} ms")
    print(f"  small spec beside Dense(8) * {a.repeat:<6}       median {statistics.median(beside):7.1f} ms  "
          f"(the hostile document's own diagnostics: median {statistics.median(big):.0f} ms)")
    print(f"  delay {delay:+.1f} ms (bar: < 100 ms)  {'PASS' if delay < 100 else 'FAIL'}")
    return 0 if delay < 100 else 1


if __name__ == "__main__":
    sys.exit(main())
