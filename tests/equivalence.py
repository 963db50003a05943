"""Differential checking: the module after some passes computes what the module before did.

Test support, used by the pass tests and ``bench/fusion.py``. BatchNorm layers get non-trivial
running statistics first (the defaults, mean 0 and variance 1, would hide a wrong
fold). torch is imported inside functions only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netc.compiler.ir import Graph

if TYPE_CHECKING:
    from torch import nn

RTOL, ATOL = 1.3e-6, 1e-5  # torch.testing's float32 defaults


def randomize_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random running mean/var and affine weight/bias for every BatchNorm of ``module`` (in place)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) - 0.5)
    return module


def unoptimised(graph: Graph, class_name: str = "Model", seed: int = 0) -> nn.Module:
    """The eval module of ``graph`` as written, with seeded weights and randomised BatchNorm statistics."""
    import dataclasses

    import torch

    from netc.backend.build import build_graph

    torch.manual_seed(seed)
    module = build_graph(dataclasses.replace(graph, training=False), class_name, train=False)
    return randomize_batchnorm(module, seed)


def assert_equivalent(before: nn.Module, after: nn.Module, graph: Graph, batches: tuple[int, ...] = (1, 3),
                      seq: int = 6, rtol: float = RTOL, atol: float = ATOL) -> float:
    """Both modules give the same outputs on random inputs of ``graph`` at each batch size; returns max |Δ|."""
    import torch

    from netc.backend.build import example_inputs

    worst = 0.0
    for b in batches:
        xs = example_inputs(graph, batch=b, seq=seq, seed=b)
        kept = [x.clone() for x in xs]
        with torch.inference_mode():
            want, got = _tuple(before(*xs)), _tuple(after(*xs))
        for x, k in zip(xs, kept):
            assert torch.equal(x, k), "the optimised module overwrote its input"
        assert len(want) == len(got), f"{len(want)} outputs before, {len(got)} after"
        for w, g in zip(want, got):
            torch.testing.assert_close(g, w, rtol=rtol, atol=atol)
            worst = max(worst, float((g - w).abs().max()) if w.numel() else 0.0)
    return worst


def _tuple(y: Any) -> tuple:
    return y if isinstance(y, tuple) else (y,)
