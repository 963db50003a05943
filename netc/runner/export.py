"""``netc export RUN_DIR --format onnx|torchscript|torch.export|python [-o FILE]``: a trained run as one file.

The model is the run's best checkpoint, optimised for inference (-O2: BatchNorm folded, dropout removed,
...) unless ``--no-optimize``, with the run's preprocessing inside (:class:`netc.runner.trained.Preprocessed`):
the exported file takes the raw inputs ``netc predict`` reads and returns the outputs it computes.
ONNX is verified in onnxruntime, TorchScript and torch.export by loading the saved file back; the
``python`` format writes the readable source of the optimised model, its weights as safetensors beside
it, and the preprocessing as constants. The exporters themselves are ``netc compile``'s.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from netc.diagnostics import EXIT_OK, UsageError

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "torch.export": ".pt2", "python": ".py"}
TOLERANCE = 1e-5  # max abs difference between a saved file (loaded back) and the module it came from


def run_export(args: argparse.Namespace) -> int:
    """Entry point of ``netc export`` (argument parsing lives in ``netc.cli``)."""
    from netc.runner.cli import passive_omp_wait
    from netc.runner.rundir import RunDir

    passive_omp_wait()
    # 1. the run and the output path, before any work
    run = Path(args.run)
    rd = RunDir.around(run) if run.exists() else None
    if rd is None:
        raise UsageError(f"{args.run} is not a run directory (no config.json there)",
                         hint="pass the directory netc train wrote, e.g. netc export runs/digits_cnn --format onnx")
    out = Path(args.output) if args.output else Path(f"{rd.root.name}{SUFFIX[args.format]}")
    from netc.dsl.files import check_output_path

    check_output_path(out, (str(rd.spec), str(rd.config)))
    # 2. the trained module (optimised unless --no-optimize) with its preprocessing inside
    from netc.runner.trained import load

    trained = load(run, optimize=not args.no_optimize, device="cpu")
    graph = trained.module.netc_graph
    wrapped = trained.wrapped
    # 3. one file per format
    try:
        if args.format == "onnx":
            from netc.backend.compile_cmd import export_onnx

            export_onnx(graph, "Model", out, module=wrapped)
        elif args.format == "torchscript":
            from netc.backend.compile_cmd import export_torchscript

            export_torchscript(graph, "Model", out, module=wrapped, script=False)
            _verify(wrapped, graph, lambda: __import__("torch").jit.load(str(out)), "TorchScript")
        elif args.format == "torch.export":
            _torch_export(wrapped, graph, out)
        else:
            _python(trained, out)
    except PermissionError as e:
        raise UsageError(f"cannot write {out}: {e.strerror}", hint="pick another -o path") from None
    return EXIT_OK


def _verify(module, graph, load_back, what: str) -> None:
    """The saved file, loaded back, against the module on a batch of another size (3)."""
    import torch

    from netc.backend.build import example_inputs
    from netc.diagnostics import CheckpointError

    xs = example_inputs(graph, batch=3, seed=1)
    with torch.no_grad():
        want, got = module(*xs), load_back()(*xs)
    diff = float((want - got).abs().max()) if want.numel() else 0.0
    if not diff <= TOLERANCE:
        raise CheckpointError(f"the saved {what} model differs from the trained one by {diff:.3g}",
                              hint="export --format onnx or python instead")
    print(f"verified: the saved {what} model loaded back matches (max abs difference {diff:.1e} at batch 3)",
          file=sys.stderr)


def _torch_export(wrapped, graph, out: Path) -> None:
    """``torch.export`` with a dynamic batch axis, saved as a .pt2 archive."""
    import torch

    from netc.backend.build import example_inputs
    from netc.backend.compile_cmd import _first_line
    from netc.diagnostics import CheckpointError

    xs = example_inputs(graph, batch=2)
    dims: dict[str, Any] = {}

    def dim(name: str):
        return dims.setdefault(name, torch.export.Dim(name if name.isidentifier() else "N", min=1))

    every = tuple({k: dim(str(d)) for k, d in enumerate(i.type.shape) if not isinstance(d, int)} for i in graph.inputs)
    batch_only = tuple({0: dim("N" if not isinstance(i.type.shape[0], str) else i.type.shape[0])} for i in graph.inputs)
    error = None
    for shapes in [every] if every == batch_only else [every, batch_only]:
        try:  # every symbolic axis dynamic (batch, sequence length); else the batch axis alone
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's notes on RNN weight attributes and the like
                program = torch.export.export(wrapped, xs, dynamic_shapes=(shapes,))
            break
        except Exception as e:  # noqa: BLE001  torch.export refuses some graphs; say which and offer another
            error = e
    else:
        raise CheckpointError(f"torch.export cannot export this model: {_first_line(error)}",
                              hint="use --format onnx, torchscript or python") from None
    if shapes is not every:
        print(f"note: only the batch axis is dynamic; other axes are fixed to the example's "
              f"({_first_line(error)})", file=sys.stderr)
    from netc.backend.compile_cmd import _quiet

    with _quiet():  # torch's archive writer warns about file names and weight groups on stderr
        torch.export.save(program, str(out))
    names = ", ".join(dict.fromkeys(d.__name__ for spec in shapes for d in spec.values()))
    print(f"wrote {out}: torch.export program, dynamic axes {names}; load with torch.export.load({str(out)!r})"
          ".module()", file=sys.stderr)
    def load_back():
        with _quiet():
            return torch.export.load(str(out)).module()

    _verify(wrapped, graph, load_back, "torch.export")


def _python(trained, out: Path) -> None:
    """Readable source of the (optimised) model, its weights beside it, the preprocessing as constants."""
    from netc.backend.emit import emit_source
    from netc.runner.checkpoint import atomic_write, weights_bytes

    graph = trained.module.netc_graph
    weights = out.with_suffix(".safetensors")
    stats = trained.stats or {}
    norms = [None if n["method"] == "none" else (n["shift"], n["scale"]) for n in stats.get("inputs", [])]
    target = ((stats["target_shift"], stats["target_scale"]) if stats.get("task") == "regression" else None)
    source = emit_source([(graph, "Model")], "") + f'''

# ---- netc export of {trained.run_dir}: trained weights in {weights.name}, the run's preprocessing below

INPUTS = {[n for n, _, _ in trained.inputs]!r}
# per input: (shift, scale) of the training split, applied as (x - shift) / scale; None: passed as is
NORMALISE = {norms!r}
# regression: (shift, scale) mapping outputs back to the data's units, out * scale + shift; None otherwise
TARGET = {target!r}
CLASS_NAMES = {stats.get("class_names")!r}


def load(path: str | None = None) -> Model:
    """The trained model, in eval mode (weights from {weights.name} next to this file by default)."""
    import os

    from safetensors.torch import load_file

    model = Model()
    model.load_state_dict(load_file(path or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         {weights.name!r})))
    return model.eval()


def predict(model: Model, *xs: torch.Tensor) -> torch.Tensor:
    """Outputs for raw inputs, normalised as in training (regression outputs in the data's units)."""
    xs = tuple((x - torch.tensor(n[0])) / torch.tensor(n[1]) if n is not None and x.is_floating_point() else x
               for x, n in zip(xs, NORMALISE or [None] * len(xs)))
    with torch.no_grad():
        out = model(*xs)
    if TARGET is not None:
        out = (out.reshape(len(out), -1) * torch.tensor(TARGET[1]).reshape(-1)
               + torch.tensor(TARGET[0]).reshape(-1)).reshape(out.shape)
    return out
'''
    atomic_write(out, source)
    atomic_write(weights, weights_bytes(trained.module))
    print(f"wrote {out} (source of the trained model, {graph.params:,} parameters) and {weights}; use: "
          f"from {out.stem} import load, predict", file=sys.stderr)
