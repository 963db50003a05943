"""Generation with a key/value cache, so each new token costs one step: language models and seq2seq decoders.

:class:`Cached` runs a built model's graph incrementally on a *stream* input — the token ids that grow
(a language model's only input; a seq2seq model's target prefix): each step computes the new positions
only, every causal self-attention keeping the keys and values of the positions before. Nodes that do not
depend on the stream (a seq2seq model's encoder, its memory and source padding ids) are computed once per
:meth:`Cached.reset`, and a cross-attention that reads them (``MultiHeadAttention(kv=memory)``, torch's
decoder layers) projects the memory's keys and values once. It covers ``nn.MultiheadAttention`` (written
from primitives), torch's Transformer encoder layers with ``causal=true`` and decoder layers, positional
encodings, and the ops that act on each position alone (``STEPWISE``); a model with any other op on the
stream (a convolution over time, a recurrent layer, pooling) is refused by :meth:`Cached.supports`, and
:func:`sample`, :func:`netc.runner.seq2seq.greedy` and :func:`~netc.runner.seq2seq.beam` fall back to a
full forward pass per token (same tokens, slower). tests/test_language.py checks the cached logits
against the full forward pass for both kinds of model.
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
SELF_ATTENTION = ("MultiHeadAttention", "TransformerEncoderLayer", "TransformerEncoder")
DECODERS = ("TransformerDecoderLayer", "TransformerDecoder")


def _heads(z: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, t, D) → (N, H, t, D / H)."""
    return z.unflatten(-1, (heads, z.shape[-1] // heads)).transpose(1, 2)


def _mha_step(m: nn.MultiheadAttention, x: torch.Tensor, cache: list) -> torch.Tensor:
    """Causal self-attention of the new positions ``x`` (N, t, D) over the cached ones and themselves."""
    q, k, v = (_heads(z, m.num_heads) for z in F.linear(x, m.in_proj_weight, m.in_proj_bias).chunk(3, dim=-1))
    if cache:
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    cache[:] = [k, v]
    t, s = q.shape[2], k.shape[2]
    seen = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(s - t)  # query i sits at position s - t + i
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=seen)
    return m.out_proj(o.transpose(1, 2).flatten(2))


def _cross_step(m: nn.MultiheadAttention, x: torch.Tensor, memory: torch.Tensor, cache: list,
                padded: torch.Tensor | None) -> torch.Tensor:
    """Attention of the new positions ``x`` (N, t, D) over a fixed ``memory`` (N, S, D), whose keys and
    values are projected once; ``padded`` (N, S) marks memory positions left out."""
    d = m.embed_dim
    if not cache:
        w, b = m.in_proj_weight, m.in_proj_bias
        cache[:] = [_heads(F.linear(memory, w[d:2 * d], None if b is None else b[d:2 * d]), m.num_heads),
                    _heads(F.linear(memory, w[2 * d:], None if b is None else b[2 * d:]), m.num_heads)]
    q = _heads(F.linear(x, m.in_proj_weight[:d], None if m.in_proj_bias is None else m.in_proj_bias[:d]), m.num_heads)
    keep = None if padded is None else ~padded[:, None, None, :]
    o = F.scaled_dot_product_attention(q, cache[0], cache[1], attn_mask=keep)
    return m.out_proj(o.transpose(1, 2).flatten(2))


def _feedforward(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return layer.linear2(layer.activation(layer.linear1(z)))


def _encoder_layer_step(layer: nn.TransformerEncoderLayer, x: torch.Tensor, cache: list) -> torch.Tensor:
    """One of torch's encoder layers (eval mode) on the new positions, pre- or post-norm."""
    if layer.norm_first:
        x = x + _mha_step(layer.self_attn, layer.norm1(x), cache)
        return x + _feedforward(layer, layer.norm2(x))
    x = layer.norm1(x + _mha_step(layer.self_attn, x, cache))
    return layer.norm2(x + _feedforward(layer, x))


def _decoder_layer_step(layer: nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor,
                        caches: tuple[list, list], padded: torch.Tensor | None) -> torch.Tensor:
    """One of torch's decoder layers (eval mode, causal) on the new positions, pre- or post-norm."""
    own, cross = caches
    if layer.norm_first:
        x = x + _mha_step(layer.self_attn, layer.norm1(x), own)
        x = x + _cross_step(layer.multihead_attn, layer.norm2(x), memory, cross, padded)
        return x + _feedforward(layer, layer.norm3(x))
    x = layer.norm1(x + _mha_step(layer.self_attn, x, own))
    x = layer.norm2(x + _cross_step(layer.multihead_attn, x, memory, cross, padded))
    return layer.norm3(x + _feedforward(layer, x))


class Cached:
    """A built model run step by step on its ``stream`` input: ``reset(other inputs)``, then ``step(ids)``
    gives the logits of the new positions."""

    def __init__(self, model: nn.Module, stream: str | None = None):
        from netc.backend import layers
        from netc.backend.emit import MODULE_ATTRS, _unique, lower_node
        from netc.compiler.registry import REGISTRY

        self.model, self.graph = model, model.netc_graph
        self.stream = stream or self.graph.inputs[0].name
        self.attrs = _unique([n.name for n in self.graph.nodes], MODULE_ATTRS)
        self.namespace = {**vars(layers), "nn": nn, "torch": torch, "math": math}
        self.why_not: str | None = None
        self.plans: list[tuple[Any, str, Any]] = []  # (node, kind, module or forward expression)
        moving = {self.stream}  # the stream and every node that depends on it
        for node in self.graph.nodes:
            opdef = REGISTRY.get(node.op)
            module = getattr(model, self.attrs[node.name], None)
            args = {a.name: a.default for a in opdef.args} | dict(node.args) if opdef else dict(node.args)
            seqs = [i for i in node.inputs[1:] if self.graph.type_of(i).dtype != "int64"]
            if not any(i in moving for i in node.inputs):
                kind = "fixed"  # computed once per reset, over whole tensors
            elif node.inputs[0] not in moving:
                self.why_not = self.why_not or f"{node.name} ({node.op}) reads the stream as other than its first input"
                kind = "unsupported"
            elif node.op == "MultiHeadAttention" and seqs:
                if seqs[0] in moving or opdef.is_causal(node.args):  # a causal cross-attention's mask moves
                    self.why_not = self.why_not or (f"{node.name} ({node.op}) is not plain cross-attention to a "
                                                    "fixed memory")
                kind = "cross"
            elif node.op in SELF_ATTENTION:
                if seqs or not opdef.is_causal(node.args):
                    self.why_not = self.why_not or f"{node.name} ({node.op}) is not causal self-attention"
                kind = "attention"
            elif node.op in DECODERS:
                if seqs[0] in moving or not opdef.is_causal(node.args):
                    self.why_not = self.why_not or f"{node.name} ({node.op}) is not causal over a fixed memory"
                kind = "decoder"
            elif node.op == "PositionalEncoding":
                kind = "position"
            elif node.op in STEPWISE and all(i in moving for i in node.inputs) and (
                    node.op not in ("Softmax", "LogSoftmax")
                    or args.get("dim", -1) in (-1, len(self.graph.type_of(node.name).shape) - 1)):
                kind = "stepwise"
            else:
                self.why_not = self.why_not or f"{node.name} ({node.op}) mixes positions"
                kind = "unsupported"
            if kind in ("fixed", "stepwise"):
                low = lower_node(self.graph, node)
                fields = {f"x{k}": f"_x{k}" for k in range(len(node.inputs))}
                fields.update(m="_m", x="_x0", xs=", ".join(fields.values()))
                module = compile(low.forward.format(**fields), f"<netc step {node.name}>", "eval")
            if kind in ("cross", "decoder"):  # the memory, and the padding ids' test (pad_id) if the op has them
                ids = [i for i in node.inputs[1:] if self.graph.type_of(i).dtype == "int64"]
                module = (module, seqs[0] if seqs else None, ids[0] if ids else None, args.get("pad_id", 0))
            if kind != "fixed":
                moving.add(node.name)
            self.plans.append((node, kind, module))
        self.reset()

    @property
    def supports(self) -> bool:
        """Whether every node of the model runs incrementally."""
        return self.why_not is None

    def reset(self, fixed: dict[str, torch.Tensor] | None = None) -> None:
        """Forget every cached position; compute the nodes that do not depend on the stream from ``fixed``
        (the other inputs by name: a seq2seq model's source ids)."""
        self.pos = 0
        self.caches: dict[str, list] = {}
        self.fixed: dict[str, torch.Tensor] = dict(fixed or {})
        if fixed is not None:
            with torch.no_grad():
                for node, kind, code in self.plans:
                    if kind == "fixed":
                        self.fixed[node.name] = self._eval(node, code, self.fixed)

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) the given batch rows of every cached tensor: beam search's surviving beams."""
        self.fixed = {k: v.index_select(0, rows) for k, v in self.fixed.items()}
        self.caches = {k: [t.index_select(0, rows) for t in v] for k, v in self.caches.items()}

    def _eval(self, node: Any, code: Any, env: dict[str, torch.Tensor]) -> torch.Tensor:
        local = {"_m": getattr(self.model, self.attrs[node.name], None),
                 **{f"_x{k}": env[i] for k, i in enumerate(node.inputs)}}
        return eval(code, self.namespace, local)  # an op declaration's template, as emit.py compiles it

    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (N, t, V) for the new token ids (N, t), appended after the cached positions."""
        env: dict[str, torch.Tensor] = {**self.fixed, self.stream: ids}
        for node, kind, module in self.plans:
            if kind == "fixed":
                continue
            x = env[node.inputs[0]]
            if kind == "stepwise":
                env[node.name] = self._eval(node, module, env)
            elif kind == "position":
                env[node.name] = module.dropout(x + module.pe[self.pos:self.pos + x.size(1)])
            elif kind == "attention":
                env[node.name] = self._attend(node, module, x)
            elif kind in ("cross", "decoder"):
                m, memory, ids_name, pad_id = module
                padded = None if ids_name is None else env[ids_name].eq(pad_id)
                env[node.name] = (_cross_step(m, x, env[memory], self.caches.setdefault(node.name, []), padded)
                                  if kind == "cross" else self._decode(node, m, x, env[memory], padded))
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

    def _decode(self, node, module: nn.Module, x: torch.Tensor, memory: torch.Tensor,
                padded: torch.Tensor | None) -> torch.Tensor:
        layers = module.layers if isinstance(module, nn.TransformerDecoder) else [module]
        for k, layer in enumerate(layers):
            caches = (self.caches.setdefault(f"{node.name}.{k}", []), self.caches.setdefault(f"{node.name}.{k}x", []))
            x = _decoder_layer_step(layer, x, memory, caches, padded)
        if isinstance(module, nn.TransformerDecoder) and module.norm is not None:
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
