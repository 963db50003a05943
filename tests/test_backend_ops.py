"""Every op of the registry, lowered to torch: output shapes and parameter counts equal the checker's.

``CASES`` holds at least one spec snippet per op, keyed by op name;
``test_every_op_has_a_case`` walks ``REGISTRY.all()``, so an op added without
a snippet here fails. Each snippet is checked, built, run at batch 1 and 7
(symbolic sizes such as ``T`` set to ``SEQ``), and compared with the emitted
source executed on its own (same state_dict → equal outputs in eval mode,
``torch.testing.assert_close`` default float32 tolerances: rtol 1.3e-6, atol 1e-5).
"""

from __future__ import annotations

import pytest
import torch

import netc
from netc.backend.build import concrete_shape, example_inputs
from netc.compiler.check import check_text
from netc.compiler.ir import Graph
from netc.compiler.registry import REGISTRY

SEQ = 5  # the concrete length given to symbolic sizes such as T
BATCHES = (1, 7)

CASES: dict[str, list[str]] = {
    "AdaptiveAvgPool": [
        "input: [3, 9, 9]\nmodel: Conv2D(4, 3) → AdaptiveAvgPool(3) → Flatten → Dense(2)",
        "input: [3, 9, 11]\nmodel: AdaptiveAvgPool([2, 4])",
        "input: [4, 10]\nmodel: AdaptiveAvgPool(3)",
    ],
    "Add": [
        "input: [6]\nmodel:\n  a: Dense(6)\n  b: Add(a, in) → Dense(3)",
        "input: {p: [4], q: [4], r: [4]}\nmodel:\n  s: Add(p, q, r)",
    ],
    "AvgPool": ["input: [2, 8, 8]\nmodel: AvgPool(2)", "input: [2, 9]\nmodel: AvgPool(3, stride=2, padding=1)"],
    "AvgPool1D": ["input: [2, 9]\nmodel: AvgPool1D(2)"],
    "AvgPool2D": ["input: [2, 7, 9]\nmodel: AvgPool2D([2, 3], stride=1)"],
    "BatchNorm": [
        "input: [5]\nmodel: Dense(4) → BatchNorm",                        # BatchNorm1d on (N, C)
        "input: [3, 6]\nmodel: BatchNorm(momentum=0.2)",                  # BatchNorm1d on (N, C, L)
        "input: [3, 6, 6]\nmodel: Conv2D(4, 3) → BatchNorm(eps=0.001)",   # BatchNorm2d
    ],
    "ChannelsLast": ["input: [3, 6, 6]\nmodel: ChannelsLast → Conv2D(4, 3, padding=same) → GlobalAvgPool"],
    "Concat": [
        "input: [3, 8, 8]\nmodel:\n  a: Conv2D(4, 3, padding=same)\n  b: in → Conv2D(2, 1)\n  c: Concat(a, b)",
        "input: {p: [T, 4], q: [T, 6]}\nmodel:\n  c: Concat(p, q, axis=-1) → Dense(2)",
        "input: {p: [T, 4], q: [T, 4]}\nmodel:\n  c: Concat(p, q, axis=1) → SeqPool(max)",  # along time
    ],
    "Conv1D": [
        "input: [4, 12]\nmodel: Conv1D(6, 3) → Conv1D(6, 5, padding=same, groups=2, bias=false)",
        "input: [4, 12]\nmodel: Conv1D(8, 3, stride=2, dilation=2, padding=1)",
    ],
    "Conv2D": [
        "input: [3, 10, 10]\nmodel: Conv2D(8, 3, padding=same) → Conv2D(8, 3, groups=4)",
        "input: [4, 11, 9]\nmodel: Conv2D(6, [3, 1], stride=[2, 1], padding=[1, 0], dilation=[1, 2], bias=false)",
        "input: [2, 8, 8]\nmodel: Conv2D(4, 3, padding=valid) → Conv2D(4, 2, stride=2)",
    ],
    "ConvTranspose2D": [
        "input: [4, 5, 5]\nmodel: ConvTranspose2D(3, 4, stride=2, padding=1)",
        "input: [4, 5, 6]\nmodel: ConvTranspose2D(2, [3, 2], stride=[2, 3], output_padding=1, bias=false)",
        "input: [16]\nmodel: Dense(32) → Reshape([8, 2, 2]) → ConvTranspose2D(4, 3)",
    ],
    "Dense": [
        "input: [1, 4, 4]\nmodel: Flatten → Dense(8) → Dense(3, bias=false)",
        "input: [T, 6]\nmodel: Linear(4)",                                # alias; over (N, T, D)
    ],
    "Dropout": ["input: [10]\nmodel: Dropout → Dropout(0.2) → Dense(2)"],
    "Embedding": [
        "input: {shape: [T], dtype: int64}\nmodel: Embedding(20, 8) → SeqPool(mean)",
        "input: {shape: [6], dtype: int64}\nmodel: Embedding(12, 4, padding_idx=0)",
    ],
    "Flatten": ["input: [2, 3, 4]\nmodel: Flatten", "input: [7]\nmodel: Flatten"],
    "GELU": ["input: [5]\nmodel: GELU → GELU(approximate=tanh)"],
    "GRU": [
        "input: [T, 6]\nmodel: GRU(8)",
        "input: [T, 6]\nmodel: GRU(8, layers=2, dropout=0.1, return_sequences=true)",
        "input: [T, 6]\nmodel: GRU(5, bidirectional=true)",
        "input: [T, 6]\nmodel: GRU(4, layers=3, bidirectional=true, return_sequences=true) → GRU(3)",
    ],
    "GlobalAvgPool": ["input: [3, 6, 6]\nmodel: GlobalAvgPool", "input: [3, 6]\nmodel: GlobalAvgPool"],
    "GlobalMaxPool": ["input: [3, 6, 6]\nmodel: GlobalMaxPool", "input: [3, 6]\nmodel: GlobalMaxPool"],
    "Identity": ["input: [4]\nmodel: Identity → Dense(2) → Identity",
                 "input: [4]\nmodel:\n  a: Identity\n  b: Add(a, in)"],
    "LSTM": [
        "input: [T, 6]\nmodel: LSTM(8)",
        "input: [T, 6]\nmodel: LSTM(8, return_sequences=true) → LSTM(4)",
        "input: [T, 6]\nmodel: LSTM(5, layers=2, bidirectional=true)",
        "input: [T, 6]\nmodel: LSTM(5, bidirectional=true, return_sequences=true) → SeqPool(last)",
    ],
    "LayerNorm": ["input: [T, 6]\nmodel: LayerNorm", "input: [6]\nmodel: LayerNorm(eps=0.001)"],
    "LeakyReLU": ["input: [5]\nmodel: LeakyReLU → LeakyReLU(0.2)"],
    "MaxPool": ["input: [2, 8, 8]\nmodel: MaxPool(2)", "input: [2, 9]\nmodel: MaxPool(3, stride=2, padding=1)"],
    "MaxPool1D": ["input: [2, 9]\nmodel: MaxPool1D(2, stride=1)"],
    "MaxPool2D": ["input: [2, 9, 9]\nmodel: MaxPool2D([3, 2], padding=1)"],
    "MultiHeadAttention": [
        "input: [T, 8]\nmodel: MultiHeadAttention(2)",
        "input: [T, 8]\nmodel: MultiHeadAttention(4, dropout=0.1) → SeqPool(first)",
        # cross-attention: queries from q, keys and values from a sequence of another length
        "input: {q: [T, 8], mem: [3, 8]}\nmodel:\n  a: q → MultiHeadAttention(2, kv=mem)",
        "input: [T, 8]\nmodel: MultiHeadAttention(2, causal=true)",
        # key-padding mask from the token ids of the attended sequence, with and without causality
        "input: {ids: {shape: [5], dtype: int64}}\nmodel: Embedding(9, 8) → MultiHeadAttention(2, ids=ids, pad_id=1)",
        "input: {q: [T, 8], mem: [3, 8], ids: {shape: [3], dtype: int64}}\nmodel:\n"
        "  a: q → MultiHeadAttention(2, kv=mem, ids=ids, causal=true)",
    ],
    "ScaledDotProductAttention": [
        "input: [T, 24]\nmodel: ScaledDotProductAttention(2)",                   # packed q/k/v (N, T, 3·D)
        "input: [T, 6]\nmodel: Dense(24) → ScaledDotProductAttention(4) → SeqPool(last)",
        "input: {q: [T, 8], mem: [3, 16]}\nmodel:\n  a: q → ScaledDotProductAttention(2, kv=mem)",  # packed k/v
        "input: [T, 24]\nmodel: ScaledDotProductAttention(2, causal=true)",
        "input: {x: [5, 24], ids: {shape: [5], dtype: int64}}\nmodel:\n"
        "  a: x → ScaledDotProductAttention(2, ids=ids, pad_id=3, causal=true)",
    ],
    "InplaceActivation": [
        "input: [3, 6, 6]\nmodel: Conv2D(4, 3) → InplaceActivation(relu)",
        "input: [5]\nmodel: Dense(4) → InplaceActivation(leaky_relu, slope=0.2)",
        "input: [5]\nmodel: Dense(4) → InplaceActivation(silu)",
    ],
    "WindowMax": ["input: [2, 8, 8]\nmodel: WindowMax(2, 2) → WindowMax(3, 2)", "input: [2, 9]\nmodel: WindowMax(-1, 3)"],
    "Multiply": ["input: [6]\nmodel:\n  g: Dense(6) → Sigmoid\n  v: in → Dense(6)\n  out: Multiply(g, v)"],
    "Permute": ["input: [T, 4]\nmodel: Permute([2, 1]) → Conv1D(3, 1)", "input: [2, 3, 4]\nmodel: Permute([3, 1, 2])"],
    "PositionalEncoding": [
        "input: [T, 8]\nmodel: PositionalEncoding",
        "input: [T, 6]\nmodel: PositionalEncoding(max_len=16, learned=true, dropout=0.1)",
        "input: [T, 7]\nmodel: PositionalEncoding(max_len=9)",      # odd model dimension
    ],
    "RNN": [
        "input: [T, 6]\nmodel: RNN(8)",
        "input: [T, 6]\nmodel: RNN(4, layers=2, return_sequences=true)",
        "input: [T, 6]\nmodel: RNN(4, bidirectional=true)",
    ],
    "ReLU": ["input: [5]\nmodel: ReLU"],
    "Reshape": ["input: [12]\nmodel: Reshape([3, 4])", "input: [2, 6]\nmodel: Reshape([-1, 2, 2])"],
    "SeqPool": [
        "input: [T, 4]\nmodel: SeqPool",
        "input: [T, 4]\nmodel: SeqPool(max)",
        "input: [T, 4]\nmodel: SeqPool(first)",
        "input: [T, 4]\nmodel: SeqPool(last)",
    ],
    "SiLU": ["input: [5]\nmodel: SiLU"],
    "Sigmoid": ["input: [5]\nmodel: Sigmoid"],
    "Slice": ["input: [6]\nmodel: Dense(9) → Slice(-1, 3, 6)", "input: [4, 5, 5]\nmodel: Slice(1, 1, 3) → Flatten"],
    "Softmax": ["input: [5]\nmodel: Softmax", "input: [3, 4]\nmodel: Softmax(dim=1)"],
    "LogSoftmax": ["input: [5]\nmodel: Dense(4, init=he) → LogSoftmax", "input: [3, 4]\nmodel: LogSoftmax(dim=1)"],
    "Tanh": ["input: [5]\nmodel: Tanh"],
    "TransformerEncoder": [
        "input: [T, 8]\nmodel: TransformerEncoder(2, 2, ff=16)",
        "input: [T, 8]\nmodel: TransformerEncoder(1, 4, ff=12, dropout=0.0, activation=gelu, norm_first=true)",
        "input: [T, 8]\nmodel: TransformerEncoder(2, 2, ff=16, causal=true)",
        "input: {ids: {shape: [6], dtype: int64}}\nmodel: Embedding(7, 8) → TransformerEncoder(1, 2, ff=8, ids=ids)",
    ],
    "TransformerDecoder": [
        "input: {x: [T, 8], mem: [5, 8]}\nmodel:\n  a: x → TransformerDecoder(2, 2, mem, ff=16)",
        "input: {x: [T, 8], src: {shape: [5], dtype: int64}}\nmodel:\n  mem: src → Embedding(9, 8)\n"
        "  out: x → TransformerDecoder(1, 4, mem, ff=12, causal=false, norm_first=true, memory_ids=src, pad_id=2)",
    ],
    "TransformerDecoderLayer": [
        "input: {x: [T, 8], mem: [S, 8]}\nmodel:\n  a: x → TransformerDecoderLayer(2, memory=mem, ff=16, activation=gelu)",
    ],
    "TransformerEncoderLayer": [
        "input: [T, 8]\nmodel: TransformerEncoderLayer(2, ff=16)",
        "input: [T, 8]\nmodel: TransformerEncoderLayer(4, ff=8, activation=gelu, norm_first=true)",
        "input: {ids: {shape: [6], dtype: int64}}\nmodel: Embedding(7, 8) → TransformerEncoderLayer(2, ff=8, "
        "causal=true, ids=ids, pad_id=2)",
    ],
}

SNIPPETS = [(op, k, text) for op, texts in CASES.items() for k, text in enumerate(texts)]


def spec_of(snippet: str) -> str:
    return "netc: 1\nname: snippet\n" + snippet + "\n"


# ----------------------------------------------------------------------------- shared checks

def run_exec_source(source: str, class_name: str, meta: bool = False) -> torch.nn.Module:
    """Execute emitted source on its own (a fresh namespace, nothing from netc) and instantiate it.

    ``meta=True`` constructs it on the meta device (no weight initialisation, for the largest
    specs); ``check_graph`` then loads the real state_dict into it with ``assign=True``.
    """
    namespace: dict = {"__name__": "emitted_for_test"}
    exec(compile(source, "<emitted>", "exec"), namespace)
    if meta:
        with torch.device("meta"):
            return namespace[class_name]()
    return namespace[class_name]()


def check_graph(graph: Graph, module: torch.nn.Module, emitted: torch.nn.Module | None = None,
                batches: tuple[int, ...] = BATCHES, meta_batches: tuple[int, ...] = ()) -> None:
    """Shapes at each batch size equal the checker's; parameter counts equal; and the
    emitted class, loaded with the same state_dict, gives the same outputs in eval mode.

    ``meta_batches`` are checked on the meta device: the same forward code, shapes only.
    """
    assert sum(p.numel() for p in module.parameters()) == graph.params
    module.eval()
    first = None
    with torch.no_grad():
        for b in batches:
            xs = example_inputs(graph, batch=b, seq=SEQ)
            y = module(*xs)
            assert tuple(y.shape) == concrete_shape(graph.output_type.shape, b, SEQ), (graph.name, b)
            assert y.dtype == torch.float32
            assert torch.isfinite(y).all()
            if first is None:
                first = (xs, y)
        for b in meta_batches:
            xs = tuple(x.to("meta") for x in example_inputs(graph, batch=b, seq=SEQ))
            y = _meta_forward(module, xs)
            assert tuple(y.shape) == concrete_shape(graph.output_type.shape, b, SEQ), (graph.name, b, "meta")
        if emitted is not None:
            assert list(emitted.state_dict()) == list(module.state_dict())
            on_meta = any(t.is_meta for t in (*emitted.parameters(), *emitted.buffers()))
            emitted.load_state_dict(module.state_dict(), assign=on_meta)
            assert not any(t.is_meta for t in (*emitted.parameters(), *emitted.buffers())), \
                "a non-persistent buffer stayed on the meta device: construct this model for real"
            emitted.eval()
            xs, y = first
            torch.testing.assert_close(emitted(*xs), y)  # default float32 tolerances


def _meta_forward(module: torch.nn.Module, xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Run ``module`` on meta tensors without moving its real weights (a meta copy of its class)."""
    with torch.device("meta"):
        twin = type(module)()
    twin.eval()
    return twin(*xs)


# ----------------------------------------------------------------------------- tests

def test_every_op_has_a_case():
    # A misspelt key in CASES also fails here: the op it was meant for has no case.
    missing = [op.name for op in REGISTRY.all() if not CASES.get(op.name)]
    assert not missing, f"ops without a backend test snippet in CASES: {missing}"


def _registered(op: str) -> bool:
    found = REGISTRY.get(op)
    return found is not None and found.name == op


def test_every_case_uses_its_op():
    for op, k, text in SNIPPETS:
        if not _registered(op):
            continue  # test_op_lowering reports it as skipped
        program = check_text(spec_of(text))
        assert any(n.op == op for g in program.graphs.values() for n in g.nodes), (op, k)


@pytest.mark.parametrize(("op", "k", "text"), SNIPPETS, ids=[f"{op}-{k}" for op, k, _ in SNIPPETS])
def test_op_lowering(op, k, text):
    if not _registered(op):
        pytest.skip(f"{op} is not registered in this checkout")
    torch.manual_seed(0)
    program = check_text(spec_of(text))
    graph = program.main
    module = netc.build(program, train=False)
    emitted = run_exec_source(netc.compile_source(program), "Model")
    check_graph(graph, module, emitted)
    # Training mode runs too, and gradients reach every parameter that the output depends on.
    module.train()
    y = module(*example_inputs(graph, batch=7, seq=SEQ))
    if graph.params:
        y.square().mean().backward()
        assert any(p.grad is not None for p in module.parameters())
