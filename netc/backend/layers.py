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
