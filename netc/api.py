"""The Python API: ``load`` a spec, ``build`` a torch module, ``compile_source`` to PyTorch text, ``load_run``.

``build`` and ``netc compile`` share one path: both emit the same source text
(``netc.backend.emit``); ``build`` executes it. Only ``build`` imports torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from netc.compiler.ir import Graph, Program
from netc.compiler.select import select_model
from netc.diagnostics import UsageError

if TYPE_CHECKING:
    from torch import nn

    from netc.runner.trained import TrainedRun

SpecLike = str | Path | Program


def load(spec: SpecLike, params: dict[str, object] | None = None) -> Program:
    """The checked IR of a spec: a path, or YAML text (any string containing a newline).

    ``params`` override values of the spec's ``params:`` mapping (like ``--param``).
    Raises :class:`netc.diagnostics.SpecError` with every diagnostic if the spec is invalid.
    """
    from netc.compiler.check import check_file, check_text

    if isinstance(spec, Program):
        if params:
            raise UsageError("params overrides apply when checking a spec, not to an already checked Program")
        return spec
    extra = {"params": params} if params else {}
    if isinstance(spec, str) and "\n" in spec:
        return check_text(spec, **extra)
    if not isinstance(spec, str | Path):
        raise UsageError(f"a spec is a path or YAML text, got {type(spec).__name__}")
    return check_file(spec, **extra)


def select(program: Program, model: str | None = None) -> Graph:
    """The graph of ``model``; a multi-model spec must name one."""
    first = next(iter(program.graphs), "generator")
    return select_model(program, model, hint=f"e.g. build(spec, model={first!r})")


def build(spec: SpecLike | Graph, model: str | None = None, *, train: bool = True,
          passes: int | list[str] | None = None, params: dict[str, object] | None = None) -> nn.Module:
    """A ``torch.nn.Module`` for a spec (path, YAML text, Program or Graph), in train or eval mode.

    ``passes`` optimises first: an ``-O`` level (0, 1, 2) or a list of pass names.
    ``params`` override the spec's ``params:`` values. The module carries ``netc_graph``
    (the graph it was built from) and ``input_names`` (its inputs in ``forward`` order).
    """
    from netc.backend.build import build_graph, model_class

    if isinstance(spec, Graph):
        graph, cname, origin = spec, "Model", ""
    else:
        program = load(spec, params)
        graph = select(program, model)
        cname, origin = model_class(program, graph.name)
    graph = dataclasses.replace(graph, training=train)
    if passes is not None:
        from netc.compiler.passes import run_pipeline

        if isinstance(passes, int):
            graph = run_pipeline(graph, passes, None)
        else:
            graph = run_pipeline(graph, None, list(passes))
    return build_graph(graph, cname, train=train, origin=origin)


def load_run(run: str | Path, *, optimize: bool = True, device: str = "cpu") -> TrainedRun:
    """A trained run directory (or a checkpoint in one) for inference, from any working directory.

    The result has ``.module`` (the trained model, optimised for inference unless ``optimize=False``),
    ``.preprocess(x)`` (raw inputs normalised as in training), ``.outputs(x)`` and ``.predict(x)``
    (class ids, or values in the data's units), ``.class_names`` and ``.wrapped`` (the module with the
    preprocessing inside, what ``netc export`` saves). Needs the ``[train]`` extra.
    """
    from netc.runner.trained import load as load_trained

    return load_trained(run, optimize=optimize, device=device)


def compile_source(program_or_graph: Program | Graph | str | Path, model: str | None = None) -> str:
    """Standalone PyTorch source: every model of a Program (or just ``model``), or one Graph."""
    from netc.backend.emit import graph_source, program_source

    if isinstance(program_or_graph, Graph):
        return graph_source(program_or_graph)
    program = load(program_or_graph)
    if model is not None:
        select(program, model)
        return program_source(program, [model])
    return program_source(program)

