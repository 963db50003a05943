"""Decoding speed of seq2seq models with and without the key/value cache (``netc.runner.generate.Cached``).

    python bench/decode.py                    # greedy over 512 sources and beam 3 over 16, two models
    python bench/decode.py --rounds 5 --sources 2000

Models (random weights, eval mode; the decoded tokens are checked equal first): examples/numbers_seq2seq.yaml
as trained by the example (one encoder and one decoder layer from primitives, d 96, source 48, target 6),
and specs/transformer_seq2seq.yaml at a translation-like size (the ops: 2 + 2 layers, d 128, source and
target 32). Without the cache every generated token is a full forward pass over the source and the whole
target; with it the encoder runs once and each token is one decoder position. Cells: median seconds over
rounds (interleaved, so drifting load hits both), and the paired median ratio cached / full.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netc
from netc.compiler.check import check_file
from netc.runner.seq2seq import beam, greedy

MODELS = {
    "numbers_seq2seq": (ROOT / "examples" / "numbers_seq2seq.yaml", {}),
    "transformer_seq2seq": (ROOT / "specs" / "transformer_seq2seq.yaml",
                            {"src_vocab": 64, "tgt_vocab": 64, "src_len": 32, "tgt_len": 32}),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sources", type=int, default=512, help="sources decoded greedily per round")
    ap.add_argument("--beam-sources", type=int, default=16, help="sources decoded with beam 3 per round")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds\n")
    print("| model | decoding | full passes (s) | cached (s) | cached / full |")
    print("|---|---|---|---|---|")
    for name, (path, params) in MODELS.items():
        torch.manual_seed(0)
        graph = check_file(path, params=params).main
        model = netc.build(graph, train=False).eval()
        s_len, t_len = (i.type.shape[1] for i in graph.inputs)  # (N, S) source ids, (N, T) target ids
        vocab = graph.type_of(graph.outputs[0]).shape[-1]
        src = torch.randint(4, vocab, (args.sources, s_len), generator=torch.Generator().manual_seed(1))
        jobs = {"greedy": lambda cached: greedy(model, src, t_len, batch=512, cached=cached),
                f"beam 3 ({args.beam_sources} sources)":
                    lambda cached: beam(model, src[:args.beam_sources], t_len, 3, cached=cached)}
        for job, run in jobs.items():
            assert run(True) == run(False), f"{name} {job}: the cache changed a decoded token"
            times: dict[bool, list[float]] = {True: [], False: []}
            for r in range(args.rounds):
                for cached in ((True, False) if r % 2 else (False, True)):
                    t = time.perf_counter()
                    run(cached)
                    times[cached].append(time.perf_counter() - t)
            ratio = statistics.median(a / b for a, b in zip(times[True], times[False]))
            print(f"| {name} | {job} | {statistics.median(times[False]):.3f} | {statistics.median(times[True]):.3f} "
                  f"| {ratio:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
