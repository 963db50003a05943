"""Helper layers and functions that op lowerings name and generated source copies in.

Every definition here is copied verbatim into emitted model files, so this
module must stay self-contained: it imports only ``math`` and ``torch``, and a
definition may use only those, ``nn`` and other definitions copied with it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Adds position information to a (N, T, D) sequence: fixed sinusoids or learned vectors."""

    def __init__(self, dim: int, max_len: int = 512, learned: bool = False, dropout: float = 0.0):
        super().__init__()
        if learned:
            self.pe = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        else:
            position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
            even = torch.arange(0, dim, 2, dtype=torch.float32)
            freq = torch.exp(even * (-math.log(10000.0) / dim))  # 1 / 10000^(2i / dim)
            pe = torch.zeros(max_len, dim)
            pe[:, 0::2] = torch.sin(position * freq)
            pe[:, 1::2] = torch.cos(position * freq[: dim // 2])
            # Not persistent: the table is recomputed, so checkpoints hold only learned weights.
            self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.size(1)])


def last_bidirectional(y: torch.Tensor) -> torch.Tensor:
    """Last state of a bidirectional RNN's output (N, T, 2H) → (N, 2H).

    The forward direction ends at step T-1, the backward direction at step 0.
    """
    h = y.size(-1) // 2
    return torch.cat([y[:, -1, :h], y[:, 0, h:]], dim=-1)


def real_lengths(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Steps up to each sample's last id that is not ``pad_id`` (N,): right padding, at least 1."""
    steps = torch.arange(1, ids.size(1) + 1, device=ids.device)
    return (ids.ne(pad_id) * steps).amax(dim=1).clamp(min=1)


def packed_rnn(rnn: nn.RNNBase, x: torch.Tensor, ids: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch-first RNN over each sample's real steps only (those up to its last non-pad id).

    Returns every step (N, T, D·H), zeros at padded steps, and the last state (N, D·H): the forward
    direction after the last real step, the backward direction after reading back to step 0.
    """
    lengths = real_lengths(ids, pad_id).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = rnn(packed)
    y, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c); last layer's directions come last
    return y, torch.cat([h[-2], h[-1]], dim=-1) if rnn.bidirectional else h[-1]


def seq_pool(x: torch.Tensor, ids: torch.Tensor, pad_id: int, mode: str) -> torch.Tensor:
    """Pool (N, T, D) over the steps whose id is not ``pad_id``: mean, max, or the first or last real step."""
    keep = ids.ne(pad_id)
    if mode == "mean":
        w = keep.unsqueeze(-1).to(x.dtype)
        return (x * w).sum(dim=1) / w.sum(dim=1).clamp(min=1)
    if mode == "max":
        low = torch.finfo(x.dtype).min
        return x.masked_fill(~keep.unsqueeze(-1), low).amax(dim=1).masked_fill(~keep.any(dim=1, keepdim=True), 0.0)
    at = keep.to(torch.int64).argmax(dim=1) if mode == "first" else real_lengths(ids, pad_id) - 1
    return x[torch.arange(x.size(0), device=x.device), at]


def causal_mask(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Boolean (T, S) mask for queries q (N, T, ·) and keys k (N, S, ·): True above the diagonal, where a
    query would see a later position (torch's attn_mask convention: True is not attended)."""
    return torch.ones(q.size(1), k.size(1), dtype=torch.bool, device=q.device).triu(1)


def attend_mask(ids: torch.Tensor, pad_id: int, q: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean (N, 1, T, S) mask for scaled_dot_product_attention (True is attended): keys whose id is
    ``pad_id`` are left out, and later positions too when ``causal``."""
    keep = ids.ne(pad_id)[:, None, None, :]
    if causal:
        keep = keep & ~causal_mask(q, ids.unsqueeze(-1))
    return keep


def init_weights(layer: nn.Module, init, **kwargs) -> None:
    """Apply a ``torch.nn.init`` function to every weight matrix or kernel of ``layer`` (``weight``, an LSTM's
    ``weight_ih_l0``, attention's ``in_proj_weight``...); biases and norm scales keep torch's default. netc
    emits one call per layer with ``init=``."""
    for name, p in layer.named_parameters():
        if "weight" in name.rsplit(".", 1)[-1] and p.dim() >= 2:  # matrices and kernels, not LayerNorm scales
            init(p, **kwargs)
    if getattr(layer, "padding_idx", None) is not None:  # an Embedding's padding vector stays zero
        with torch.no_grad():
            layer.weight[layer.padding_idx].zero_()
