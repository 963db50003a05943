"""Language-server latency against the editor bar: diagnostics within 50 ms of a didChange, default settings.

  python bench/lsp_latency.py [--edits 50] [--random 1000] [--file specs/googlenet.yaml]

Starts `netc lsp` as an editor would (a subprocess speaking JSON-RPC over stdio), opens the
largest example/spec (by node count), then sends `--edits` didChange notifications, each a
real edit (a channel count in a call's arguments changes, so the whole model is re-inferred),
and measures the time from writing the didChange to reading its publishDiagnostics (median,
p90; bar: median ≤ 50 ms). The server runs with its default settings, as an editor starts it
(no debounce while checks are fast; `--debounce-ms` measures a fixed one instead). For reference it also prints the
in-process check time of the same text (what the server spends in the front end), then sends
`--random` random edits and checks the server survives them and still answers.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's LSP client

from lsp_client import LspClient  # noqa: E402

from netc.lsp.positions import TextIndex, units  # noqa: E402

BAR_MS = 50.0


def largest_spec() -> Path:
    from netc.compiler.check import check_file

    def size(p: Path) -> int:
        try:
            return sum(len(g.nodes) for g in check_file(p).graphs.values())
        except Exception:
            return -1
    return max(sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("specs/*.yaml")]), key=size)


def argument_edits(text: str, n: int, seed: int = 0) -> list[tuple[int, int, str]]:
    """``n`` edits (start offset, end offset, new text), each changing a channel count of a call.

    A channel count (a number ≥ 16 written as an argument) can change without breaking the
    spec, so every version checks cleanly and the whole model is re-inferred each time.
    Offsets refer to the text as it is when the edit is applied (edits are applied in order).
    """
    rng = random.Random(seed)
    edits = []
    for _ in range(n):
        spots = [m for m in re.finditer(r"[(,] ?(\d+)(?=[,)])", text)
                 if int(m.group(1)) >= 16 and not text[text.rfind("\n", 0, m.start()) + 1:].lstrip().startswith("#")]
        m = rng.choice(spots)
        new = str(int(m.group(1)) + rng.choice([-2, -1, 1, 2]))
        edits.append((m.start(1), m.end(1), new))
        text = text[:m.start(1)] + new + text[m.end(1):]
    return edits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=50)
    ap.add_argument("--random", type=int, default=1000, help="random edits for the survival check (0: skip)")
    ap.add_argument("--file", type=Path, default=None, help="spec to edit (default: the largest example/spec)")
    ap.add_argument("--debounce-ms", type=float, default=None,
                    help="initializationOptions.debounceMs to send (default: none, the server's default settings)")
    args = ap.parse_args()

    path = (args.file or largest_spec()).resolve()
    text = path.read_text(encoding="utf-8")
    uri = path.as_uri()

    from netc.compiler.check import check_text
    from netc.lsp.analysis import analyze
    from netc.lsp.server import DEFAULT_DEBOUNCE_MS, SLOW_CHECK_MS

    nodes = sum(len(g.nodes) for g in check_text(text, str(path)).graphs.values())
    print(f"netc lsp latency: {path.relative_to(ROOT)} ({nodes} nodes, {len(text.splitlines())} lines)")

    client = LspClient(cwd=ROOT)
    try:
        t0 = time.perf_counter()
        client.initialize(ROOT, {} if args.debounce_ms is None else {"debounceMs": args.debounce_ms})
        t_init = time.perf_counter() - t0
        t_open = client.open(uri, text)
        t_diag, first = client.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == uri, 30)
        print(f"  start-up (process + initialize): {t_init * 1e3:.0f} ms; first diagnostics after didOpen: "
              f"{(t_diag - t_open) * 1e3:.1f} ms ({len(first['diagnostics'])} diagnostics)")

        # 1. the measured edits: one at a time, each waiting for its own diagnostics
        lat, inproc, errors = [], [], 0
        version = 1
        for start, end, new in argument_edits(text, args.edits):
            version += 1
            idx = TextIndex(text)
            (l1, c1), (l2, c2) = idx.position(start), idx.position(end)
            sent = client.change(uri, version, [{"range": {"start": {"line": l1, "character": c1},
                                                           "end": {"line": l2, "character": c2}}, "text": new}])
            text = text[:start] + new + text[end:]
            t, params = client.wait_for("textDocument/publishDiagnostics",
                                        lambda p, v=version: p["uri"] == uri and p["version"] == v, 30)
            lat.append((t - sent) * 1e3)
            errors += bool(params["diagnostics"])
        for _ in range(10):  # the same front-end work, in this process, for reference
            t = time.perf_counter()
            analyze(text, str(path))
            inproc.append((time.perf_counter() - t) * 1e3)

        lat_sorted = sorted(lat)
        median = statistics.median(lat)
        p90 = lat_sorted[min(len(lat) - 1, round(0.9 * len(lat)) - 1)]
        ok = median <= BAR_MS
        setting = "default settings" if args.debounce_ms is None else f"debounce {args.debounce_ms:g} ms"
        print(f"  didChange → publishDiagnostics over {len(lat)} edits ({setting}): median {median:.1f} ms, "
              f"p90 {p90:.1f} ms, max {max(lat):.1f} ms   bar: median ≤ {BAR_MS:.0f} ms  "
              f"{'PASS' if ok else 'FAIL'}")
        print(f"  ({errors} of the edited versions had diagnostics; in-process check of the same text: "
              f"median {statistics.median(inproc):.1f} ms)")
        print(f"  debounce: none while a document's checks take ≤ {SLOW_CHECK_MS:.0f} ms; {DEFAULT_DEBOUNCE_MS:.0f} ms "
              f"for slower ones (a fixed one: initializationOptions.debounceMs, --debounce-ms, $NETC_LSP_DEBOUNCE_MS)")

        # 2. survival: a stream of random edits, without waiting, then a hover must still answer
        if args.random:
            rng = random.Random(1)
            pieces = ["→", "->", "Conv2D(", ")", "(", ", ", "=", "😀", "\n", "\r\n", "\u2028", " ", "x",
                      "lib.", "[", "]", "{", "}", ":", "'", '"', "#", "\t", "- ", "*", "2", "\x00", ""]
            t0 = time.perf_counter()
            for _ in range(args.random):
                version += 1
                idx = TextIndex(text)
                line = rng.randrange(idx.line_count)
                a = rng.randrange(units(idx.line(line)) + 1)
                b = rng.randrange(a, units(idx.line(line)) + 1) if rng.random() < 0.5 else a
                new = "".join(rng.choice(pieces) for _ in range(rng.randrange(4)))
                client.change(uri, version, [{"range": {"start": {"line": line, "character": a},
                                                        "end": {"line": line, "character": b}}, "text": new}])
                s, e = idx.offset(line, a), idx.offset(line, b)
                text = text[:s] + new + text[e:]
            client.wait_for("textDocument/publishDiagnostics",
                            lambda p, v=version: p["uri"] == uri and p["version"] == v, 120)
            client.hover(uri, 0, 0)
            alive = client.proc.poll() is None
            print(f"  {args.random} random edits sent in {time.perf_counter() - t0:.1f} s: server "
                  f"{'alive, answering' if alive else 'DEAD'}; diagnostics published for the last version")
            ok = ok and alive
    finally:
        code = client.close()
    print(f"  shutdown/exit: exit code {code}")
    return 0 if ok and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
