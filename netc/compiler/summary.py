"""``netc summary``: per-node shapes, parameters, MACs and a memory estimate, without running anything."""

from __future__ import annotations

from netc.compiler.ir import Graph
from netc.compiler.registry import REGISTRY, A, concrete


def _numel(shape, batch: int) -> int:
    n = batch
    for d in shape[1:]:
        n *= concrete(d)
    return n


def kv_cache_elements(g: Graph) -> int:
    """Elements per sample that generation keeps in key/value caches: the sum of every op's ``kv_cache`` rule."""
    types = {i.name: i.type for i in g.inputs} | {n.name: n.type for n in g.nodes}
    total = 0
    for n in g.nodes:
        op = REGISTRY.get(n.op)
        if op is not None and op.kv_cache is not None:
            total += int(op.kv_cache(A(dict(n.args)), [types[i].shape for i in n.inputs]))
    return total


def summarize(g: Graph, batch: int = 1) -> dict:
    """A JSON-ready report: nodes, totals and float32/bf16 memory for ``batch`` samples."""
    rows = [{"name": n.name, "op": n.op, "shape": list(n.type.shape), "params": n.params,
             "macs": n.macs, "line": n.span.line if n.span else None} for n in g.nodes]
    act = sum(_numel(n.type.shape, batch) for n in g.nodes) + sum(_numel(i.type.shape, batch) for i in g.inputs)
    symbolic = sorted({d for n in g.nodes for d in n.type.shape[1:] if isinstance(d, str)}
                      | {d for i in g.inputs for d in i.type.shape[1:] if isinstance(d, str)})
    params = g.params
    return {
        "name": g.name,
        "inputs": {i.name: list(i.type.shape) for i in g.inputs},  # ints, and names for symbolic dims
        "output": list(g.output_type.shape),
        "nodes": rows,
        "total_params": params,
        "total_macs": g.macs,
        "batch_size": batch,
        "memory": {
            "params_float32_bytes": params * 4, "params_bf16_bytes": params * 2,
            "activations_float32_bytes": act * 4, "activations_bf16_bytes": act * 2,
            "training_float32_bytes": params * 4 * 4 + act * 4,  # weights, grads, Adam's two moments
            # keys and values generation caches so each new token costs one step (causal and cross-attention)
            "kv_cache_float32_bytes": kv_cache_elements(g) * batch * 4,
        },
        "symbolic_dims_counted_as_1": symbolic,
    }


def _mb(n: int) -> str:
    return f"{n / 2**20:,.2f} MB"


def render_text(r: dict) -> str:
    """The report as an aligned table."""
    w = max([len("node")] + [len(x["name"]) for x in r["nodes"]])
    wo = max([len("op")] + [len(x["op"]) for x in r["nodes"]])
    ws = max([len("output shape")] + [len("(" + ", ".join(map(str, x["shape"])) + ")") for x in r["nodes"]])
    lines = [f"model {r['name']}  inputs: " + ", ".join(f"{k} ({', '.join(map(str, v))})"
                                                       for k, v in r["inputs"].items()),
             f"{'node':<{w}}  {'op':<{wo}}  {'output shape':<{ws}}  {'params':>12}  {'MACs':>14}"]
    lines.append("-" * len(lines[-1]))
    for x in r["nodes"]:
        shp = "(" + ", ".join(map(str, x["shape"])) + ")"
        lines.append(f"{x['name']:<{w}}  {x['op']:<{wo}}  {shp:<{ws}}  {x['params']:>12,}  {x['macs']:>14,}")
    lines.append("-" * len(lines[1]))
    m = r["memory"]
    lines.append(f"total params: {r['total_params']:,}   MACs per sample: {r['total_macs']:,}")
    lines.append(f"memory at batch {r['batch_size']}: params {_mb(m['params_float32_bytes'])} float32 / "
                 f"{_mb(m['params_bf16_bytes'])} bf16; activations {_mb(m['activations_float32_bytes'])} float32 / "
                 f"{_mb(m['activations_bf16_bytes'])} bf16; training (Adam, float32) ≈ "
                 f"{_mb(m['training_float32_bytes'])}")
    if m.get("kv_cache_float32_bytes"):
        lines.append(f"key/value cache for generation at batch {r['batch_size']}: "
                     f"{_mb(m['kv_cache_float32_bytes'])} float32 (keys and values of every cached position)")
    if r["symbolic_dims_counted_as_1"]:
        lines.append(f"note: symbolic dims {', '.join(r['symbolic_dims_counted_as_1'])} counted as 1")
    return "\n".join(lines)
