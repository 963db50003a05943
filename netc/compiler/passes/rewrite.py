"""Graph-editing helpers shared by the passes: use counts, node construction, splicing.

Every helper returns new values; the IR stays immutable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from netc.compiler.ir import Graph, Node, TensorType
from netc.compiler.registry import REGISTRY, A, OpDef

# Arguments passes add to record where a node came from (weight rules read them).
PROVENANCE = ("folded_from", "merged_from", "fused_from")


def op_of(node: Node) -> OpDef:
    """The declaration of ``node``'s op: its facts say what a pass may do with the node."""
    opdef = REGISTRY.get(node.op)
    assert opdef is not None, f"unknown op {node.op}"
    return opdef


def use_counts(graph: Graph) -> Counter[str]:
    """How often each tensor is read: once per consuming input slot, once per graph output."""
    counts: Counter[str] = Counter()
    for n in graph.nodes:
        counts.update(n.inputs)
    counts.update(graph.outputs)
    return counts


def producers(graph: Graph) -> dict[str, Node]:
    """Node name → node."""
    return {n.name: n for n in graph.nodes}


def types_of(graph: Graph) -> dict[str, TensorType]:
    """Every tensor's type: the inputs' and each node's."""
    out = {i.name: i.type for i in graph.inputs}
    out.update((n.name, n.type) for n in graph.nodes)
    return out


def consumers(graph: Graph) -> dict[str, list[Node]]:
    """Tensor name → the nodes that read it, in graph order."""
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for i in dict.fromkeys(n.inputs):
            out.setdefault(i, []).append(n)
    return out


def fresh_name(taken: set[str], base: str) -> str:
    """``base``, or ``base_1``, ``base_2``… whichever is not taken yet (and take it)."""
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def with_args(node: Node, **updates: Any) -> tuple[tuple[str, Any], ...]:
    """``node.args`` with some values replaced and new keys appended (declaration order kept)."""
    args = [(k, updates.pop(k) if k in updates else v) for k, v in node.args]
    return tuple(args + list(updates.items()))


def make_node(op: str, name: str, args: tuple[tuple[str, Any], ...], inputs: tuple[str, ...],
              types: Mapping[str, TensorType], like: Node) -> Node:
    """A node whose type, parameters and MACs come from the op's declaration; span and source from ``like``."""
    opdef = REGISTRY.get(op)
    assert opdef is not None, f"unknown op {op}"
    values = {a.name: (None if a.required else a.default) for a in opdef.args}
    values.update(args)
    a = A(values)
    shapes = [types[i].shape for i in inputs]
    out = opdef.infer(a, shapes)
    return Node(name, op, args, inputs, TensorType(out, opdef.output_dtype), like.span,
                opdef.params(a, shapes), opdef.macs(a, shapes, out), like.source)


def splice(graph: Graph, replace_at: Mapping[str, Iterable[Node]], rename: Mapping[str, str] | None = None) -> Graph:
    """Replace nodes and redirect tensor uses.

    ``replace_at[name]`` is the list of nodes that takes node ``name``'s place (empty:
    delete it); ``rename`` maps a tensor that no longer exists (or should no longer be
    read) to the tensor to read instead, applied to every input and graph output, and
    followed transitively (``a → b``, ``b → c`` reads ``c``).
    """
    rename = dict(rename or {})

    def resolve(t: str) -> str:
        seen = set()
        while t in rename and t not in seen:
            seen.add(t)
            t = rename[t]
        return t

    nodes: list[Node] = []
    for n in graph.nodes:
        for m in replace_at.get(n.name, (n,)):
            ins = tuple(resolve(i) for i in m.inputs)
            nodes.append(m if ins == m.inputs else replace(m, inputs=ins))
    outputs = tuple(resolve(o) for o in graph.outputs)
    return replace(graph, nodes=tuple(nodes), outputs=outputs)
