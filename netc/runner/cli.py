"""``netc train``, ``netc eval`` and ``netc predict``: from a spec (or a run directory) to the runner.

``netc.cli`` parses the command line and calls ``run_train`` / ``run_eval`` /
``run_predict`` here. A run directory is self-contained: it keeps a copy of the
spec (``spec.yaml``), the resolved train config and the preprocessing
statistics (``config.json``), so ``eval`` and ``predict`` need only the run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netc.compiler.train.config import train_config, train_spans
from netc.diagnostics import EXIT_OK, DataError, UsageError

if TYPE_CHECKING:
    from netc.compiler.frontend import Checked


def passive_omp_wait() -> None:
    """Let torch's OpenMP threads sleep, not spin, while waiting for each other (unless the user chose).

    GNU OpenMP's default (active) waiting keeps a thread that finished its share spinning on its
    core; on a machine with more runnable processes than cores, that core is denied to the thread
    being waited for, so every parallel region waits out scheduler time slices. Measured on 2 shared
    cores (load ~8): a digits CNN epoch took 1.3-44 s with 2 threads, 0.3-0.4 s with
    OMP_WAIT_POLICY=PASSIVE, which costs a futex wake-up per region. libgomp reads the variable
    when torch is first imported, so this runs before any torch import of train/eval/predict.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ---------------------------------------------------------------- spec -> model, inputs, config

def inputs_of(graph) -> list[tuple[str, tuple[Any, ...], str]]:
    """The declared inputs of a graph as (name, per-sample shape, dtype)."""
    return [(i.name, tuple(i.type.shape[1:]), i.type.dtype) for i in graph.inputs]


def _checked(file: str, params: list[str] | None, args: argparse.Namespace | None = None) -> Checked:
    """The front end on a spec file with ``--param`` items: program and train config.

    With ``args`` (``netc train``'s), the resource check estimates training memory at the batch size
    the run will use (its ``--set`` items applied) against ``--max-memory``/``--max-params``/``--max-nodes``.
    """
    from netc.compiler.check import front_end_file, parse_param_overrides
    from netc.compiler.resources import Limits

    overrides = parse_param_overrides(params) if params else None
    if args is None:
        return front_end_file(file, params=overrides)
    return front_end_file(file, params=overrides, limits=Limits.of_options(args), training=True,
                          sets=getattr(args, "sets", None))


def _program(file: str, params: list[str] | None):
    return _checked(file, params).program


def _build(program, model_name: str | None = None):
    from netc.backend.build import build_model

    return build_model(program, model_name, train=True)


def _supervised_graph(program):
    from netc.compiler.select import select_model

    return select_model(program, one="netc trains one supervised model, or a GAN whose models are named "
                                     "generator and discriminator",
                        hint="name the two models generator and discriminator, or train each from its own spec")


# ---------------------------------------------------------------- train

def _write_run_files(args: argparse.Namespace, program, graph, run_dir: Path) -> None:
    """The spec and run.json, written once training has started (a failed --resume keeps the run intact)."""
    from netc.compiler.train.config import source_with_absolute_paths
    from netc.runner import distributed
    from netc.runner.checkpoint import atomic_write
    from netc.runner.rundir import RunDir

    rd, job = RunDir(run_dir), distributed.job_id()
    atomic_write(rd.spec, source_with_absolute_paths(program.source, program.file))  # readable from the run alone
    atomic_write(rd.run_json, json.dumps({"spec": str(args.file), "model": graph.name,
                                          "params": list(getattr(args, "params", None) or []),
                                          **({"job": job} if job is not None else {})}, indent=2))


def _prepare_run_dir(args: argparse.Namespace, run_dir: Path) -> str | None:
    """Check the run directory (rank 0's job under DDP); the run to resume, if any."""
    import shutil

    from netc.runner import distributed
    from netc.runner.rundir import RunDir

    rd, job = RunDir(run_dir), distributed.job_id()
    if distributed.restart_count() and job is not None and rd.read("run_json").get("job") == job:
        # torchrun restarted this job's workers after a failure: continue from the job's own last checkpoint
        return str(run_dir) if rd.has_last() else args.resume
    if args.resume:
        if not Path(args.resume).is_dir() or not RunDir(Path(args.resume)).has_last():
            raise UsageError(f"--resume {args.resume}: no last/ checkpoint there",
                             hint="pass the run directory printed by netc train (it contains last/)")
    elif not rd.is_empty() and not args.force:
        raise UsageError(f"run directory {run_dir} already exists",
                         hint=f"continue it with --resume {run_dir}, overwrite with --force, or pick --out DIR")
    elif job is not None:  # --force under torchrun: a restart must not pick up the replaced run's checkpoint
        for old in (rd.last, rd.last_old):
            shutil.rmtree(old, ignore_errors=True)
    return args.resume


def numbered_run_dir(base: Path, force: bool = False) -> Path:
    """``runs/NAME`` when it is free (or forced), else the first free ``runs/NAME-2``, ``runs/NAME-3``, ...

    Under a torchrun restart the job's own directory is the one it continues.
    """
    from netc.runner import distributed
    from netc.runner.rundir import RunDir

    if force:
        return base
    job = distributed.job_id() if distributed.restart_count() else None
    for k in range(1, 100_000):
        cand = base if k == 1 else base.with_name(f"{base.name}-{k}")
        rd = RunDir(cand)
        if rd.is_empty() or (job is not None and rd.read("run_json").get("job") == job):
            return cand
    raise UsageError(f"no free run directory next to {base}", hint="pick --out DIR, or remove old runs")


def run_train(args: argparse.Namespace) -> int:
    """``netc train FILE [--set k=v] [--out DIR] [--resume DIR] [--device D] [--force] [--nproc-per-node N ...]``."""
    passive_omp_wait()  # before torch is imported
    from netc.runner import distributed
    from netc.runner.loop import resolve_device

    launcher = [f"--{f.replace('_', '-')}" for f in distributed.LAUNCH_FLAGS if getattr(args, f, None) is not None]
    if getattr(args, "nproc_per_node", None) is not None:  # the launcher: torchrun's agent runs N copies of this
        return distributed.launch(args)
    if launcher:
        raise UsageError(f"{', '.join(launcher)} only apply with --nproc-per-node",
                         hint="add --nproc-per-node N (processes per machine), e.g. --nproc-per-node 8")
    # 1. check the spec and read its train: block (+ --set, --device)
    checked = _checked(args.file, getattr(args, "params", None), args)
    program = checked.program
    from netc.runner.gan import is_gan

    gan = is_gan(program.graphs)
    graph = program.graphs["discriminator"] if gan else _supervised_graph(program)
    cfg = checked.train_config(args.sets, args.device)
    dist = distributed.init(resolve_device(cfg.device))  # one process, or a torchrun worker joining its group
    # 2. the run directory, locked by rank 0 for this run alone: fresh, forced, the one being resumed, or
    #    (after a torchrun restart) the job's own
    given = args.out or args.resume
    run_dir = Path(given) if given else dist.from_main(lambda: numbered_run_dir(Path("runs") / program.name,
                                                                                 bool(args.force)))
    from netc.runner.rundir import RunDir

    with contextlib.ExitStack() as held:

        def lock() -> None:  # one writer per run directory; a second one is refused here, on every rank
            held.enter_context(RunDir(run_dir).lock())

        dist.from_main(lock)
        resume = dist.from_main(lambda: _prepare_run_dir(args, run_dir))
        try:
            code = _train(program, graph, cfg, dist, run_dir, resume,
                          lambda: _write_run_files(args, program, graph, run_dir))
        except DataError as e:
            raise located_in_spec(e, program) from None
    if dist.main:
        print(_next_steps(str(args.file), run_dir, cfg.epochs, is_gan(program.graphs), _text_kind(cfg)),
              file=sys.stderr)
    return code


def located_in_spec(e: DataError, program: Any) -> DataError:
    """A data error found while training, located at the spec's ``train.data`` (the data it is about)."""
    if any(d.span is not None for d in e.diagnostics):
        return e
    spans = train_spans(program.source, program.file)
    span = spans.get("train.data") or spans.get("train")
    if span is None:
        return e
    e.diagnostics = [dataclasses.replace(e.diagnostics[0], span=span), *e.diagnostics[1:]]
    e.source = program.source
    return e


def _text_kind(cfg) -> str | None:
    """'language', 'seq2seq' or 'classification' for a run on a text source, else None."""
    from netc.runner.textfit import text_source

    return (cfg.text_task or "classification") if text_source(cfg) else None


def _next_steps(spec: str, run_dir: Path, epochs: int, gan: bool, text: str | None = None) -> str:
    """What a user does with a finished run, as commands with its real paths."""
    import shlex

    run, spec = shlex.quote(str(run_dir)), shlex.quote(spec)
    new = {"language": (f"netc predict {run} --prompt 'The ' -n 200", "generate text after a prompt"),
           "seq2seq": (f"netc predict {run} --prompt TEXT --beam 3", "decode a source text (or a .txt of them)"),
           "classification": (f"netc predict {run} TEXTS.txt -o predictions.jsonl", "classify texts (one per line)"),
           None: (f"netc predict {run} SAMPLES.npy -o predictions.csv",
                  "predictions for new data (.npy, .npz, .csv, .jsonl, .parquet)")}
    steps = ([(f"netc predict {run} -n 16 -o samples.png", "samples from the generator")] if gan else
             [(f"netc eval {run}", "metrics on the test split" if text in ("language", "seq2seq") else
               "metrics and per-class report on the test split"), new[text]])
    steps.append((f"netc train {spec} --resume {run} --set train.epochs={2 * epochs}", "train longer"))
    width = max(len(c) for c, _ in steps)
    return "next:\n" + "\n".join(f"  {c:<{width}}  # {why}" for c, why in steps)


def _train(program, graph, cfg, dist, run_dir: Path, resume, write_run_files) -> int:
    """Step 3 of run_train: build under the run's seed and train (one objective or the other)."""
    from netc.runner import distributed
    from netc.runner.gan import is_gan
    from netc.runner.loop import fit, seed_everything

    gan = is_gan(program.graphs)
    # 3. build the model under the run's seed (same initial weights every time), then train
    seed_everything(cfg.seed)
    if gan:
        from netc.runner.gan import fit_gan

        generator, discriminator = _build(program, "generator"), _build(program, "discriminator")
        with dist.peers_lost():
            fit_gan(generator, discriminator, inputs_of(program.graphs["generator"]), inputs_of(graph), cfg,
                    run_dir, resume=resume, on_start=write_run_files)
        if dist.main:
            print(f"run saved in {run_dir} (samples.png shows the generator's output)", file=sys.stderr)
        distributed.teardown()
        return EXIT_OK
    model = _build(program)
    init_span = train_spans(program.source, program.file).get("train.init_from:key")
    from netc.runner.textfit import fit_text, text_source

    with dist.peers_lost():
        result = fit_text(model, inputs_of(graph), cfg, run_dir, resume, on_start=write_run_files) \
            if text_source(cfg) else fit(model, inputs_of(graph), cfg, run_dir, resume=resume, on_start=write_run_files,
                     init_span=init_span)
    if dist.main:
        print(f"run saved in {run_dir} (best epoch {result.best_epoch}, {result.monitor} {result.best_value:.4g})"
              if result.best_value is not None else f"run saved in {run_dir}", file=sys.stderr)
    distributed.teardown()
    return EXIT_OK


# ---------------------------------------------------------------- eval / predict

def _load_run(target: str, spec: str | None, sets: list[str] | None, device: str | None,
              optimize: bool | str = False):
    """(model with trained weights, graph inputs, train config, preprocess info or None) for a run or checkpoint."""
    from netc.compiler.train.config import TrainConfig
    from netc.runner.checkpoint import load_weights, resolve_dir
    from netc.runner.rundir import RunDir

    path = Path(target)
    if not path.exists():
        from netc.diagnostics import CheckpointError

        raise CheckpointError(f"no such run directory or checkpoint: {target}",
                              hint="pass the directory `netc train` wrote (e.g. runs/digits_cnn) or a "
                                   "checkpoint inside it (runs/digits_cnn/best)")
    rd = RunDir.around(path)
    run_dir = rd.root if rd is not None else None
    spec_file = spec or (str(rd.spec) if rd is not None and rd.spec.exists() else None)
    if spec_file is None:
        raise UsageError(f"{target}: no run directory around this checkpoint, so the model is unknown",
                         hint="pass --spec SPEC.yaml (the spec it was trained with)")
    meta = rd.read("run_json") if rd is not None else {}
    checked = _checked(spec_file, meta.get("params"))
    program = checked.program
    graph = _supervised_graph(program)
    if run_dir is not None and not spec:
        saved = rd.read("config")  # type: ignore[union-attr]
        cfg = TrainConfig.from_dict(saved["train"])
        preprocess = saved.get("preprocess")
        cfg = cfg.apply_overrides(list(sets or []) + ([f"train.device={device}"] if device else []))
    else:
        cfg = checked.train_config(sets, device)
        preprocess = rd.read("config").get("preprocess") if rd is not None else None
    if rd is not None and path == rd.root:
        weights = resolve_dir(rd.best) if rd.best.exists() else resolve_dir(rd.last)
    else:
        weights = path
    model = _build(program)
    load_weights(model, weights)
    if optimize:
        # Inference uses the optimised graph (BatchNorm folded, dropout removed, fused attention,
        # channels-last), built from the trained weights; outputs equal the training graph's.
        from netc.backend.weights import optimize_module

        # Evaluation on the CPU tunes: it keeps whichever of -O2's variants (or the unoptimised
        # module) measures fastest at the run's batch size, the decision cached in the run directory.
        tuned = _tuned(model, cfg, run_dir) if optimize == "tune" and run_dir is not None else None
        model = tuned if tuned is not None else optimize_module(model)
    return model, inputs_of(graph), cfg, preprocess


def _tuned(model, cfg, run_dir: Path):
    """The tuner's choice for the unoptimised ``model`` when evaluation runs on the CPU, else None."""
    import torch

    from netc.backend.tune import tune_module
    from netc.runner.engine import resolve_device

    if resolve_device(cfg.device) != torch.device("cpu"):
        return None
    try:
        return tune_module(model, int(cfg.batch_size), cache_dir=run_dir / "tune")
    except Exception:  # noqa: BLE001  tuning is an optimisation: -O2 stands when it cannot measure
        return None


def _gan_run(target: str) -> Path | None:
    """The run directory if ``target`` is (inside) a GAN run."""
    from netc.runner.rundir import RunDir

    rd = RunDir.around(target)
    return rd.root if rd is not None and rd.read("config").get("objective") == "gan" else None


def run_eval(args: argparse.Namespace) -> int:
    """``netc eval RUN_DIR_OR_CHECKPOINT [--spec S] [--split test] [--set k=v]``: metrics table."""
    passive_omp_wait()  # before torch is imported
    from netc.runner.loop import evaluate

    if _gan_run(args.run) is not None:
        raise UsageError(f"{args.run} is a GAN run; it has no held-out metrics",
                         hint=f"look at {Path(args.run) / 'samples.png'}, or draw samples with netc predict "
                              f"{args.run} -n 16 -o samples.npy")
    from netc.runner.textfit import evaluate_text, text_run

    text = text_run(args.run)
    model, inputs, cfg, _ = _load_run(args.run, args.spec, args.sets, args.device,
                                      optimize=False if text or getattr(args, "no_optimize", False) else "tune")
    result = evaluate_text(model, inputs, cfg, *text, args.split) if text else evaluate(model, inputs, cfg, args.split)
    if getattr(args, "format", "text") == "json":
        from netc.runner.engine import clean

        print(json.dumps(clean(result), indent=2, default=float))
    else:
        print(format_eval(result))
    return EXIT_OK


def format_eval(result: dict[str, Any]) -> str:
    """A plain-text metrics table (and per-class table for classification)."""
    lines = [f"{result['split']} split, {result['samples']} samples"]
    for k, v in result.items():
        if k not in ("split", "samples", "report"):
            lines.append(f"  {k:<12} {v:.4f}")
    rep = result.get("report") or {}
    if rep.get("per_class"):
        lines.append("")
        lines.append(f"  {'class':<12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
        for name, row in rep["per_class"].items():
            lines.append(f"  {name:<12} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f} "
                         f"{row['support']:>8d}")
    return "\n".join(lines)


def read_inputs(path: str, inputs: list[tuple[str, tuple[Any, ...], str]], data: Any = None):
    """Raw model inputs from .npy / .npz / .csv / .jsonl / .parquet, shaped as declared (one array per model input).

    ``data`` (the run's ``train.data``) makes the training file's format welcome: an .npz's ``x_key``
    array, a CSV's feature columns (its label column dropped).
    """
    import numpy as np

    from netc.diagnostics import DataError
    from netc.runner import datafiles
    from netc.runner.data import _fit_shape
    from netc.runner.sources import infer_source, table_features

    p = Path(path)
    if not p.exists():
        raise DataError(f"inputs file not found: {path}",
                        hint="pass a .npy, .npz, .csv, .jsonl or .parquet file of samples")
    datafiles.regular(p, "file of samples")  # a FIFO or device would hang or never end
    if p.suffix == ".npy":
        arrays = {inputs[0][0]: np.load(p, allow_pickle=False)}
    elif p.suffix == ".npz":
        datafiles.check_zip_members(p)
        with np.load(p, allow_pickle=False) as z:
            arrays = {n: z[n] for n, _, _ in inputs if n in z.files}
            x_key = getattr(data, "x_key", None) or "x"
            if len(inputs) == 1 and not arrays and x_key in z.files:
                arrays = {inputs[0][0]: z[x_key]}
    elif infer_source(str(p)) == "csv":  # a table: CSV, JSON Lines or Parquet
        arrays = {inputs[0][0]: table_features(p, data)}
    else:
        raise DataError(f"{path}: unsupported inputs format {p.suffix!r}",
                        hint="use .npy, .npz, .csv, .jsonl or .parquet")
    missing = [n for n, _, _ in inputs if n not in arrays]
    if missing:
        raise DataError(f"{path}: no array for model input(s) {missing}",
                        hint="store one array per input, named after it (or x for a single input)")
    out = []
    for name, shape, dtype in inputs:
        if np.ndim(arrays[name]) == 0 or len(arrays[name]) == 0:
            raise DataError(f"{path}: no samples for input '{name}'", hint="pass a file with at least one sample")
        a = _fit_shape(np.asarray(arrays[name]), tuple(shape), name, str(p))
        out.append(a.astype(np.int64 if dtype == "int64" else np.float32))
    return out


def run_predict(args: argparse.Namespace) -> int:
    """``netc predict RUN INPUTS [-o preds.csv|.npy]``: predictions in data units / class ids."""
    passive_omp_wait()  # before torch is imported
    import numpy as np
    import torch

    from netc.runner.loop import predict

    if args.output:  # before any work: not one of the inputs, not a FIFO nobody reads, its folder exists
        from netc.dsl.files import check_output_path

        check_output_path(args.output, tuple(p for p in (args.inputs, args.spec) if p))
    gan_dir = _gan_run(args.run)
    if gan_dir is not None:
        return _predict_gan(gan_dir, args)
    from netc.runner.textfit import predict_text, text_run

    text = text_run(args.run)
    if text is not None:
        return predict_text(*text, args, _load_run)
    if args.inputs is None:
        raise UsageError("netc predict needs an INPUTS file", hint="e.g. netc predict runs/x samples.npy -o preds.csv")
    model, inputs, cfg, preprocess = _load_run(args.run, args.spec, None, args.device,
                                               optimize="tune" if not getattr(args, "no_optimize", False) else False)
    xs = tuple(torch.from_numpy(a) for a in read_inputs(args.inputs, inputs, cfg.data))
    out = predict(model, xs, batch_size=cfg.eval_batch_size, preprocess=preprocess).cpu()
    task = (preprocess or {}).get("task", "classification")
    if out.dim() > 2:  # per-position outputs (N, T, ...): one CSV row per sample cannot hold them
        return _predict_sequences(out, task, args.output)
    if task == "classification":
        probs = torch.sigmoid(out).reshape(-1, 1) if out.shape[-1:] == (1,) else torch.softmax(out, dim=-1)
        if probs.shape[-1] == 1:
            probs = torch.cat([1 - probs, probs], dim=-1)
        pred = probs.argmax(-1).numpy()
        names = (preprocess or {}).get("class_names")
        header = ["pred"] + [f"p_{(names or [])[i] if names and i < len(names) else i}" for i in range(probs.shape[-1])]
        table = np.concatenate([pred.reshape(len(pred), -1).astype(np.float64),
                                probs.reshape(len(pred), -1).numpy().astype(np.float64)], axis=1)
        array = pred
    else:
        table = out.reshape(len(out), -1).numpy().astype(np.float64)
        header = [f"y{i}" for i in range(table.shape[1])]
        array = out.numpy()
    if args.output and args.output.endswith(".npy"):
        np.save(args.output, array)
    else:
        fmt = ["%d" if task == "classification" and i == 0 else "%.6g" for i in range(table.shape[1])]
        target = args.output or sys.stdout
        np.savetxt(target, table, delimiter=",", header=",".join(header), comments="", fmt=fmt)
    if args.output:
        print(f"wrote {len(table)} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK


def _predict_sequences(out, task: str, output: str | None) -> int:
    """Sequence outputs as .npy (class ids (N, T) or values) or JSON Lines (one sample per line), never CSV."""
    import numpy as np

    from netc.runner.textfit import _emit

    array = out.argmax(-1).numpy() if task == "classification" else out.numpy()
    if output and output.endswith(".npy"):
        np.save(output, array)
        print(f"wrote {len(array)} predictions to {output}", file=sys.stderr)
    elif output and not output.endswith((".jsonl", ".json")):
        raise UsageError(f"-o {output}: this model predicts a sequence per sample {tuple(out.shape[1:])}, which a "
                         "CSV row cannot hold", hint="write -o preds.jsonl (one JSON line per sample) or -o preds.npy")
    else:
        _emit([{"pred": row.tolist()} for row in array], output)
    return EXIT_OK


def _predict_gan(run_dir: Path, args: argparse.Namespace) -> int:
    """Samples from a GAN run's generator: .npy (data units) or a .png grid."""
    import numpy as np

    from netc.runner.checkpoint import load_weights, resolve_dir
    from netc.runner.gan import generate
    from netc.runner.rundir import RunDir

    if not args.output:
        raise UsageError("a GAN run writes samples to a file", hint="e.g. -o samples.npy or -o samples.png")
    rd = RunDir(run_dir)
    program = _program(args.spec or str(rd.spec), rd.read("run_json").get("params"))
    import torch

    pair = torch.nn.ModuleDict({"generator": _build(program, "generator"),
                                "discriminator": _build(program, "discriminator")})
    load_weights(pair, resolve_dir(rd.last))
    saved = rd.read("config")
    samples = generate(pair["generator"], tuple(saved["latent"][0]), args.num_samples or 16,
                       preprocess=saved.get("preprocess")).cpu()
    if args.output.endswith(".png"):
        from netc.runner.plots import sample_grid

        sample_grid(samples, Path(args.output))
    else:
        np.save(args.output, samples.numpy())
    print(f"wrote {len(samples)} samples to {args.output}", file=sys.stderr)
    return EXIT_OK


__all__ = ["format_eval", "inputs_of", "passive_omp_wait", "read_inputs", "run_eval", "run_predict", "run_train",
           "train_config", "train_spans"]
