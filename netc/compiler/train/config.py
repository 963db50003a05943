"""The ``train:`` block as a typed config: defaults, validation, ``--set`` overrides, JSON Schema.

Every field is declared once, with its default and a one-line meaning
(``opt(default, "meaning")``); that line is also the field's ``description`` in
the JSON Schema the front end embeds in the spec schema. Names of losses,
optimizers, schedules, metrics and data sources come from their own tables.

No torch or numpy import here: ``netc check`` and the language server validate
the block at editor speed, through the one front end (``netc.compiler.frontend``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from netc.compiler.train.initializers import NAMES as INIT_NAMES
from netc.compiler.train.metrics import DEFAULT_METRICS, METRICS, mode_of
from netc.compiler.train.objectives import LOSSES, OPTIMIZERS, SCHEDULES
from netc.compiler.train.registry import (
    PLUGIN_NAME,
    Table,
    call_schema,
    one_of,
    resolve,
)
from netc.compiler.train.sources import SOURCES, TOKENIZERS, infer_source
from netc.diagnostics import Span, SpecError, UsageError, did_you_mean
from netc.dsl.scalars import typed_scalar

_MISSING = dataclasses.MISSING


def opt(default: Any = _MISSING, doc: str = "", *, factory: Any = None, choices: Any = None,
        minimum: float | None = None, maximum: float | None = None, below: float | None = None,
        table: str | None = None) -> Any:
    """A config field: its default, what the default means, and its allowed values."""
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum, "below": below,
            "table": table}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


DEFAULT_MAX_BYTES = 2 * 1024**3  # train.data.max_bytes: the in-memory path reads at most this much
DEFAULT_MAX_PIXELS = 50_000_000  # train.data.max_pixels: per image
DEFAULT_STREAM_ABOVE = 1024**3  # train.data.stream_above: decoded data beyond 1 GiB are streamed by default


@dataclass
class DataConfig:
    """``train.data``: where samples come from. ``data: digits`` is shorthand for ``{source: digits}``."""

    source: str | None = opt(None, "data source; default: inferred from `path` (.npz, .csv, IDX files, "
                                   "CIFAR-10 batches, class folders), or digits when there is no path",
                             choices=tuple(SOURCES))
    path: str | None = opt(None, "file or directory for idx, cifar10, npz, npy, csv, folder and tar sources")
    label: str | None = opt(None, "csv: name of the label/target column (default: the last column)")
    labels: list[str] | None = opt(None, "csv: several target columns read together instead of one label, e.g. "
                                         "the one-hot columns of a class (Keras' to_categorical) or several "
                                         "regression targets")
    features: list[str] | None = opt(None, "csv: feature columns, in order (default: every other column)")
    x_key: str = opt("x", "npz, npy: array of inputs (for several model inputs, arrays named after the inputs); "
                          "npy reads <x_key>.npy in the path's directory")
    y_key: str = opt("y", "npz, npy: array of targets")
    window: int | None = opt(None, "series: time steps per input window (default: from the declared input "
                                   "shape)", minimum=1)
    horizon: int = opt(1, "series: how many future values each window predicts", minimum=1)
    limit: int | None = opt(None, "use only the first N samples (quick experiments)", minimum=1)
    classes: list[int] | None = opt(None, "keep only the samples of these class ids, relabelled 0, 1, ... in this "
                                          "order (e.g. [5, 6, 7, 8, 9]: a 5-class task on digits 5-9)")
    tokenizer: str = opt("char", "text sources: char (one token per character), bpe (byte-level BPE) or "
                                 "word (whitespace/punctuation words); trained on the training split only and "
                                 "saved in the run directory", choices=TOKENIZERS)
    vocab_size: int = opt(1000, "text sources, bpe and word: largest vocabulary, special tokens included (char: "
                                "every character of the training split)", minimum=8)
    lowercase: bool = opt(False, "text sources: lowercase the text before tokenizing (the tokenizer saved with the "
                                 "run does it too, at predict time)")
    block: int | None = opt(None, "language modelling: tokens per training block (default: the declared input "
                                  "length)", minimum=1)
    text: str = opt("text", "text_labels and pairs: the column holding the text (pairs: the source text)")
    target: str = opt("target", "pairs: the column holding the target text")
    max_bytes: int = opt(DEFAULT_MAX_BYTES, "largest amount of data read into memory, in bytes after "
                                            "decompression (.gz files, .npz members); larger data are refused",
                         minimum=1)
    max_pixels: int = opt(DEFAULT_MAX_PIXELS, "folder: largest image, in pixels (a guard against decompression "
                                              "bombs); larger images are refused before they are decoded",
                          minimum=1)
    stream: bool | None = opt(None, "read samples on demand in DataLoader workers instead of holding the data set "
                                    "in memory (folder, npy, tar, csv); null: stream when the decoded data (csv: the "
                                    "file) would exceed stream_above bytes")
    stream_above: int = opt(DEFAULT_STREAM_ABOVE, "with stream: null, the decoded size in bytes (float32 samples) "
                                                  "above which the data are streamed rather than held in memory",
                            minimum=0)
    workers: int | None = opt(None, "streamed data: DataLoader worker processes that read and decode samples "
                                    "(0: in the training process); default: the CPU cores per process minus one, "
                                    "at least 1, at most 8", minimum=0)

    @classmethod
    def shorthand(cls, value: Any) -> DataConfig | None:
        """``data: digits`` names a source; ``data: path/to/file.npz`` names a path."""
        if not isinstance(value, str):
            return None
        if value in SOURCES:
            return cls(source=value)
        return cls(source=None, path=value)


@dataclass
class SplitConfig:
    """``train.split``: fractions held out for validation and test, and the shuffle seed."""

    val: float = opt(0.1, "fraction of the samples held out for validation (of the training set when the "
                          "source ships its own test set; 0: no validation)",
                     minimum=0.0, below=1.0)
    test: float = opt(0.2, "fraction held out for the final test (ignored when the source ships a test "
                           "set, e.g. MNIST, CIFAR-10)", minimum=0.0, below=1.0)
    seed: int = opt(0, "seed of the shuffle that assigns samples to splits (series split by time instead)")
    train_per_class: int | None = opt(None, "keep at most this many samples of each class in the training split "
                                            "(validation and test stay whole): learning from few labels",
                                      minimum=1)


@dataclass
class AugmentConfig:
    """``train.augment``: random changes applied to training batches only."""

    crop: int = opt(0, "pad images by this many pixels and crop back at a random offset (0: off)", minimum=0)
    flip: bool = opt(False, "flip images horizontally with probability 1/2")
    noise: float = opt(0.0, "add Gaussian noise with this standard deviation to float inputs (0: off)",
                       minimum=0.0)
    rotation: float = opt(0.0, "rotate images by a random angle in [-rotation, rotation] degrees about their "
                               "centre, filling with zeros (0: off)", minimum=0.0, maximum=180.0)


@dataclass
class EarlyStoppingConfig:
    """``train.early_stopping``: stop when a logged metric stops improving (``true`` = defaults)."""

    monitor: str = opt("val.loss", "the logged value to watch: train.loss, val.loss, or split.metric "
                                   "such as val.accuracy")
    patience: int = opt(3, "epochs without improvement before stopping", minimum=1)
    mode: str = opt("auto", "min or max; auto: min for loss/mse/mae/rmse, max otherwise",
                    choices=("auto", "min", "max"))
    min_delta: float = opt(0.0, "smallest change that counts as an improvement", minimum=0.0)

    @classmethod
    def shorthand(cls, value: Any) -> EarlyStoppingConfig | None:
        return cls() if value is True else None


@dataclass
class InitFromConfig:
    """``train.init_from``: start from another run's weights. ``init_from: runs/x`` is ``{path: runs/x}``."""

    path: str | None = opt(None, "a run directory, a checkpoint directory in one (runs/x/last) or a .safetensors "
                                 "file; relative to the spec file")
    checkpoint: str = opt("best", "which checkpoint of a run directory: best or last", choices=("best", "last"))
    new: list[str] | None = opt(None, "node names or glob patterns (head*) that start from fresh weights, such as "
                                      "a new head: never loaded, and not needed in the source")
    allow_missing: bool = opt(False, "true: any other node without a weight of the same name and shape in the "
                                     "source starts fresh too (listed); false: such nodes are an error listing them. "
                                     "Source weights no node uses are listed and left out either way")

    @classmethod
    def shorthand(cls, value: Any) -> InitFromConfig | None:
        return cls(path=value) if isinstance(value, str) else None


@dataclass
class TrainConfig:
    """The ``train:`` block of a spec: data, objective, optimisation and run settings."""

    data: DataConfig = opt(doc="where samples come from (name of an embedded data set, a path, or a mapping)",
                           factory=DataConfig)
    split: SplitConfig = opt(doc="validation/test fractions and the split seed", factory=SplitConfig)
    normalize: str | None = opt(None, "standard (zero mean, unit variance), minmax ([0, 1]), symmetric "
                                      "([-1, 1]) or none; statistics from the training split only; default: "
                                      "the source's (minmax for images, standard otherwise; symmetric for GANs)",
                                choices=("standard", "minmax", "symmetric", "none"))
    augment: AugmentConfig = opt(doc="training-time augmentation", factory=AugmentConfig)
    loss: str | None = opt(None, "loss call, e.g. cross_entropy(label_smoothing=0.1); default: "
                                 "cross_entropy for labelled data, mse for regression and series",
                           table="loss")
    optimizer: str = opt("adam(lr=1e-3)", "optimizer call, e.g. sgd(lr=0.1, momentum=0.9)", table="optimizer")
    schedule: str | None = opt(None, "learning-rate schedule call, e.g. cosine(warmup=1); default: constant",
                               table="schedule")
    epochs: int = opt(10, "passes over the training split", minimum=1)
    batch_size: int = opt(64, "samples per optimizer step (under DDP: the global batch, shared by all "
                              "processes)", minimum=1)
    accumulate: int = opt(1, "split each step's batch into this many micro-batches whose gradients add up "
                             "(same steps, less activation memory; under DDP one all-reduce per step)",
                          minimum=1)
    eval_batch_size: int = opt(1024, "samples per forward pass when evaluating", minimum=1)
    metrics: list[str] | None = opt(None, "metrics logged for every split; default: accuracy, f1 for "
                                          "classification and rmse, mae for regression", table="metric")
    early_stopping: EarlyStoppingConfig | None = opt(None, "stop when a logged value stops improving; "
                                                           "default: train all epochs")
    clip_grad_norm: float | None = opt(None, "clip the global gradient norm to this value; default: no "
                                             "clipping", minimum=0.0)
    seed: int = opt(0, "seed for weight init (CLI), shuffling, dropout and augmentation")
    init: str | None = opt(None, "weight initialiser of every layer with weights (Dense, Conv, Embedding, "
                                 "RNN/LSTM/GRU, attention) that names none with init=, e.g. he; default: "
                                 "torch's",
                           choices=INIT_NAMES)
    device: str = opt("auto", "auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda"))
    precision: str = opt("fp32", "fp32, bf16 or fp16 autocast; mixed precision runs on CUDA only (CPU "
                                 "falls back to fp32)", choices=("fp32", "bf16", "fp16"))
    compile: bool = opt(False, "wrap the model in torch.compile (slower start, maybe faster epochs)")
    sync_batchnorm: bool = opt(False, "under DDP on CUDA, BatchNorm normalises with the statistics of the "
                                      "whole global batch (SyncBatchNorm); no effect in one process")
    checkpoint_every: int = opt(0, "save the resumable last/ checkpoint (and best/) every N epochs; 0: "
                                   "automatically, at most every 10 s; always at the end", minimum=0)
    tensorboard: bool = opt(False, "also log scalars for TensorBoard (when it is installed)")
    plots: bool = opt(True, "write loss/metric curves and a confusion matrix as PNG in the run directory")
    init_from: InitFromConfig | None = opt(None, "transfer learning: initialise the model from another run's "
                                                 "weights, matched by node name and shape; default: fresh weights")
    freeze: list[str] | None = opt(None, "node names or glob patterns (conv*) whose weights do not train; their "
                                         "BatchNorm statistics stay fixed too (those nodes run in eval mode)")
    lr_mult: dict[str, float] | None = opt(None, "learning-rate multiplier per node name or glob pattern, e.g. "
                                                 "{'conv*': 0.1}; the first matching pattern wins, other nodes 1",
                                           minimum=0.0)

    # ------------------------------------------------------------ building

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, spans: Mapping[str, Span] | None = None,
                  prefix: str = "train", base: str | None = None) -> TrainConfig:
        """Build and validate from the spec's ``train:`` mapping; ``spans`` maps 'train.epochs' to a Span.

        ``base`` is the spec file's folder: relative data and ``init_from`` paths are resolved from it
        (like imports) and recorded absolute, so a run does not depend on the working directory.
        """
        cfg = _build(cls, {} if d is None else d, prefix, spans or {})
        if base is not None:
            cfg.data.path = _from(base, cfg.data.path)
            if cfg.init_from is not None:
                cfg.init_from.path = _from(base, cfg.init_from.path)
        cfg._check(prefix, spans or {})
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML-ready) that ``from_dict`` turns back into an equal config."""
        return dataclasses.asdict(self)

    def apply_overrides(self, sets: list[str]) -> TrainConfig:
        """A new config with ``--set train.key=value`` overrides applied; unknown keys and wrong types refused."""
        d = self.to_dict()
        for item in sets:
            path, value = _parse_override(item)
            target, key, hint = _walk(d, path, item)
            target[key] = _typed_override(value, hint, item, path)
        try:
            import os

            return TrainConfig.from_dict(d, base=os.getcwd())  # a path on the command line starts here
        except SpecError as e:
            msg = e.diagnostics[0].message
            raise UsageError(f"--set {' '.join(sets)}: {msg}", hint=e.hint) from None

    # ------------------------------------------------------------ cross-field checks

    @property
    def task(self) -> str | None:
        """'classification' or 'regression' when the loss or the source decides it, else None."""
        if self.loss is not None:
            return _task_of_loss(resolve(self.loss, LOSSES, "loss", where="train.loss").name)
        source = self.data.source or (infer_source(self.data.path) if self.data.path else "digits")
        task = SOURCES[source].task if source in SOURCES else None
        return task if task in ("classification", "regression") else None

    @property
    def text_task(self) -> str | None:
        """'language' or 'seq2seq' when the data source makes this run one of those objectives, else None."""
        source = self.data.source or (infer_source(self.data.path) if self.data.path else "digits")
        task = SOURCES[source].task if source in SOURCES else None
        return task if task in ("language", "seq2seq") else None

    def metric_names(self, task: str | None = None) -> list[str]:
        """The metrics to log: the configured list, or the default for the task."""
        task = task or self.task or "classification"
        return list(self.metrics) if self.metrics is not None else list(DEFAULT_METRICS[task])

    def monitor_mode(self) -> str:
        """'min' or 'max' for the early-stopping/best-checkpoint monitor."""
        es = self.early_stopping or EarlyStoppingConfig()
        if es.mode != "auto":
            return es.mode
        return mode_of(es.monitor.split(".", 1)[1])

    def _check(self, prefix: str, spans: Mapping[str, Span]) -> None:
        def fail(key: str, msg: str, hint: str | None = None):
            raise SpecError(f"{prefix}.{key}: {msg}", _span(spans, f"{prefix}.{key}"), hint, kind="schema")

        if self.split.val + self.split.test >= 1.0:
            fail("split", f"val + test must leave training data, got {self.split.val} + {self.split.test}",
                 "e.g. split: {val: 0.1, test: 0.2}")
        source = self.data.source
        if source is not None and SOURCES[source].needs_path and not self.data.path:
            fail("data.path", f"source '{source}' reads files and needs a path",
                 f"e.g. data: {{source: {source}, path: {SOURCES[source].example}}}")
        if source is not None and not SOURCES[source].needs_path and self.data.path:
            fail("data.path", f"source '{source}' is embedded and takes no path",
                 f"remove path, or set source to one of {one_of(k for k, s in SOURCES.items() if s.needs_path)}")
        named = source or (infer_source(self.data.path) if self.data.path else "digits")
        if self.data.stream and named in SOURCES and not SOURCES[named].streams:
            fail("data.stream", f"the {named} source is read into memory, it cannot stream",
                 f"sources that stream: {one_of(k for k, s in SOURCES.items() if s.streams)}; or remove stream")
        if self.data.label is not None and self.data.labels is not None:
            fail("data.labels", "give label (one target column) or labels (several), not both",
                 "remove one of them")
        if self.data.window is not None and source is not None and SOURCES[source].task != "regression":
            fail("data.window", f"window only applies to time series, not '{source}'",
                 f"series sources: {one_of(k for k, s in SOURCES.items() if s.series)}")
        text_task = self.text_task
        if text_task is not None and self.loss is not None and _task_of_loss(
                resolve(self.loss, LOSSES, "loss", where="train.loss").name) != "classification":
            fail("loss", f"a {text_task} source trains on next-token cross-entropy, not {self.loss}",
                 "remove train.loss, or write loss: cross_entropy(label_smoothing=0.1)")
        task = text_task or self.task
        for i, name in enumerate(self.metrics or []):
            if task is not None and METRICS[name].task != task:
                fail(f"metrics[{i}]", f"'{name}' is a {METRICS[name].task} metric but this run is {task}",
                     f"{task} metrics: {one_of(k for k, m in METRICS.items() if m.task == task)}")
        if self.early_stopping is not None:
            check_monitor(self.early_stopping.monitor, self.metric_names(task), self.split.val > 0,
                          f"{prefix}.early_stopping.monitor",
                          _span(spans, f"{prefix}.early_stopping.monitor"))
        if self.init_from is not None and not self.init_from.path:
            fail("init_from", "init_from needs a path", "e.g. init_from: runs/digits_pretrain (a run directory or "
                                                        "a .safetensors file)")
        if self.schedule is not None:  # a plateau schedule's monitor must be a logged value, like early stopping's
            sched = resolve(self.schedule, SCHEDULES, "schedule", where=f"{prefix}.schedule")
            if sched.kwargs.get("mode", "auto") not in ("auto", "min", "max"):
                fail("schedule", f"{sched.name}(mode=...) must be auto, min or max, got {sched.kwargs['mode']!r}",
                     f"e.g. {sched.name}(monitor=val.accuracy, mode=max)")
            if sched.kwargs.get("monitor") is not None:
                check_monitor(sched.kwargs["monitor"], self.metric_names(task), self.split.val > 0,
                              f"{prefix}.schedule: {sched.name}(monitor=...)", _span(spans, f"{prefix}.schedule"))
        if self.precision != "fp32" and self.device == "cpu":
            pass  # allowed: falls back to fp32 with a note at run time


def _from(base: str, path: str | None) -> str | None:
    """``path`` resolved from the spec's folder ``base`` (``~`` expanded; absolute paths unchanged)."""
    import os

    if not path:
        return path
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def check_monitor(monitor: str, metric_names: list[str], has_val: bool, where: str,
                  span: Span | None = None) -> None:
    """Refuse a monitor that names no logged value (e.g. val.acc, or val.* without a validation split)."""
    split, _, name = monitor.partition(".")
    logged = [f"{s}.{m}" for s in (("train", "val") if has_val else ("train",)) for m in ["loss", *metric_names]]
    if monitor in logged:
        return
    hint = did_you_mean(monitor, logged)
    if split == "val" and not has_val and name in ["loss", *metric_names]:
        raise SpecError(f"{where}: '{monitor}' needs a validation split, but split.val is 0", span,
                        "set split.val (e.g. 0.1) or monitor a train.* value", kind="schema")
    raise SpecError(f"{where}: '{monitor}' is not a logged value", span,
                    f"{hint + ' ' if hint else ''}logged: {', '.join(logged)}", kind="schema")


# ---------------------------------------------------------------- from a checked spec

def train_spans(source: str, file: str, root: Any = None) -> dict[str, Span]:
    """Spans of every key under ``train:`` ('train.split.val' -> value, 'train.split.val:key' -> key).

    ``root`` is the already-loaded YAML tree when the caller has it (the front end does).
    """
    from netc.dsl.yamlload import YMap, YSeq, load_yaml

    spans: dict[str, Span] = {}
    if root is None:
        try:
            root = load_yaml(source, file)
        except SpecError:  # the front end has already reported YAML problems
            return spans

    def walk(node: Any, path: str) -> None:
        if isinstance(node, YMap):
            for k, v in node.items:
                p = f"{path}.{k.value}"
                spans[p] = k.span if isinstance(v, YMap) else v.span
                spans[p + ":key"] = k.span
                walk(v, p)
        elif isinstance(node, YSeq):
            for i, v in enumerate(node.items):
                spans[f"{path}[{i}]"] = v.span

    if isinstance(root, YMap) and root.get("train") is not None:
        spans["train"] = root.key_node("train").span  # type: ignore[union-attr]
        walk(root.get("train"), "train")
    return spans


def train_config(program: Any, sets: list[str] | None = None, device: str | None = None,
                 root: Any = None) -> TrainConfig:
    """A checked program's ``train:`` block as a TrainConfig (errors point into the spec), with --set/--device."""
    try:
        cfg = TrainConfig.from_dict(program.train or {}, spans=train_spans(program.source, program.file, root),
                                    base=spec_folder(program.file))
    except SpecError as e:
        e.source = program.source  # render the spec line under the message
        raise
    return with_overrides(cfg, sets, device)


def spec_folder(file: str | None) -> str | None:
    """The absolute folder of a spec file (what its relative paths start from); None for text without a file."""
    import os

    if not file or file.startswith("<") or not os.path.isfile(file):
        return None
    return os.path.dirname(os.path.abspath(file))


def source_with_absolute_paths(source: str, file: str) -> str:
    """The spec's text with its relative paths (imports, train.data, train.init_from) made absolute, comments kept.

    What a run directory keeps as its spec: read back from there, it still finds its imports and data.
    """
    import json
    import os

    from netc.dsl.yamlload import YMap, YScalar, load_yaml

    base = spec_folder(file)
    try:
        root = load_yaml(source, file) if base is not None else None
    except SpecError:
        return source
    if not isinstance(root, YMap):
        return source
    nodes = [v for _, v in root.get("imports").items] if isinstance(root.get("imports"), YMap) else []
    train = root.get("train")
    for key in ("data", "init_from") if isinstance(train, YMap) else ():
        v = train.get(key)  # type: ignore[union-attr]
        if isinstance(v, YScalar) and not (key == "data" and v.value in SOURCES):
            nodes.append(v)
        elif isinstance(v, YMap) and isinstance(v.get("path"), YScalar):
            nodes.append(v.get("path"))
    lines = source.splitlines(keepends=True)
    for n in sorted(nodes, key=lambda n: (n.span.line, n.span.col), reverse=True):  # right to left: spans hold
        if not isinstance(n.value, str) or os.path.isabs(os.path.expanduser(n.value)) or n.span.line != n.span.end_line:
            continue
        line = lines[n.span.line - 1]
        lines[n.span.line - 1] = (line[:n.span.col - 1] + json.dumps(_from(base, n.value))  # type: ignore[arg-type]
                                  + line[n.span.end_col - 1:])
    return "".join(lines)


def absolute_paths(train: Any, base: str | None) -> Any:
    """A ``train:`` mapping with its relative data and init_from paths made absolute from ``base`` (a spec's folder).

    For a spec written elsewhere (a tuning trial's spec in its run directory), so its paths still mean
    what they meant next to the original spec.
    """
    if not isinstance(train, Mapping) or base is None:
        return train
    out = dict(train)
    for key in ("data", "init_from"):
        v = out.get(key)
        if isinstance(v, str) and not (key == "data" and v in SOURCES):
            out[key] = _from(base, v)
        elif isinstance(v, Mapping) and isinstance(v.get("path"), str):
            out[key] = {**v, "path": _from(base, v["path"])}
    return out


def with_overrides(cfg: TrainConfig, sets: list[str] | None = None, device: str | None = None) -> TrainConfig:
    """``cfg`` with the command line's ``--set`` items and ``--device`` applied."""
    if sets:
        cfg = cfg.apply_overrides(sets)
    if device:
        cfg = cfg.apply_overrides([f"train.device={device}"])
    return cfg


def _task_of_loss(name: str) -> str:
    return "regression" if LOSSES[name].task == "regression" else "classification"


# ---------------------------------------------------------------- generic dataclass building

_TABLES = {"loss": (LOSSES, "loss"), "optimizer": (OPTIMIZERS, "optimizer"),
           "schedule": (SCHEDULES, "schedule"), "metric": (METRICS, "metric")}


def _span(spans: Mapping[str, Span], path: str) -> Span | None:
    while path:
        if path in spans:
            return spans[path]
        path = path.rsplit(".", 1)[0] if "." in path else ""
    return None


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _describe(hint: Any) -> str:
    inner, nullable = _strip_optional(hint)
    if dataclasses.is_dataclass(inner):
        s = "a mapping"
    elif typing.get_origin(inner) is list:
        s = "a list of integers" if typing.get_args(inner) == (int,) else "a list of strings"
    elif typing.get_origin(inner) is dict:
        s = "a mapping of names to numbers"
    else:
        s = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[inner]
    return s + (" or null" if nullable else "")


def _build(cls, d: Any, path: str, spans: Mapping[str, Span]):
    if not isinstance(d, Mapping):
        raise SpecError(f"{path} must be a mapping, got {type(d).__name__} {d!r}", _span(spans, path),
                        f"e.g. {path}: {{{fields(cls)[0].name}: ...}}", kind="schema")
    known = {f.name: f for f in fields(cls)}
    for key in d:
        if key not in known:
            hint = did_you_mean(str(key), list(known))
            raise SpecError(f"{path}: unknown key '{key}'", _span(spans, f"{path}.{key}"),
                            f"{hint + ' ' if hint else ''}known keys: {', '.join(known)}", kind="schema")
    hints = _hints(cls)
    values = {key: _value(d[key], hints[key], known[key], f"{path}.{key}", spans) for key in d}
    return cls(**values)


def _value(v: Any, hint: Any, f: dataclasses.Field, path: str, spans: Mapping[str, Span]) -> Any:
    inner, nullable = _strip_optional(hint)
    span = _span(spans, path)
    if v is None:
        if nullable:
            return None
        raise SpecError(f"{path} cannot be null", span, f"give {_describe(hint)}", kind="schema")
    if dataclasses.is_dataclass(inner):
        short = getattr(inner, "shorthand", lambda _: None)(v)
        if short is not None:
            return short
        if v is False and nullable:
            return None
        return _build(inner, v, path, spans)
    meta = f.metadata
    if typing.get_origin(inner) is dict:
        return _number_map(v, path, span, meta)
    if typing.get_args(inner) == (int,):
        if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
            raise SpecError(f"{path} must be a list of integers, got {v!r}", span,
                            f"e.g. {path.rsplit('.', 1)[-1]}: [5, 6, 7] ({meta['doc']})", kind="schema")
        return list(v)
    if typing.get_origin(inner) is list:
        if not isinstance(v, list) or not all(isinstance(i, str) for i in v):
            raise SpecError(f"{path} must be a list of names, got {v!r}", span,
                            f"e.g. {path.rsplit('.', 1)[-1]}: [accuracy, f1]", kind="schema")
        if meta["table"] is None:
            return list(v)
        table, what = _TABLES[meta["table"]]
        for i, name in enumerate(v):
            if name not in table:
                hint = did_you_mean(name, list(table))
                raise SpecError(f"{path}[{i}]: unknown {what} '{name}'", _span(spans, f"{path}[{i}]") or span,
                                f"{hint + ' ' if hint else ''}known {what}s: {one_of(table)}", kind="name")
        return list(v)
    ok = (isinstance(v, bool) if inner is bool else
          isinstance(v, int | float) and not isinstance(v, bool) if inner is float else
          isinstance(v, int) and not isinstance(v, bool) if inner is int else isinstance(v, inner))
    if not ok:
        raise SpecError(f"{path} must be {_describe(hint)}, got {type(v).__name__} {v!r}", span,
                        f"e.g. {path.rsplit('.', 1)[-1]}: {_example(inner)} ({meta['doc']})", kind="schema")
    if inner is float:
        v = float(v)
    if meta["choices"] is not None and v not in meta["choices"]:
        hint = did_you_mean(v, list(meta["choices"])) if isinstance(v, str) else None
        raise SpecError(f"{path}: unknown value {v!r}", span,
                        f"{hint + ' ' if hint else ''}choose one of: {', '.join(meta['choices'])}", kind="schema")
    lo, hi, below = meta["minimum"], meta["maximum"], meta["below"]
    if (lo is not None and v < lo) or (hi is not None and v > hi) or (below is not None and v >= below):
        rng = f">= {lo}" if lo is not None else ""
        if below is not None:
            rng += f" and < {below}"
        if hi is not None:
            rng += f" and <= {hi}"
        raise SpecError(f"{path} must be {rng.strip(' and')}, got {v!r}", span, meta["doc"] or None,
                        kind="schema")
    if meta["table"] is not None:
        table, what = _TABLES[meta["table"]]
        resolve(v, table, what, where=path, span=span)
    return v


def _number_map(v: Any, path: str, span: Span | None, meta: Mapping[str, Any]) -> dict[str, float]:
    """A mapping of names (or patterns) to numbers, such as ``lr_mult: {'conv*': 0.1}``."""
    key = path.rsplit(".", 1)[-1]
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and isinstance(x, int | float) and
                                             not isinstance(x, bool) for k, x in v.items()):
        raise SpecError(f"{path} must be a mapping of names to numbers, got {v!r}", span,
                        f"e.g. {key}: {{'conv*': 0.1}} ({meta['doc']})", kind="schema")
    lo = meta["minimum"]
    for k, x in v.items():
        if lo is not None and x < lo:
            raise SpecError(f"{path}.{k} must be >= {lo}, got {x!r}", span, meta["doc"] or None, kind="schema")
    return {str(k): float(x) for k, x in v.items()}


# ---------------------------------------------------------------- --set overrides

def _parse_override(item: str) -> tuple[list[str], str]:
    if "=" not in item:
        raise UsageError(f"--set {item!r}: expected key=value", hint="e.g. --set train.epochs=3")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    if parts and parts[0] == "train":
        parts = parts[1:]
    if not parts or not all(parts):
        raise UsageError(f"--set {item!r}: expected a key such as train.epochs", hint="e.g. --set train.epochs=3")
    return parts, value.strip()


def _walk(d: dict, parts: list[str], item: str) -> tuple[dict, str, Any]:
    """The dict holding the last key, the key, and that key's type hint; unknown keys refused."""
    cls: Any = TrainConfig
    here = d
    for i, key in enumerate(parts):
        known = {f.name for f in fields(cls)}
        if key not in known:
            where = "train." + ".".join(parts[:i]) if i else "train"
            hint = did_you_mean(key, list(known))
            raise UsageError(f"--set {item}: {where} has no key '{key}'",
                             hint=f"{hint + ' ' if hint else ''}known keys: {', '.join(sorted(known))}")
        hint_t = _hints(cls)[key]
        if i == len(parts) - 1:
            return here, key, hint_t
        inner, _ = _strip_optional(hint_t)
        if not dataclasses.is_dataclass(inner):
            raise UsageError(f"--set {item}: train.{'.'.join(parts[:i + 1])} is {_describe(hint_t)}, "
                             f"it has no key '{parts[i + 1]}'", hint=f"write --set train.{'.'.join(parts[:i + 1])}=...")
        if here.get(key) is None:  # e.g. early_stopping: null -> fill in defaults before setting a sub-key
            here[key] = dataclasses.asdict(inner())
        here, cls = here[key], inner
    raise AssertionError("unreachable")


def _typed_override(text: str, hint: Any, item: str, parts: list[str]) -> Any:
    inner, nullable = _strip_optional(hint)
    value = typed_scalar(text)
    key = "train." + ".".join(parts)
    if value is None:
        if nullable:
            return None
        raise UsageError(f"--set {item}: {key} cannot be null", hint=f"give {_describe(hint)}")
    if dataclasses.is_dataclass(inner):
        if isinstance(value, str | bool):
            return value  # shorthand (data: digits, early_stopping: true), checked by from_dict
        raise UsageError(f"--set {item}: {key} is a mapping; set one of its keys",
                         hint=f"e.g. --set {key}.{fields(inner)[0].name}=...")
    if typing.get_origin(inner) is dict:  # --set train.lr_mult={conv*: 0.1}: YAML flow text, checked by from_dict
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise UsageError(f"--set {item}: {key} expects a mapping such as {{conv*: 0.1}}, got {text!r}",
                             hint=f"e.g. --set '{key}={{conv*: 0.1}}'") from None
    if typing.get_origin(inner) is list:
        body = text.strip()
        if body.startswith("[") and body.endswith("]"):
            body = body[1:-1]
        items = [s.strip().strip("'\"") for s in body.split(",") if s.strip()]
        if typing.get_args(inner) == (int,):
            try:
                return [int(i) for i in items]
            except ValueError:
                raise UsageError(f"--set {item}: {key} expects a list of integers, got {text!r}",
                                 hint=f"e.g. --set {key}=[5,6,7]") from None
        return items
    if inner is str:
        return text if not isinstance(value, str) else value
    ok = (isinstance(value, bool) if inner is bool else
          isinstance(value, int | float) and not isinstance(value, bool) if inner is float else
          isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise UsageError(f"--set {item}: {key} expects {_describe(hint)}, got {text!r}",
                         hint=f"e.g. --set {key}={_example(inner)}")
    return float(value) if inner is float else value


def _example(kind: Any) -> str:
    return {int: "3", float: "0.5", bool: "true", str: "name"}.get(kind, "value")


# ---------------------------------------------------------------- JSON Schema

def json_schema() -> dict[str, Any]:
    """Draft-07-compatible JSON Schema of the ``train:`` block (descriptions and enums from the tables)."""
    return _schema_of(TrainConfig)


def _schema_of(cls) -> dict[str, Any]:
    hints = _hints(cls)
    props = {f.name: _field_schema(f, hints[f.name]) for f in fields(cls)}
    return {"type": "object", "description": (cls.__doc__ or "").strip().splitlines()[0],
            "additionalProperties": False, "properties": props}


def _field_schema(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    inner, nullable = _strip_optional(hint)
    meta = f.metadata
    doc = meta["doc"]
    if meta["table"] in ("loss", "optimizer", "schedule"):
        table, _ = _TABLES[meta["table"]]
        s = call_schema(table, doc, nullable)
    elif dataclasses.is_dataclass(inner):
        obj = _schema_of(inner)
        alts: list[dict] = [obj]
        if inner is DataConfig:
            alts.insert(0, {"type": "string", "description": "an embedded data set name or a path",
                            "anyOf": [{"enum": list(SOURCES)}, {"pattern": r"[./\\]"}]})
        if inner is InitFromConfig:
            alts.insert(0, {"type": "string", "description": "a run directory or .safetensors file"})
        if inner is EarlyStoppingConfig:
            alts.insert(0, {"type": "boolean", "description": "true: default settings; false: off"})
        if nullable:
            alts.append({"type": "null"})
        s = {"description": doc, "anyOf": alts} if len(alts) > 1 else {**obj, "description": doc}
    elif typing.get_origin(inner) is dict:
        values: dict[str, Any] = {"type": "number"}
        if meta["minimum"] is not None:
            values["minimum"] = meta["minimum"]
        s = {"description": doc, "type": ["object", "null"] if nullable else "object",
             "additionalProperties": values}
    elif typing.get_args(inner) == (int,):
        s = {"description": doc, "type": ["array", "null"] if nullable else "array", "items": {"type": "integer"},
             "uniqueItems": True}
    elif typing.get_origin(inner) is list:
        items: dict[str, Any] = {"type": "string"}
        if meta["table"] is not None:
            table = _TABLES[meta["table"]][0]
            items["enum"] = sorted(table)
            if isinstance(table, Table):  # or a name from an installed plugin (checked, with a hint, when built)
                items = {"anyOf": [items, PLUGIN_NAME | {"description": f"from an installed package "
                                                                        f"({table.group} entry points)"}]}
        s = {"description": doc, "type": ["array", "null"] if nullable else "array", "items": items,
             "uniqueItems": True}
    else:
        t = {int: "integer", float: "number", bool: "boolean", str: "string"}[inner]
        s = {"description": doc, "type": [t, "null"] if nullable else t}
        if meta["choices"] is not None:
            s["enum"] = list(meta["choices"]) + ([None] if nullable else [])
        if meta["minimum"] is not None:
            s["minimum"] = meta["minimum"]
        if meta["maximum"] is not None:
            s["maximum"] = meta["maximum"]
        if meta["below"] is not None:
            s["exclusiveMaximum"] = meta["below"]
    if f.default is not _MISSING:
        s["default"] = f.default
    return s
