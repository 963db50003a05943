"""Memory and time of turning a corpus into token ids: one ``tokenizers`` call against netc's piecewise
``TextTokenizer.encode_ids`` (what ``netc train`` runs on a ``text`` or ``pydoc`` corpus).

    python bench/token_ids.py                  # a 10 MB corpus, char and bpe tokenizers
    python bench/token_ids.py --mb 20 --kinds char

The corpus is CPython's own help text (pydoc_data.topics, real prose and code) repeated to the size asked.
Each measurement runs in a fresh process that loads the tokenizer (trained on the first 1 M characters, by
the parent) and builds the corpus; then the peak resident size is reset (Linux: /proc/self/clear_refs) and
the encoding runs: its peak above the resident size before it (VmHWM - VmRSS), and its wall time. The ids of both ways are checked
equal first (in the parent, on the first 2 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from bench.token_ids import corpus
from netc.runner.text import TextTokenizer
mb, how = {mb}, {how!r}
text = corpus(mb)
tok = TextTokenizer.load({tokenizer!r})  # trained by the parent: training's own peak stays out of the number
def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))
with open("/proc/self/clear_refs", "w") as f:  # Linux: reset the peak (VmHWM) to the current resident size
    f.write("5")
base = status("VmRSS")
t = time.perf_counter()
n = len(tok.encode(text)) if how == "one call" else len(tok.encode_ids(text))
seconds = time.perf_counter() - t
peak = status("VmHWM")
print(json.dumps({{"tokens": n, "seconds": seconds, "peak_mb": (peak - base) / 1024, "chars": len(text)}}))
"""


def corpus(mb: float) -> str:
    """CPython's help topics, repeated to about ``mb`` million characters."""
    import pydoc_data.topics

    text = "\n\n".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics))
    return (text * (int(mb * 1e6) // len(text) + 1))[:int(mb * 1e6)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0, help="corpus size, millions of characters")
    ap.add_argument("--kinds", default="char,bpe")
    args = ap.parse_args(argv)
    from netc.runner.text import TextTokenizer

    print(f"corpus: pydoc_data.topics repeated to {args.mb:g} M characters\n")
    print("| tokenizer | encoding | tokens | seconds | peak memory above start (MB) | bytes per character |")
    print("|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        sample = corpus(2)
        tok = TextTokenizer.train(kind, sample[:1_000_000].split("\n\n"), 2000, False)
        assert tok.encode_ids(sample).tolist() == tok.encode(sample), f"{kind}: piecewise ids differ"
        saved = Path(tempfile.mkdtemp()) / "tokenizer.json"
        tok.save(saved)
        for how in ("one call", "piecewise (encode_ids)"):
            code = CHILD.format(root=str(ROOT), mb=args.mb, tokenizer=str(saved), how=how)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {kind} | {how} | {r['tokens']:,} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} | "
                  f"{r['peak_mb'] * 2**20 / r['chars']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
