"""Build ``nn.Module`` instances by executing the source that ``emit.py`` generates.

The generated text is compiled once per distinct source into a module object
registered in ``sys.modules`` and ``linecache``, so tracebacks, ``inspect``
and ``torch.jit.script`` see the same lines a user gets from ``netc compile``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import linecache
import sys
import types
from pathlib import Path

import torch
from torch import nn

from netc.backend.emit import BackendError, class_names, emit_source, source_text
from netc.compiler.ir import Graph, Program
from netc.compiler.registry import REGISTRY
from netc.compiler.select import select_model

_MODULES: dict[str, types.ModuleType] = {}  # generated source → its executed module


def load_source(source: str, label: str = "model") -> types.ModuleType:
    """Execute generated source as a module (cached by text) and return the module."""
    mod = _MODULES.get(source)
    if mod is not None:
        return mod
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]
    name = f"netc_generated_{digest}"
    filename = f"<netc-generated {source_text(label)} {digest}>"
    mod = types.ModuleType(name, f"netc-generated source for {label}")
    mod.__file__ = filename
    # mtime None: linecache.checkcache never evicts it, so tracebacks keep showing the lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    code = compile(source, filename, "exec")
    sys.modules[name] = mod  # so pickling, inspect and TorchScript can find the classes
    exec(code, mod.__dict__)  # our own generated text: user strings in it went through emit.source_text
    _MODULES[source] = mod
    return mod


def build_graph(graph: Graph, class_name: str = "Model", *, train: bool = True, origin: str = "") -> nn.Module:
    """Instantiate the generated class for ``graph``; sets ``netc_graph`` and ``input_names``."""
    source = emit_source([(graph, class_name)], origin)
    cls = getattr(load_source(source, graph.name), class_name)
    try:
        module = cls()
    except MemoryError:
        raise _out_of_memory(graph, "MemoryError") from None
    except (RuntimeError, ValueError, TypeError) as e:
        if _is_allocation_failure(e):
            raise _out_of_memory(graph, str(e).splitlines()[0]) from None
        raise BackendError(f"torch could not construct model '{graph.name}': {e}", graph.span,
                           "this is likely a bug in an op's lowering; please report it") from None
    module.netc_graph = dataclasses.replace(graph, training=train)
    module.input_names = [i.name for i in graph.inputs]
    module.train(train)
    return module


def _is_allocation_failure(e: BaseException) -> bool:
    """Whether torch failed for want of memory ("can't allocate memory", "out of memory")."""
    text = str(e).lower()
    return "allocate" in text or "out of memory" in text


def _out_of_memory(graph: Graph, detail: str) -> BackendError:
    """A model too big for this machine: the sizes and the memory limit, not a bug in netc."""
    params = sum(n.params for n in graph.nodes)
    return BackendError(f"not enough memory to build model '{graph.name}' ({params:,} parameters, "
                        f"{params * 4 / 1e9:.1f} GB in float32): {detail}", graph.span,
                        "use smaller sizes; netc check refuses such models before any work when given this "
                        "machine's memory as --max-memory SIZE (e.g. --max-memory 8GB)")


def model_class(program: Program, model: str) -> tuple[str, str]:
    """(class name, origin file name) of ``model``'s generated class, as ``netc compile`` names it."""
    origin = Path(program.file).name if program.file not in ("", "<string>") else ""
    return class_names(program)[model], origin


def build_model(program: Program, model: str | None = None, *, train: bool = True) -> nn.Module:
    """The ``nn.Module`` of one model of a checked program (``model`` may be omitted for a single model)."""
    graph = select_model(program, model)
    cname, origin = model_class(program, graph.name)
    return build_graph(dataclasses.replace(graph, training=train), cname, train=train, origin=origin)


def example_inputs(graph: Graph, batch: int = 2, seq: int = 8, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes and dtypes: batch ``batch``, symbolic dims ``seq``.

    Symbolic sequence lengths are capped by every op's ``seq_len_arg`` (PositionalEncoding's
    ``max_len``); integer ids lie below every op's ``id_range_arg`` (Embedding's ``vocab``).
    """
    id_bounds = []
    for n in graph.nodes:
        op = REGISTRY.get(n.op)
        if op is not None and op.seq_len_arg is not None:
            seq = min(seq, int(n.arg(op.seq_len_arg, seq)))
        if op is not None and op.id_range_arg is not None:
            id_bounds.append(int(n.arg(op.id_range_arg)))
    vocab = min(id_bounds or [2])
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in graph.inputs:
        shape = [batch] + [d if isinstance(d, int) else seq for d in i.type.shape[1:]]
        if i.type.dtype == "int64":
            out.append(torch.randint(0, vocab, shape, generator=gen))
        else:
            out.append(torch.randn(*shape, generator=gen))
    return tuple(out)


def concrete_shape(shape: tuple[int | str, ...], batch: int, seq: int) -> tuple[int, ...]:
    """A checker shape with the batch axis set to ``batch`` and symbolic sizes to ``seq``
    (``"0+T+T"``, a Concat of two length-T sequences, becomes ``2 * seq``)."""
    def dim(d: int | str) -> int:
        if isinstance(d, int):
            return d
        return sum(int(p) if p.isdigit() else seq for p in d.split("+"))
    return (batch, *(dim(d) for d in shape[1:]))
