"""Transfer learning settings checked against the model: ``freeze``, ``lr_mult`` and ``init_from.new``.

Each of these names nodes of the model, by name or glob pattern (``conv*``, ``block_?_dense``).
A pattern that matches no node with weights is a mistake that would train without a word (nothing
frozen, no multiplier applied), so ``netc check`` reports it at the pattern, with the nearest node
name. The runner uses :func:`matching` for the same decision at run time. No torch here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from netc.compiler.ir import Graph, Program
from netc.compiler.train.config import TrainConfig, train_spans
from netc.compiler.train.heads import GAN_MODELS
from netc.diagnostics import Diagnostic, Span, SpecError, closest


def matches(pattern: str, name: str) -> bool:
    """True when node ``name`` is ``pattern`` or matches it as a glob (``*``, ``?``, ``[...]``)."""
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def matching(patterns: Iterable[str], names: Iterable[str]) -> list[str]:
    """The ``names`` that one of ``patterns`` matches, in the order of ``names``."""
    pats = list(patterns)
    return [n for n in names if any(matches(p, n) for p in pats)]


def weighted_nodes(graph: Graph) -> list[str]:
    """Names of the graph's nodes that own weights (what freeze, lr_mult and init_from act on)."""
    return [n.name for n in graph.nodes if n.params > 0]


def _patterns(train: TrainConfig) -> list[tuple[str, str, str]]:
    """(setting, spans key, pattern) for every pattern of the transfer settings."""
    out = [("train.freeze", f"train.freeze[{i}]", p) for i, p in enumerate(train.freeze or [])]
    out += [("train.lr_mult", f"train.lr_mult.{p}:key", p) for p in (train.lr_mult or {})]
    if train.init_from is not None:
        out += [("train.init_from.new", f"train.init_from.new[{i}]", p) for i, p in enumerate(train.init_from.new or [])]
    return out


def check_transfer(program: Program, train: TrainConfig | None, root: Any = None) -> None:
    """Refuse a freeze / lr_mult / init_from.new pattern that matches no node with weights (every one at once).

    ``root`` is the spec's loaded YAML tree (for the patterns' spans), when the caller has it.
    """
    if train is None:
        return
    pats = _patterns(train)
    if not pats and train.init_from is None:
        return
    spans: Mapping[str, Span] = train_spans(program.source, program.file, root)
    source = program.source
    if set(program.graphs) == GAN_MODELS:
        where = "init_from" if train.init_from is not None else pats[0][0].split(".")[1]
        raise SpecError(f"train.{where}: transfer settings (init_from, freeze, lr_mult) apply to supervised "
                        "training, not to a GAN", spans.get(f"train.{where}:key") or spans.get("train"),
                        "remove them from the GAN's train: block", kind="schema", source=source)
    names = [n for g in program.graphs.values() for n in weighted_nodes(g)]
    diags = []
    for setting, key, pattern in pats:
        if matching([pattern], names):
            continue
        near = closest(pattern.replace("*", "").replace("?", ""), names) if pattern.strip("*?") else None
        hint = f"did you mean '{near}'? " if near else ""
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        diags.append(Diagnostic("name", f"{setting}: '{pattern}' matches no node with weights", spans.get(key)
                                or spans.get(setting), f"{hint}nodes with weights: {shown or 'none'} "
                                "(netc summary lists them)"))
    if train.freeze and names and len(matching(train.freeze, names)) == len(names):
        diags.append(Diagnostic("schema", f"train.freeze {train.freeze} freezes every weight of the model; nothing "
                                          "would train", spans.get("train.freeze:key") or spans.get("train"),
                                "freeze the pretrained part only (e.g. features_*), not the new head"))
    if diags:
        raise SpecError(diags[0].message, diagnostics=diags, source=source)
