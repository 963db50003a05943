"""Helper layers copied into generated source (netc.backend.layers)."""

from __future__ import annotations

import ast
import math

import torch

from netc.backend import layers
from netc.backend.emit import LAYERS_FILE


def test_layers_module_is_self_contained():
    tree = ast.parse(LAYERS_FILE.read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported <= {"__future__", "math", "torch"}


def test_sinusoidal_positional_encoding_matches_the_formula():
    pe = layers.PositionalEncoding(6, max_len=10)
    assert not list(pe.parameters()) and not pe.state_dict()  # a fixed, non-persistent table
    x = torch.zeros(2, 4, 6)
    y = pe(x)
    for pos in range(4):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert math.isclose(y[0, pos, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(y[1, pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_odd_dimension_and_learned_positions():
    assert layers.PositionalEncoding(7, max_len=5)(torch.zeros(1, 5, 7)).shape == (1, 5, 7)
    learned = layers.PositionalEncoding(4, max_len=8, learned=True)
    assert sum(p.numel() for p in learned.parameters()) == 32
    assert list(learned.state_dict()) == ["pe"]


def test_last_bidirectional_equals_the_final_hidden_states():
    lstm = torch.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    y, (h, _) = lstm(torch.randn(2, 7, 3))
    torch.testing.assert_close(layers.last_bidirectional(y), torch.cat([h[0], h[1]], dim=-1))
