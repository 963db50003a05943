"""Text generation from a language-model run, with a key/value cache so each new token costs one step.

:class:`Cached` runs a built model's graph incrementally: on the new positions only, with every causal
self-attention keeping the keys and values of the positions before (``nn.MultiheadAttention`` written
from primitives, and torch's Transformer encoder layers with ``causal=true``). It covers the ops that
act on each position alone (``STEPWISE``) plus positional encodings; a model with any other op (a
convolution over time, a recurrent layer, pooling) is refused by :meth:`Cached.supports` and
:func:`sample` falls back to a full forward pass over the window for every token (same tokens, slower).
tests/test_generate.py checks the cached logits against the full forward pass.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Ops whose output at a position depends only on their input(s) at that position (the last axis is
# features), so running them on the new positions alone is exact. Softmax/LogSoftmax qualify only on
# the last axis (checked in ``Cached``).
STEPWISE = frozenset({"Embedding", "Dense", "Dropout", "Identity", "LayerNorm", "Add", "Multiply", "ReLU",
                      "Tanh", "Sigmoid", "LeakyReLU", "GELU", "SiLU", "ELU", "Softmax", "LogSoftmax",
                      "InplaceActivation"})


def _mha_step(m: nn.MultiheadAttention, x: torch.Tensor, cache: list) -> torch.Tensor:
    """Causal self-attention of the new positions ``x`` (N, t, D) over the cached ones and themselves."""
    heads, d = m.num_heads, m.embed_dim
    q, k, v = F.linear(x, m.in_proj_weight, m.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (z.unflatten(-1, (heads, d // heads)).transpose(1, 2) for z in (q, k, v))  # (N, H, t, hd)
    if cache:
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    cache[:] = [k, v]
    t, s = q.shape[2], k.shape[2]
    seen = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(s - t)  # query i sits at position s - t + i
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=seen)
    return m.out_proj(o.transpose(1, 2).flatten(2))


def _encoder_layer_step(layer: nn.TransformerEncoderLayer, x: torch.Tensor, cache: list) -> torch.Tensor:
    """One of torch's encoder layers (eval mode) on the new positions, pre- or post-norm."""
    def ff(z):
        return layer.linear2(layer.activation(layer.linear1(z)))

    if layer.norm_first:
        x = x + _mha_step(layer.self_attn, layer.norm1(x), cache)
        return x + ff(layer.norm2(x))
    x = layer.norm1(x + _mha_step(layer.self_attn, x, cache))
    return layer.norm2(x + ff(x))


class Cached:
    """A built language model run step by step: ``step(ids)`` gives the logits of the new positions."""

    def __init__(self, model: nn.Module):
        from netc.backend import layers
        from netc.backend.emit import MODULE_ATTRS, _unique, lower_node
        from netc.compiler.registry import REGISTRY

        self.model, self.graph = model, model.netc_graph
        self.attrs = _unique([n.name for n in self.graph.nodes], MODULE_ATTRS)
        self.namespace = {**vars(layers), "nn": nn, "torch": torch, "math": math}
        self.why_not: str | None = None
        self.plans: list[tuple[Any, str, Any]] = []  # (node, kind, module or forward expression)
        for node in self.graph.nodes:
            opdef = REGISTRY.get(node.op)
            module = getattr(model, self.attrs[node.name], None)
            args = dict(node.args)
            if node.op in ("MultiHeadAttention", "TransformerEncoderLayer", "TransformerEncoder"):
                cross = [i for i in node.inputs[1:] if self.graph.type_of(i).dtype != "int64"]
                if cross or not (opdef and opdef.is_causal(node.args)):
                    self.why_not = f"{node.name} ({node.op}) is not causal self-attention"
                kind = "attention"
            elif node.op == "PositionalEncoding":
                kind = "position"
            elif node.op in STEPWISE and (node.op not in ("Softmax", "LogSoftmax") or
                                          args.get("dim", -1) in (-1, len(self.graph.type_of(node.name).shape) - 1)):
                low = lower_node(self.graph, node)
                fields = {f"x{k}": f"_x{k}" for k in range(len(node.inputs))}
                fields.update(m="_m", x="_x0", xs=", ".join(fields.values()))
                module = compile(low.forward.format(**fields), f"<netc step {node.name}>", "eval")
                kind = "stepwise"
            else:
                self.why_not = self.why_not or f"{node.name} ({node.op}) mixes positions"
                kind = "unsupported"
            self.plans.append((node, kind, module))
        self.reset()

    @property
    def supports(self) -> bool:
        """Whether every node of the model runs incrementally."""
        return self.why_not is None

    def reset(self) -> None:
        """Forget every cached position."""
        self.pos = 0
        self.caches: dict[str, list] = {}

    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (N, t, V) for the new token ids (N, t), appended after the cached positions."""
        env: dict[str, torch.Tensor] = {self.graph.inputs[0].name: ids}
        for node, kind, module in self.plans:
            xs = [env[i] for i in node.inputs]
            if kind == "stepwise":
                local = {"_m": getattr(self.model, self.attrs[node.name], None),
                         **{f"_x{k}": x for k, x in enumerate(xs)}}
                env[node.name] = eval(module, self.namespace, local)  # an op declaration's template, as emit.py
            elif kind == "position":
                env[node.name] = module.dropout(xs[0] + module.pe[self.pos:self.pos + xs[0].size(1)])
            elif kind == "attention":
                env[node.name] = self._attend(node, module, xs[0])
            else:
                raise RuntimeError(f"no incremental step for {self.why_not}")
        self.pos += ids.shape[1]
        return env[self.graph.outputs[0]]

    def _attend(self, node, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(module, nn.MultiheadAttention):
            return _mha_step(module, x, self.caches.setdefault(node.name, []))
        layers = module.layers if isinstance(module, nn.TransformerEncoder) else [module]
        for k, layer in enumerate(layers):
            x = _encoder_layer_step(layer, x, self.caches.setdefault(f"{node.name}.{k}", []))
        if isinstance(module, nn.TransformerEncoder) and module.norm is not None:
            x = module.norm(x)
        return x


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, gen: torch.Generator) -> int:
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k:
        cut = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < cut, float("-inf"))
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))


@torch.no_grad()
def sample(model: nn.Module, prompt: list[int], n: int, block: int, *, temperature: float = 1.0,
           top_k: int | None = None, seed: int = 0, vocab: int | None = None, cached: bool = True) -> list[int]:
    """``n`` new token ids after ``prompt``: sampled at ``temperature`` (0: greedy) from the ``top_k`` most likely.

    With the cache each token is one step on one position; when the window of ``block`` positions is
    full, the cache restarts from the last half of it (one forward pass over ``block // 2`` positions).
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ids = list(prompt)
    run = Cached(model) if cached else None
    use_cache = run is not None and run.supports
    keep = max(1, block // 2)
    logits = None
    for _ in range(n):
        if use_cache:
            if logits is None or run.pos >= block:  # (re)start from the last part of the window
                run.reset()
                start = ids[-(keep if logits is not None else block):]
                logits = run.step(torch.tensor([start], device=device))[0, -1]
        else:
            logits = model(torch.tensor([ids[-block:]], device=device))[0, -1]
        nxt = _pick(logits[:vocab] if vocab else logits, temperature, top_k, gen)
        ids.append(nxt)
        if use_cache:
            logits = run.step(torch.tensor([[nxt]], device=device))[0, -1]
    return ids[len(prompt):]
