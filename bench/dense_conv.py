"""Per-layer bench of the "prepacked dense" lowering: a convolution whose input is no larger than its kernel
run as one matrix product of its dense matrix (``netc.backend.tune.dense_conv_weight``).

    python bench/dense_conv.py                      # ResNet-18's 3×3 convolutions at size 64, batch 1 and 16
    python bench/dense_conv.py --batches 16 --rounds 50

For each convolution (ResNet-18 at classes 10, size 64: 64→64 at 16×16 down to 512→512 at 2×2, random
weights): torch's convolution (NCHW), oneDNN's ``_convolution_pointwise`` on weights pre-packed for the
shape (what "prepacked" runs), and the dense matrix product through MKL (``F.linear``) and through oneDNN
on a pre-packed weight (``_linear_pointwise``, what "prepacked dense" runs) — the last two only where the
dense matrix is at most ``DENSE_MAX`` elements. Cells: median ms per call, and the paired median of
time / conv time (bench/fusion.py's timing: interleaved shuffled rounds). Outputs are checked against
the convolution first (max |Δ| / max |y| ≤ 1e-5). "as kernel" marks the convolutions the tuner's
candidate lowers (input H·W ≤ kernel kh·kw): the dense product does no more multiply-adds than the
convolution there, and more elsewhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fusion import interleaved, paired

from netc.backend.tune import DENSE_MAX, dense_conv_weight

# (in channels, out channels, input size, stride): ResNet-18's 3×3 convolutions at size 64
SHAPES = [(64, 64, 16, 1), (64, 128, 16, 2), (128, 128, 8, 1), (128, 256, 8, 2),
          (256, 256, 4, 1), (256, 512, 4, 2), (512, 512, 2, 1)]


def variants(cin: int, cout: int, hw: int, stride: int, batch: int) -> tuple[dict, tuple]:
    """Name → callable on ``x`` for one convolution, and the input."""
    torch.manual_seed(0)
    x = torch.randn(batch, cin, hw, hw)
    w, b = torch.randn(cout, cin, 3, 3) * 0.05, torch.randn(cout)
    geo = ([1, 1], [stride, stride], [1, 1], 1)
    packed = torch._C._nn.mkldnn_reorder_conv2d_weight(w.to_mkldnn(), *geo, list(x.shape))
    out = {
        "conv": lambda x: F.conv2d(x, w, b, stride=stride, padding=1),
        "oneDNN conv, pre-packed": lambda x: torch.ops.mkldnn._convolution_pointwise(x, packed, b, *geo, "none", [],
                                                                                     ""),
    }
    if cin * hw * hw * cout * (hw // stride) ** 2 <= DENSE_MAX:
        matrix, (ho, wo) = dense_conv_weight(w, (hw, hw), (stride, stride), (1, 1), (1, 1))
        bias = b.repeat_interleave(ho * wo)
        lin = torch.ops.mkldnn._reorder_linear_weight(matrix, batch)
        out["dense, MKL"] = lambda x: F.linear(x.flatten(1), matrix, bias).reshape(-1, cout, ho, wo)
        out["dense, oneDNN pre-packed"] = lambda x: torch.ops.mkldnn._linear_pointwise(
            x.flatten(1), lin, bias, "none", [], "").reshape(-1, cout, ho, wo)
    return out, (x,)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = ["conv", "oneDNN conv, pre-packed", "dense, MKL", "dense, oneDNN pre-packed"]
    print(f"torch {torch.__version__}, {args.threads} thread(s); ms per call (paired median / conv)\n")
    print("| convolution | batch | as kernel | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for b in (int(s) for s in args.batches.split(",")):
        for cin, cout, hw, s in SHAPES:
            fns, x = variants(cin, cout, hw, s, b)
            with torch.inference_mode():
                y = fns["conv"](*x)
                for k, f in fns.items():
                    err = float((f(*x) - y).abs().max() / y.abs().max())
                    assert err <= 1e-5, f"{k} differs from the convolution by {err:.1e}"
            t = interleaved(fns, x, args.rounds)
            cells = [f"{statistics.median(t[k]) * 1e3:.2f} ({paired(t, k, 'conv'):.2f})" if k in t else "—"
                     for k in names]
            small = "yes" if hw * hw <= 9 else "no"
            print(f"| {cin}→{cout}, {hw}×{hw}, stride {s} | {b} | {small} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
