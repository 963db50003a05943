"""Transfer learning at run time: weights from another run, frozen nodes, per-node learning rates.

``netc check`` has already refused patterns that name no node (``netc.compiler.train.transfer``);
here the settings act on the built module. A node's layer is the module attribute the emitted source
gives it (``netc.backend.weights.node_attrs``), so the state-dict key ``<attr>.<param>`` belongs to that
node. Source weights are read from safetensors only (``checkpoint.read_weights``): nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from netc.backend.weights import node_attrs
from netc.compiler.train.config import InitFromConfig
from netc.compiler.train.transfer import matches, weighted_nodes
from netc.diagnostics import CheckpointError, Span, UsageError
from netc.runner.checkpoint import WEIGHTS, read_weights, resolve_dir
from netc.runner.rundir import RunDir


def layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Node name → its layer, for the nodes with weights of a module built by netc."""
    graph = getattr(model, "netc_graph", None)
    if graph is None:
        raise UsageError("freeze, lr_mult and init_from name the nodes of a model built by netc; this module has "
                         "no netc_graph", hint="build the model with netc.build(spec)")
    attrs = node_attrs(graph)
    return {n: getattr(model, attrs[n]) for n in weighted_nodes(graph) if isinstance(getattr(model, attrs[n], None),
                                                                                      torch.nn.Module)}


def _node_of_key(model: torch.nn.Module) -> dict[str, str]:
    """State-dict key → the node it belongs to (keys of layers without a node map to themselves)."""
    graph = getattr(model, "netc_graph", None)
    by_attr = {a: n for n, a in node_attrs(graph).items()} if graph is not None else {}
    return {k: by_attr.get(k.split(".", 1)[0], k) for k in model.state_dict()}


# ---------------------------------------------------------------- init_from

def source_file(cfg: InitFromConfig, span: Span | None = None) -> Path:
    """The safetensors file ``init_from`` names: a run directory's best/ (or last/), a checkpoint, or a file."""
    p = Path(cfg.path or "")
    if not p.exists():
        raise CheckpointError(f"train.init_from: {cfg.path} does not exist", span,
                              "give a run directory written by netc train (runs/NAME), a checkpoint in one "
                              "(runs/NAME/last) or a .safetensors file; relative paths start at the spec's folder")
    rd = RunDir.around(p)
    if rd is not None and p.resolve() == rd.root.resolve():
        wanted = rd.best if cfg.checkpoint == "best" else rd.last
        if cfg.checkpoint == "best" and not (rd.best / WEIGHTS).exists() and rd.has_last():
            wanted = rd.last  # a run without a validation split keeps no best/
        return resolve_dir(wanted) / WEIGHTS
    return resolve_dir(p) / WEIGHTS if p.is_dir() else p


@dataclass
class Loaded:
    """What ``init_from`` did: nodes loaded, nodes started fresh, source weights left out."""

    source: Path
    loaded: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the training log."""
        def few(names: list[str]) -> str:
            return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")

        text = f"init_from {self.source}: loaded {len(self.loaded)} node(s)"
        if self.fresh:
            text += f"; fresh: {few(self.fresh)}"
        if self.unused:
            text += f"; source weights left out: {few(self.unused)}"
        return text


def initialise(model: torch.nn.Module, cfg: InitFromConfig, span: Span | None = None,
               note: Callable[[str], Any] | None = None) -> Loaded:
    """Load the weights of ``cfg``'s source whose name and shape match the model's; refuse unmatched nodes.

    A node matched by ``cfg.new`` keeps its fresh weights; any other node without a match is an error
    (located at ``span``, the spec's init_from) listing each one, unless ``cfg.allow_missing``.
    """
    path = source_file(cfg, span)
    try:
        tensors = read_weights(path)  # safetensors only: a pickle is refused unread
    except CheckpointError as e:
        raise CheckpointError(f"train.init_from: {e.diagnostics[0].message}", span, e.hint) from None
    own = model.state_dict()
    node_of = _node_of_key(model)
    new = [n for n in dict.fromkeys(node_of.values()) if any(matches(p, n) for p in cfg.new or [])]
    take: dict[str, torch.Tensor] = {}
    problems: dict[str, str] = {}  # node → why it has no source weights
    for key, t in own.items():
        node = node_of[key]
        if node in new:
            continue
        src = tensors.get(key)
        if src is None:
            problems.setdefault(node, "not in the source")
        elif tuple(src.shape) != tuple(t.shape):
            problems.setdefault(node, f"{key.split('.', 1)[-1]} is {tuple(src.shape)} in the source, "
                                      f"{tuple(t.shape)} here")
        else:
            take[key] = src
    if problems and not cfg.allow_missing:
        listed = "; ".join(f"{n} ({why})" for n, why in list(problems.items())[:8])
        more = f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
        raise CheckpointError(f"train.init_from: {len(problems)} node(s) have no weights of the same name and shape "
                              f"in {path}: {listed}{more}", span,
                              f"start them fresh with init_from: {{path: ..., new: [{', '.join(list(problems)[:3])}]}}"
                              ", or allow every unmatched node with allow_missing: true")
    # a node is loaded whole or not at all: a half-loaded layer would be neither pretrained nor fresh
    partial = {node_of[k] for k in own if node_of[k] in problems}
    take = {k: v for k, v in take.items() if node_of[k] not in partial}
    missing_keys = model.load_state_dict(take, strict=False).missing_keys
    assert all(node_of[k] in partial or node_of[k] in new for k in missing_keys), missing_keys
    done = Loaded(path, loaded=list(dict.fromkeys(node_of[k] for k in take)),
                  fresh=[n for n in dict.fromkeys(node_of.values()) if n in new or n in partial],
                  unused=sorted(k for k in tensors if k not in take))
    if note is not None:
        note(done.summary())
    return done


# ---------------------------------------------------------------- freeze / lr_mult

def freeze(model: torch.nn.Module, patterns: list[str] | None) -> list[torch.nn.Module]:
    """Stop the weights of the nodes ``patterns`` match from training; those layers (to keep in eval mode)."""
    if not patterns:
        return []
    frozen = [m for n, m in layers(model).items() if any(matches(p, n) for p in patterns)]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise UsageError(f"train.freeze {patterns} freezes every weight of the model; nothing would train",
                         hint="freeze fewer nodes (e.g. all but the last Dense)")
    return frozen


def param_groups(model: torch.nn.Module, lr_mult: dict[str, float] | None, lr: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: trainable weights, at ``lr`` times the first matching multiplier."""
    node_of = _node_of_key(model) if lr_mult else {}
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for key, p in model.named_parameters():
        if not p.requires_grad:
            continue
        node = node_of.get(key, key)
        mult = next((m for pat, m in (lr_mult or {}).items() if matches(pat, node)), 1.0)
        groups.setdefault(mult, []).append(p)
    return [{"params": ps, "lr": lr * m} if m != 1.0 else {"params": ps} for m, ps in groups.items()]
