"""The one model selector: which of a program's models a command (or ``netc.build``) works on."""

from __future__ import annotations

from netc.compiler.ir import Graph, Program
from netc.diagnostics import UsageError


def select_models(program: Program, model: str | None = None, *, one: str | None = None,
                  hint: str | None = None, blocks_only_ok: bool = False) -> list[Graph]:
    """The model named ``model`` (it must exist), else every model of ``program``.

    ``one`` says why the caller takes a single model (e.g. "--format onnx exports one"): several
    models without a ``model`` name are then refused with ``hint``. A spec of blocks only is
    refused unless ``blocks_only_ok``.
    """
    names = ", ".join(program.graphs)
    if not program.graphs and not blocks_only_ok:
        raise UsageError(f"{program.file} defines only blocks, no model",
                         hint="add `model:` (or `models:`) to the spec, or import its blocks from another spec")
    if model is not None:
        if model not in program.graphs:
            raise UsageError(f"no model named {model!r}; {program.file} has: {names or 'none'}")
        return [program.graphs[model]]
    if one is not None and len(program.graphs) > 1:
        raise UsageError(f"{program.file} defines {len(program.graphs)} models ({names}); {one}",
                         hint=hint or f"choose one, e.g. --model {next(iter(program.graphs))}")
    return list(program.graphs.values())


def select_model(program: Program, model: str | None = None, *, one: str = "choose one",
                 hint: str | None = None) -> Graph:
    """The single model a caller works on: ``model``, or the only one (see :func:`select_models`)."""
    return select_models(program, model, one=one, hint=hint)[0]
