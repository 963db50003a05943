"""Carry trained weights through the passes: unoptimised module → optimised eval module.

The IR holds no weights, so a pass that changes them (BatchNorm folding, merged
projections) records where its nodes came from (``folded_from``, ``merged_from``)
and has a weight rule: its ``Pass.weights`` when the rule is plain arithmetic on
tensors, or an entry of ``TORCH_RULES`` here when it needs torch itself (the
compiler never imports torch). This module replays the pipeline pass by pass and
applies each rule to the weights, keyed by node name; ``TORCH_FINISH`` likewise
holds module-level finishing touches (weight memory layout).

    fast = optimize_module(trained)          # the runner's eval/predict
    fast(x) ≈ trained.eval()(x)              # within float32 rounding

``optimize_module`` applies the passes because they can be applied; ``netc.backend.tune.tune_module``
keeps the -O2 variant (or the unoptimised module) that measures fastest for a batch size, device and
thread count, and caches that decision (``netc eval`` on the CPU and ``netc profile`` use it).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from netc.backend.emit import MODULE_ATTRS, _unique
from netc.compiler.ir import Graph
from netc.compiler.passes import PASSES, steps
from netc.compiler.passes.base import FinishHook, NodeWeights, PassError, WeightRule
from netc.compiler.passes.channels_last import channels_last_tensors
from netc.compiler.passes.rewrite import op_of

if TYPE_CHECKING:
    from torch import nn


def node_attrs(graph: Graph) -> dict[str, str]:
    """Node name → attribute of the generated module (the emitter's naming, so state_dict keys match)."""
    return _unique([n.name for n in graph.nodes], MODULE_ATTRS)


def split_state(graph: Graph, state_dict: dict[str, Any]) -> NodeWeights:
    """``{"conv2d.weight": t}`` → ``{"conv2d": {"weight": t}}`` (keys of ``graph``'s module)."""
    owner = {a: n for n, a in node_attrs(graph).items()}
    out: NodeWeights = {}
    for key, value in state_dict.items():
        attr, _, rest = key.partition(".")
        if attr not in owner:
            raise PassError(f"state_dict key {key!r} belongs to no node of graph {graph.name!r}", graph.span,
                            "pass the state_dict of the module built from this graph (unoptimised)")
        out.setdefault(owner[attr], {})[rest] = value
    return out


def join_state(graph: Graph, weights: NodeWeights) -> dict[str, Any]:
    """Inverse of :func:`split_state` for ``graph``'s module."""
    attrs = node_attrs(graph)
    return {f"{attrs[n]}.{k}": v for n, params in weights.items() if n in attrs for k, v in params.items()}


def convert_weights(graph: Graph, state_dict: dict[str, Any], level: int | None = 2,
                    names: list[str] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Optimise ``graph`` (as an inference graph) and map its module's ``state_dict`` to the optimised module's."""
    before = dataclasses.replace(graph, training=False)
    weights = split_state(before, state_dict)
    for p, after in steps(before, level, names):
        rule = p.weights or TORCH_RULES.get(p.name)
        if after != before and rule is not None:
            weights = rule(before, after, weights)
        before = after
    return before, join_state(before, weights)


def optimize_module(module: nn.Module, level: int | None = 2, names: list[str] | None = None, *,
                    state_dict: dict[str, Any] | None = None, graph: Graph | None = None) -> nn.Module:
    """The optimised eval module of a (trained) netc module, with its weights converted.

    ``graph`` defaults to ``module.netc_graph`` and ``state_dict`` to ``module.state_dict()``.
    The result is on the module's device, in eval mode, for inference only, and carries
    ``netc_graph`` (the optimised graph), ``netc_source_graph`` and ``input_names``.
    """
    import torch

    from netc.backend.build import build_graph

    if graph is None:
        graph = getattr(module, "netc_graph", None)
        if graph is None:
            raise PassError(f"{type(module).__name__} was not built by netc (it has no netc_graph)", None,
                            "build it with netc.build(spec), or pass graph= explicitly")
    state = state_dict if state_dict is not None else module.state_dict()
    optimised, new_state = convert_weights(graph, state, level, names)
    fast = build_graph(optimised, type(module).__name__, train=False)
    tensors = [t for t in new_state.values() if isinstance(t, torch.Tensor)]
    devices = {t.device for t in tensors}
    dtypes = {t.dtype for t in tensors if t.is_floating_point()}
    fast.to(device=devices.pop() if len(devices) == 1 else None, dtype=dtypes.pop() if len(dtypes) == 1 else None)
    fast.load_state_dict(new_state, strict=True)
    finish_module(fast)
    fast.netc_source_graph = graph
    return fast.eval()


def finish_module(module: nn.Module, graph: Graph | None = None) -> nn.Module:
    """Apply the passes' module-level finishing touches (e.g. channels-last weights) to a module built
    from an optimised graph; idempotent. ``netc.build(..., passes=2)`` output benefits from it too."""
    graph = graph if graph is not None else module.netc_graph
    attrs = node_attrs(graph)
    for p in PASSES.values():
        hook = p.finish or TORCH_FINISH.get(p.name)
        if hook is not None:
            hook(graph, module, lambda n: getattr(module, attrs[n], None))
    return module


# ---------------------------------------------------------------- rules that need torch itself

def merge_weights(before: Graph, after: Graph, weights: NodeWeights) -> NodeWeights:
    """merge_projections: the merged layer's weight and bias are its members' concatenated along outputs."""
    import torch

    new = dict(weights)
    for node in after.nodes:
        members = node.arg("merged_from")
        if not members or node.name in weights:
            continue
        parts = [weights[m] for m in members]
        new[node.name] = {k: torch.cat([p[k] for p in parts], 0) for k in parts[0]}
        for m in members:
            new.pop(m, None)
    return new


def store_channels_last(graph: Graph, module: Any, submodule: Any) -> None:
    """channels_last: store the weights of convolutions that read channels-last tensors channels-last as well."""
    import torch

    cl = channels_last_tensors(graph)
    for n in graph.nodes:
        if op_of(n).prefers_channels_last and n.inputs[0] in cl:
            conv = submodule(n.name)
            if conv is not None and conv.weight.dim() == 4:
                conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)


TORCH_RULES: dict[str, WeightRule] = {"merge_projections": merge_weights}  # pass name → weight rule
TORCH_FINISH: dict[str, FinishHook] = {"channels_last": store_channels_last}  # pass name → finishing touch
