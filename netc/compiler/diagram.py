"""``netc graph``: the checked network as a diagram (Mermaid or Graphviz DOT; SVG/PNG through ``dot``).

Every node is a box with its call and parameter count, every edge carries the shape of
the tensor it moves (batch axis included, as ``netc summary`` prints it), each block
instance is a cluster labelled with its call (nested blocks nest), and a spec with
several models (a GAN) draws one cluster per model. Mermaid needs nothing installed and
renders in GitHub and most Markdown previews; SVG and PNG run Graphviz's ``dot``.
User text reaches the output only through :func:`_mermaid_text` / :func:`_dot_text`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from netc.compiler.elaborate import Elaborator
from netc.compiler.frontend import front_end
from netc.compiler.ir import Graph, Program, TensorType
from netc.compiler.registry import REGISTRY
from netc.diagnostics import UsageError, show
from netc.dsl.spec import Spec

__all__ = ["FORMATS", "Cluster", "Diagram", "diagram", "render"]

FORMATS = ("mermaid", "dot", "svg", "png")
SUFFIXES = {".mmd": "mermaid", ".mermaid": "mermaid", ".md": "mermaid", ".dot": "dot", ".gv": "dot",
            ".svg": "svg", ".png": "png"}


@dataclass
class Cluster:
    """One block instance: its call as written and the nodes it made (nested instances apart)."""

    label: str
    nodes: list[str] = field(default_factory=list)
    children: list[Cluster] = field(default_factory=list)


@dataclass
class Diagram:
    """A checked program and its block instances, ready to render."""

    program: Program
    clusters: list[tuple[str, set[str]]]  # (call text, every node of the instance, nested ones included)


class _Recorder(Elaborator):
    """The elaborator, also recording which nodes each block call made (the program is the same)."""

    def __init__(self, spec: Spec, *args: Any, **kwargs: Any):
        super().__init__(spec, *args, **kwargs)
        self.instances: list[tuple[str, set[str]]] = []

    def expand_block(self, found, c, scope, cur, entry):  # type: ignore[no-untyped-def]
        n0 = len(self.nodes)
        out = super().expand_block(found, c, scope, cur, entry)
        made = {n.name for n in self.nodes[n0:]}
        if made:
            self.instances.append((_call_text(self.spec.source, c), made))
        return out


def _call_text(source: str, c: Any) -> str:
    sp = getattr(c, "span", None)
    name = getattr(c, "name", "block")
    if sp is None or sp.line != sp.end_line:
        return name
    lines = source.splitlines()
    if not 1 <= sp.line <= len(lines):
        return name
    return lines[sp.line - 1][sp.col - 1:sp.end_col - 1] or name


def diagram(text: str | bytes, file: str, params: dict[str, object] | None = None) -> Diagram:
    """Check a spec (raising its diagnostics, as ``netc check`` does) and record its block instances."""
    made: list[_Recorder] = []

    def recorder(spec: Spec, max_params: int) -> _Recorder:
        made.append(_Recorder(spec, max_params))
        return made[-1]

    checked = front_end(text, file, params=params, elaborator=recorder)
    return Diagram(checked.program, made[0].instances if made else [])


# ---------------------------------------------------------------------------- structure

def _shape(t: TensorType) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ")"


def _label(n: Any) -> str:
    """The call as a spec writes it, with the values a block's parameters took (``Conv2D(32, 3, padding=same)``):
    required arguments by position, the others only where they differ from their default."""
    op = REGISTRY.get(n.op)
    given = dict(n.args)
    if op is None:
        parts = [f"{k}={show(v)}" for k, v in n.args]
    else:
        parts = []
        for a in op.args:
            if a.name not in given:
                continue
            v = given[a.name]
            if a.required:
                parts.append(show(v))
            elif v != (list(a.default) if isinstance(a.default, tuple) and isinstance(v, list) else a.default):
                parts.append(f"{a.name}={show(v)}")
    call = f"{n.op}({', '.join(parts)})" if parts else n.op
    return call if len(call) <= 48 else call[:45] + "…"


def _tree(g: Graph, d: Diagram) -> Cluster:
    """The graph's nodes in nested clusters (a node belongs to its innermost instance)."""
    names = {n.name for n in g.nodes}
    insts = sorted(((lab, ns & names) for lab, ns in d.clusters if ns & names), key=lambda x: -len(x[1]))
    root = Cluster(g.name)
    placed: list[tuple[set[str], Cluster]] = []
    owner: dict[str, Cluster] = {}
    for lab, ns in insts:  # outer instances first: each one's parent is already placed
        parent = next((c for pns, c in reversed(placed) if ns <= pns), root)
        c = Cluster(lab)
        parent.children.append(c)
        placed.append((ns, c))
        for n in ns:
            owner[n] = c  # a later (smaller, inner) instance takes its nodes over
    for n in g.nodes:
        owner.get(n.name, root).nodes.append(n.name)
    return root


# ---------------------------------------------------------------------------- Mermaid

def _mermaid_text(s: str) -> str:
    return (s.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
            .replace("\n", " ").replace("|", "#124;"))


def to_mermaid(d: Diagram) -> str:
    """Mermaid ``flowchart`` source."""
    out = ["flowchart TD"]
    ids: dict[tuple[str, str], str] = {}

    def nid(g: Graph, name: str) -> str:
        return ids.setdefault((g.name, name), f"n{len(ids)}")

    k = 0
    graphs = list(d.program.graphs.values())
    for g in graphs:
        ind = "  "
        if len(graphs) > 1:
            out.append(f'  subgraph m{k}["{_mermaid_text(g.name)}"]')
            ind = "    "
            k += 1
        for i in g.inputs:
            out.append(f'{ind}{nid(g, i.name)}[/"{_mermaid_text(i.name)}<br/>{_shape(i.type)}"/]')
        nodes = {n.name: n for n in g.nodes}

        def emit(c: Cluster, ind: str) -> None:
            nonlocal k
            for name in c.nodes:
                n = nodes[name]
                p = f"<br/>{n.params:,} params" if n.params else ""
                out.append(f'{ind}{nid(g, name)}["{_mermaid_text(_label(n))}{p}"]')
            for ch in c.children:
                out.append(f'{ind}subgraph c{k}["{_mermaid_text(ch.label)}"]')
                k += 1
                emit(ch, ind + "  ")
                out.append(f"{ind}end")

        emit(_tree(g, d), ind)
        for j, o in enumerate(g.outputs):
            oid = nid(g, f"<output {j}>")
            out.append(f'{ind}{oid}(["output{"" if len(g.outputs) == 1 else f" {j}"}"])')
            out.append(f'{ind}{nid(g, o)} -->|"{_mermaid_text(_shape(g.type_of(o)))}"| {oid}')
        for n in g.nodes:
            for src in n.inputs:
                out.append(f'{ind}{nid(g, src)} -->|"{_mermaid_text(_shape(g.type_of(src)))}"| {nid(g, n.name)}')
        if len(graphs) > 1:
            out.append("  end")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- Graphviz

def _dot_text(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def to_dot(d: Diagram) -> str:
    """Graphviz DOT source."""
    out = ["digraph netc {", '  rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
           'fontname="Helvetica", fontsize=11]; edge [fontname="Helvetica", fontsize=9, color="#555555"];',
           f'  label="{_dot_text(d.program.name)}"; labelloc=t; fontname="Helvetica";']
    k = 0
    graphs = list(d.program.graphs.values())
    for gi, g in enumerate(graphs):
        def nid(name: str, gi: int = gi) -> str:
            return f'"{gi}:{_dot_text(name)}"'

        ind = "  "
        if len(graphs) > 1:
            out.append(f'  subgraph cluster_m{gi} {{ label="{_dot_text(g.name)}"; style=dashed;')
            ind = "    "
        for i in g.inputs:
            out.append(f'{ind}{nid(i.name)} [shape=parallelogram, fillcolor="#fdf3d8", '
                       f'label="{_dot_text(i.name)}\\n{_dot_text(_shape(i.type))}"];')
        nodes = {n.name: n for n in g.nodes}

        def emit(c: Cluster, ind: str) -> None:
            nonlocal k
            for name in c.nodes:
                n = nodes[name]
                p = f"\\n{n.params:,} params" if n.params else ""
                out.append(f'{ind}{nid(name)} [label="{_dot_text(_label(n))}{p}"];')
            for ch in c.children:
                out.append(f'{ind}subgraph cluster_{k} {{ label="{_dot_text(ch.label)}"; style="rounded"; '
                           'color="#8da9d6";')
                k += 1
                emit(ch, ind + "  ")
                out.append(f"{ind}}}")

        emit(_tree(g, d), ind)
        for j, o in enumerate(g.outputs):
            oid = nid(f"<output {j}>")
            out.append(f'{ind}{oid} [shape=oval, fillcolor="#e3f4e1", label="output"];')
            out.append(f'{ind}{nid(o)} -> {oid} [label=" {_dot_text(_shape(g.type_of(o)))}"];')
        for n in g.nodes:
            for src in n.inputs:
                out.append(f'{ind}{nid(src)} -> {nid(n.name)} [label=" {_dot_text(_shape(g.type_of(src)))}"];')
        if len(graphs) > 1:
            out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def render(d: Diagram, fmt: str) -> bytes:
    """The diagram in ``fmt`` (one of :data:`FORMATS`); SVG/PNG need Graphviz's ``dot`` on PATH."""
    if fmt == "mermaid":
        return to_mermaid(d).encode("utf-8")
    if fmt == "dot":
        return to_dot(d).encode("utf-8")
    if fmt not in FORMATS:
        raise UsageError(f"unknown diagram format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(f"--format {fmt} needs Graphviz's `dot` command, which is not installed",
                         hint="install Graphviz (apt-get install graphviz, brew install graphviz) "
                              "or use --format mermaid, which needs nothing")
    try:
        proc = subprocess.run([dot, f"-T{fmt}"], input=to_dot(d).encode("utf-8"), capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"Graphviz's dot failed: {e}") from None
    if proc.returncode != 0:
        raise UsageError(f"Graphviz's dot failed: {proc.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return proc.stdout
