"""``netc compile``: a spec to PyTorch source, the IR text, TorchScript or ONNX."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path

from netc.backend.emit import BackendError, class_names, program_source
from netc.compiler.ir import Graph, Program
from netc.compiler.passes import run_pipeline
from netc.compiler.select import select_models
from netc.diagnostics import EXIT_OK, MissingExtra, UsageError

ONNX_TOLERANCE = 1e-4  # max abs difference between onnxruntime and torch accepted as "the same model"


def run_compile(args: argparse.Namespace) -> int:
    """Entry point of ``netc compile`` (argument parsing lives in ``netc.cli``)."""
    from netc.compiler.check import check_file
    from netc.dsl.files import check_output_path

    if args.output:  # before any work: never overwrite the spec with its own compiled form
        check_output_path(args.output, (args.file,))
    # 1. check the spec (all front-end diagnostics are raised as SpecError)
    params = None
    if getattr(args, "params", None):  # --param NAME=VALUE
        from netc.compiler.check import parse_param_overrides

        params = parse_param_overrides(args.params)
    from netc.compiler.resources import Limits

    program = check_file(args.file, params=params, limits=Limits.of_options(args))
    models = _models(program, args.model, args.format)

    # 2. optimise: -O2 unless -O or --passes says otherwise
    graphs = {m: dataclasses.replace(program.graphs[m], training=bool(args.train_mode)) for m in models}
    names = [p.strip() for p in args.passes.split(",") if p.strip()] if args.passes else None
    level = args.opt if args.opt is not None else (None if names else 2)
    explain = _explain if args.explain else None
    graphs = {m: run_pipeline(g, level, names, explain) for m, g in graphs.items()}

    # 3. emit
    if args.format == "ir":
        _write_text("\n\n".join(g.text() for g in graphs.values()) + "\n", args.output)
    elif args.format == "python":
        _write_text(program_source(program, models, graphs), args.output)
        if args.output:
            parts = [f"{class_names(program)[m]} ({g.params:,} parameters)" for m, g in graphs.items()]
            print(f"wrote {args.output}: {', '.join(parts)}", file=sys.stderr)
    else:
        (model,) = models
        graph = graphs[model]
        out = Path(args.output or f"{graph.name}.{'pt' if args.format == 'torchscript' else 'onnx'}")
        cname = class_names(program)[model]
        if args.format == "torchscript":
            export_torchscript(graph, cname, out, train=bool(args.train_mode))
        else:
            export_onnx(graph, cname, out)
    return EXIT_OK


def _models(program: Program, model: str | None, fmt: str) -> list[str]:
    one = f"--format {fmt} exports one" if fmt in ("torchscript", "onnx") else None
    return [g.name for g in select_models(program, model, one=one)]


def _explain(name: str, graph: Graph) -> None:
    print(f"# after {name}\n{graph.text()}\n", file=sys.stderr)


def _write_text(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror}") from None


def _first_line(e: BaseException | None) -> str:
    """``Type: the first sentence of the message`` (torch's messages carry graph dumps and pleas)."""
    text = (str(e).strip().splitlines() or [""])[0]
    for cut in ("  [Caused by", ". Please "):
        text = text.split(cut)[0]
    text = text if len(text) <= 240 else text[:240] + "…"
    return f"{type(e).__name__}: {text}"


def _eval_module(graph: Graph, cname: str, train: bool = False):
    from netc.backend.build import build_graph

    return build_graph(graph, cname, train=train)


def export_torchscript(graph: Graph, cname: str, out: Path, train: bool = False, module=None,
                       script: bool = True) -> None:
    """Save ``graph`` as TorchScript: ``torch.jit.script``, or a trace when scripting fails (or ``script`` is off).

    ``module`` is the module to save (e.g. a trained one) instead of a fresh one built from ``graph``.
    """
    import torch

    from netc.backend.build import example_inputs

    module = module if module is not None else _eval_module(graph, cname, train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices: the user asked for TorchScript
        try:
            if not script:
                raise TypeError("tracing was asked for")
            scripted = torch.jit.script(module)
            how = "scripted"
        except Exception as e:  # noqa: BLE001  any scripting failure → fall back to tracing
            if script:
                print(f"note: torch.jit.script failed ({_first_line(e)}); tracing instead, so the saved model "
                      "follows the one path taken by the example input", file=sys.stderr)
            try:
                scripted = torch.jit.trace(module, example_inputs(graph))
                how = "traced"
            except Exception as e2:  # noqa: BLE001
                raise BackendError(f"model '{graph.name}' cannot be exported to TorchScript: {_first_line(e2)}",
                                   graph.span, "use --format python (standalone source) instead") from None
        try:
            torch.jit.save(scripted, str(out))
        except OSError as e:
            raise UsageError(f"cannot write {out}: {e.strerror}") from None
    print(f"wrote {out}: TorchScript ({how}), load with torch.jit.load({str(out)!r})", file=sys.stderr)


def export_onnx(graph: Graph, cname: str, out: Path, module=None) -> float | None:
    """Export ``graph`` to ONNX with a dynamic batch axis; verify in onnxruntime when installed.

    ``module`` is the module to export (e.g. a trained one, same inputs and outputs as ``graph``)
    instead of a fresh one built from ``graph``. Returns the max abs difference between onnxruntime
    and torch, or None if unverified.
    """
    import torch

    from netc.backend.build import example_inputs
    from netc.backend.emit import MODULE_GLOBALS, _unique, helper_names

    if importlib.util.find_spec("onnx") is None:
        raise MissingExtra("netc compile --format onnx", "onnx")
    module = module if module is not None else _eval_module(graph, cname)
    inputs = example_inputs(graph, batch=2)
    in_names = list(_unique([i.name for i in graph.inputs], MODULE_GLOBALS | helper_names()).values())
    out_names = [f"output_{i}" if len(graph.outputs) > 1 else "output" for i in range(len(graph.outputs))]
    dynamic = {}
    for name, i in zip(in_names, graph.inputs, strict=True):
        dynamic[name] = {k: (d if isinstance(d, str) else "N") for k, d in enumerate(i.type.shape)
                         if not isinstance(d, int)}
    for name, o in zip(out_names, graph.outputs, strict=True):
        dynamic[name] = {k: d for k, d in enumerate(graph.type_of(o).shape) if isinstance(d, str) and d.isidentifier()}
    _onnx_export(module, inputs, out, in_names, out_names, dynamic, graph)
    print(f"wrote {out}: ONNX, dynamic axes {', '.join(sorted({a for d in dynamic.values() for a in d.values()}))}",
          file=sys.stderr)

    if importlib.util.find_spec("onnxruntime") is None:
        print("note: not verified; pip install onnxruntime to check the export against torch", file=sys.stderr)
        return None
    import numpy as np
    import onnxruntime as ort

    check = example_inputs(graph, batch=3, seed=1)  # another batch size: proves the batch axis is dynamic
    with torch.no_grad():
        expected = module(*check)
    expected = expected if isinstance(expected, tuple) else (expected,)
    try:
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {n: t.numpy() for n, t in zip(in_names, check, strict=True)})
    except Exception as e:  # noqa: BLE001  onnxruntime rejects the file
        raise BackendError(f"onnxruntime cannot run the exported model: {_first_line(e)}", graph.span,
                           "the .onnx file was written but is not usable; use --format torchscript") from None
    diff = max(float(np.max(np.abs(g - e.numpy()))) if g.size else 0.0 for g, e in zip(got, expected, strict=True))
    if not diff <= ONNX_TOLERANCE:
        raise BackendError(f"onnxruntime output differs from torch by {diff:.3g} (tolerance {ONNX_TOLERANCE})",
                           graph.span, "the export is not faithful; use --format torchscript")
    print(f"verified in onnxruntime {ort.__version__}: max abs difference {diff:.2e} at batch 3", file=sys.stderr)
    return diff


def _onnx_export(module, inputs, out: Path, in_names, out_names, dynamic, graph: Graph) -> None:
    """torch.onnx.export with the TorchScript-based exporter (fast, quiet, covers every netc op);
    the torch.export-based one (5+ s per model) only if that fails and onnxscript is installed."""
    import inspect

    import torch

    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    attempts = [False]
    if has_dynamo and importlib.util.find_spec("onnxscript") is not None:
        attempts.append(True)
    error: Exception | None = None
    for dynamo in attempts:
        kw = {"dynamo": dynamo} if has_dynamo else {}
        if dynamo:
            print(f"note: the TorchScript-based ONNX exporter failed ({_first_line(error)}); "
                  "trying the torch.export-based one", file=sys.stderr)
            kw["verbose"] = False
        try:
            with warnings.catch_warnings(), _quiet():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, inputs, str(out), input_names=in_names, output_names=out_names,
                                  dynamic_axes=dynamic, **kw)
            return
        except Exception as e:  # noqa: BLE001  try the next exporter, then report
            error = e
    hint = "use --format torchscript or --format python instead"
    if len(attempts) == 1 and has_dynamo:
        hint = "pip install onnxscript (torch's newer exporter covers more ops), or " + hint
    raise BackendError(f"model '{graph.name}' cannot be exported to ONNX: {_first_line(error)}", graph.span,
                       hint) from None


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' own printing (graph dumps, logging) at the file-descriptor level."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])
