"""Static check of a language model's attention: a next-token model must not see the tokens it predicts.

Without ``causal=true`` an attention op lets position t read position t + 1, so a next-token model learns
to copy its target: on random tokens (where no honest model beats chance) such a model reached 0.93 test
accuracy in issue 15. ``netc check`` refuses it at the attention op. For a sequence-to-sequence model the
same holds for the self-attention over the target prefix (the model's second input); attention over the
source, and cross-attention to it, may see everything. No torch here.
"""

from __future__ import annotations

from typing import Any

from netc.compiler.ir import Program
from netc.compiler.registry import REGISTRY
from netc.compiler.train.config import TrainConfig
from netc.diagnostics import Diagnostic, SpecError


def _downstream(graph, start: str) -> set[str]:
    """Names of the nodes whose value depends on ``start``."""
    seen = {start}
    for n in graph.nodes:  # topological order
        if any(i in seen for i in n.inputs):
            seen.add(n.name)
    return seen


def check_causal(program: Program, train: TrainConfig | None, source: Any = None) -> None:
    """Refuse non-causal self-attention where the objective predicts the next token (located at the op)."""
    task = train.text_task if train is not None else None
    if task is None:
        return
    diags = []
    for graph in program.graphs.values():
        if task == "seq2seq" and len(graph.inputs) < 2:
            continue
        reads_targets = _downstream(graph, graph.inputs[-1].name)  # language: the one input; seq2seq: the prefix
        for node in graph.nodes:
            opdef = REGISTRY.get(node.op)
            causal = opdef.is_causal(node.args) if opdef is not None else None
            if causal is None or causal or node.inputs[0] not in reads_targets:
                continue
            # kv=: another sequence (a decoder's memory is read beside its self-attention, which stays checked)
            cross = not opdef.self_attention and any(graph.type_of(i).dtype != "int64" for i in node.inputs[1:])
            if cross or any(d.span == node.span for d in diags):
                continue  # cross-attention may read every source position; one error per op written
            what = "the target prefix" if task == "seq2seq" else "the text"
            diags.append(Diagnostic(
                "train", f"{node.op} attends to every position of {what} but this {task} objective predicts "
                         f"each next token: this model can see future tokens (it would learn to copy them)",
                node.span, f"write {node.op}(..., causal=true) so that each position sees only itself and "
                           "earlier positions"))
    if diags:
        raise SpecError("train", diagnostics=diags, source=source)


def check_block(program: Program, train: TrainConfig | None, source: Any = None) -> None:
    """``train.data.block`` must equal a fixed declared input length and fit every positional encoding."""
    from netc.compiler.train.config import train_spans

    if train is None or train.text_task != "language" or train.data.block is None:
        return
    block = train.data.block
    problems = []
    for graph in program.graphs.values():
        length = graph.inputs[0].type.shape[1] if len(graph.inputs[0].type.shape) > 1 else None
        if isinstance(length, int) and length != block:
            problems.append((f"train.data.block is {block} but input '{graph.inputs[0].name}' is declared with "
                             f"length {length}", f"set block: {length}, or declare the input with length {block}"))
        for node in graph.nodes:
            opdef = REGISTRY.get(node.op)
            arg = opdef.seq_len_arg if opdef is not None else None
            cap = dict(node.args).get(arg, opdef.arg(arg).default) if arg else None
            if isinstance(cap, int) and block > cap:
                problems.append((f"train.data.block is {block} but {node.op}({arg}={cap}) covers {cap} positions",
                                 f"set {node.op}({arg}={block}) or a block of at most {cap}"))
    if problems:
        span = train_spans(program.source, program.file).get("train.data.block")
        raise SpecError("train", diagnostics=[Diagnostic("train", m, span, h) for m, h in problems], source=source)


def id_readers(graph) -> list[tuple[Any, int]]:
    """(node, bound) for each node reading a model input's token ids directly, bounded by its id range (vocab)."""
    out = []
    inputs = {i.name for i in graph.inputs if i.type.dtype == "int64"}
    for node in graph.nodes:
        opdef = REGISTRY.get(node.op)
        if opdef is not None and opdef.id_range_arg and node.inputs and node.inputs[0] in inputs:
            bound = dict(node.args).get(opdef.id_range_arg)
            if isinstance(bound, int):
                out.append((node, bound))
    return out


def check_vocab_size(program: Program, train: TrainConfig | None, source: Any = None) -> None:
    """A bpe or word tokenizer of ``train.data.vocab_size`` tokens must fit every Embedding reading its ids."""
    from netc.compiler.train.config import train_spans
    from netc.compiler.train.sources import SOURCES

    if train is None or train.data.tokenizer == "char":  # char: the vocabulary is known only from the data
        return
    name = train.data.source
    if name is None or not SOURCES[name].text:
        return
    size = train.data.vocab_size
    diags = []
    for graph in program.graphs.values():
        for node, bound in id_readers(graph):
            if size > bound:
                span = train_spans(program.source, program.file).get("train.data.vocab_size") or node.span
                diags.append(Diagnostic("train", f"train.data.vocab_size is {size} but {node.op} reads ids below "
                                                 f"{bound} (the tokenizer's ids go up to {size - 1})", span,
                                        f"set vocab_size: {bound}, or widen {node.op} to {size}"))
    if diags:
        raise SpecError("train", diagnostics=diags, source=source)
