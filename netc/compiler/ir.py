"""The IR: an immutable, typed graph of op nodes with shapes and source spans.

Edits go through ``dataclasses.replace``; passes are pure functions Graph → Graph.
``Graph.text()`` is a stable printed form for golden tests and ``--explain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netc.diagnostics import Span, show

Dim = int | str
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class TensorType:
    """Shape (batch first, symbolic dims as names) and dtype of a tensor."""

    shape: Shape
    dtype: str = "float32"

    def __str__(self) -> str:
        short = {"float32": "f32", "int64": "i64"}.get(self.dtype, self.dtype)
        return f"{short}[{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class Input:
    """A graph input (a model input declared in the spec)."""

    name: str
    type: TensorType
    span: Span | None = None


@dataclass(frozen=True)
class Node:
    """One op application; its single output tensor is named after the node."""

    name: str
    op: str
    args: tuple[tuple[str, Any], ...]
    inputs: tuple[str, ...]
    type: TensorType
    span: Span | None = None
    params: int = 0
    macs: int = 0
    source: str = ""  # the spec line this node came from (for comments in emitted code)

    def arg(self, key: str, default: Any = None) -> Any:
        """Value of argument ``key``."""
        for k, v in self.args:
            if k == key:
                return v
        return default

    @property
    def argdict(self) -> dict[str, Any]:
        return dict(self.args)

    def text(self) -> str:
        """``conv2d = Conv2D[filters=32, kernel=3](x) : f32[N, 32, 6, 6]``."""
        args = ", ".join(f"{k}={show(v)}" for k, v in self.args)
        return f"{self.name} = {self.op}[{args}]({', '.join(self.inputs)}) : {self.type}"


@dataclass(frozen=True)
class Graph:
    """A model: inputs, topologically ordered nodes, outputs, and the mode it is built for."""

    name: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    training: bool = True
    span: Span | None = None

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def type_of(self, name: str) -> TensorType:
        """Type of a tensor (an input or a node output)."""
        for i in self.inputs:
            if i.name == name:
                return i.type
        return self.node(name).type

    def users(self, name: str) -> list[Node]:
        """Nodes that consume tensor ``name``."""
        return [n for n in self.nodes if name in n.inputs]

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def output_type(self) -> TensorType:
        return self.type_of(self.outputs[0])

    def text(self) -> str:
        """Stable printed form."""
        ins = ", ".join(f"{i.name}: {i.type}" for i in self.inputs)
        lines = [f"graph {self.name}({ins}) {{"]
        lines += [f"  {n.text()}" for n in self.nodes]
        lines.append(f"  return {', '.join(self.outputs)}")
        lines.append("}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Program:
    """Everything a checked spec defines: one graph per model, plus the train block."""

    name: str
    file: str
    graphs: dict[str, Graph]
    train: dict | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def main(self) -> Graph:
        """The first (or only) model."""
        return next(iter(self.graphs.values()))


def verify(g: Graph) -> None:
    """Check IR invariants (unique names, defined-before-use, outputs exist); raises AssertionError."""
    seen = {i.name for i in g.inputs}
    assert len(seen) == len(g.inputs), "duplicate input names"
    for n in g.nodes:
        assert n.name not in seen, f"duplicate tensor name {n.name}"
        for i in n.inputs:
            assert i in seen, f"{n.name} uses {i} before it is defined"
        seen.add(n.name)
    for o in g.outputs:
        assert o in seen, f"output {o} is not defined"
