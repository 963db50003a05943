"""From ``train.data`` to tensors on the device: read, check, split, normalise.

``load_data`` reads a source (``sources.py``), checks it against the model's
declared inputs, splits it (seeded shuffle, or chronologically for series),
normalises it with statistics of the training split only, and returns a
:class:`Dataset` whose splits are tensors already on the device. Training
batches are then index slices of those tensors (a seeded ``randperm``): no per-sample
DataLoader.

Data too large to hold (``train.data.stream``) take the streamed path instead: the same
targets, split and checks, but each split keeps the source rows of its samples
(``stream.StreamSplit``) and DataLoader workers read and normalise them batch by batch, with
statistics computed in one streamed pass over the training split.

Every fault found here is a DataError raised before the first training step.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from netc.diagnostics import DataError
from netc.runner import datafiles, lazy, stream
from netc.runner.config import DataConfig, SplitConfig, TrainConfig
from netc.runner.sources import LAZY, SOURCES, Inputs, Raw, infer_source, whole


@dataclass
class Split:
    """One split as tensors on the device: one input tensor per declared model input, and targets."""

    xs: tuple[torch.Tensor, ...]
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per input: one sample's shape."""
        return tuple(tuple(x.shape[1:]) for x in self.xs)

    @property
    def dtypes(self) -> tuple[torch.dtype, ...]:
        """Per input: its dtype."""
        return tuple(x.dtype for x in self.xs)

    def head(self, k: int) -> tuple[torch.Tensor, ...]:
        """The first ``k`` samples' inputs."""
        return tuple(x[:k] for x in self.xs)

    def part(self, lo: int, hi: int) -> Split:
        """Samples ``[lo, hi)`` of this split."""
        return Split(tuple(x[lo:hi] for x in self.xs), self.y[lo:hi])


@dataclass
class Dataset:
    """Train/val/test splits plus what the runner needs to interpret outputs."""

    train: Split | stream.StreamSplit  # a StreamSplit when the data are streamed
    val: Split | stream.StreamSplit | None  # None when split.val is 0
    test: Split | stream.StreamSplit | None  # None when split.test is 0 and the source ships no test set
    task: str  # "classification" or "regression"
    num_classes: int = 0  # classification: number of distinct classes seen in the data (upper bound: model)
    class_names: list[str] | None = None
    target_scale: tuple[Any, Any] = (0.0, 1.0)  # regression: (shift, scale) that maps targets back to units
    input_norm: list[dict] = field(default_factory=list)  # per input: {"method", "shift", "scale"} (train stats)
    baselines: dict[str, float] = field(default_factory=dict)  # e.g. naive_rmse on the test split
    source: str = ""
    origin: str = ""
    series: bool = False
    binary: bool = False  # one logit per sample with 0/1 targets (bce)

    def split(self, name: str) -> Split:
        """The split called ``name`` ('train', 'val' or 'test'); DataError if it is empty."""
        s = getattr(self, name, None) if name in ("train", "val", "test") else None
        if s is None:
            raise DataError(f"there is no {name!r} split in this run",
                            hint="available: " + ", ".join(n for n in ("train", "val", "test")
                                                           if getattr(self, n) is not None))
        return s


# ---------------------------------------------------------------- entry point

def load_data(data: DataConfig | TrainConfig, inputs: Inputs, *, split: SplitConfig | None = None,
              normalize: str | None = None, task: str | None = None, device: str | torch.device = "cpu"
              ) -> Dataset:
    """Read, check, split and normalise ``data`` for a model with the declared ``inputs``.

    Given a whole TrainConfig, its split, normalize and loss settings are used.
    ``task`` ('classification' or 'regression') overrides what the source implies.
    """
    if isinstance(data, TrainConfig):
        cfg = data
        data, split = cfg.data, split or cfg.split
        normalize = normalize or cfg.normalize
        task = task or cfg.task
    split = split or SplitConfig()
    if not inputs:
        raise DataError("the model declares no inputs", hint="declare e.g. input: {image: [1, 8, 8]}")
    name = data.source or (infer_source(data.path) if data.path else "digits")
    source = SOURCES[name]
    method = normalize or source.normalize
    if source.streams:  # listed, not decoded: stream it, or read it whole if it fits in memory
        reader = LAZY[name](data, inputs)
        if reader is not None and _streams(data, reader, name):
            ds = _streamed(reader, data, inputs, split, method, task or (source.task if source.task != "any"
                                                                          else None), torch.device(device))
            ds.source, ds.origin = name, reader.origin
            return _to_device(ds, device)
        raw = whole(reader, inputs) if reader is not None else source.read(data, inputs)
    elif data.stream:
        raise DataError(f"train.data.stream: the {name} source is read into memory, it cannot stream",
                        hint=f"sources that stream: {', '.join(k for k, s in SOURCES.items() if s.streams)}; "
                             "or remove stream")
    else:
        raw = source.read(data, inputs)
    if source.series:
        ds = _series(raw, data, inputs, split, method)
    else:
        ds = _samples(raw, data, inputs, split, method, task or (source.task if source.task != "any" else None))
    ds.source, ds.origin = name, raw.origin
    return _to_device(ds, device)


# ---------------------------------------------------------------- checks

def _check_finite(a: np.ndarray, what: str, origin: str) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        raise DataError(f"{origin}: {what} contain NaN or infinite values in {int(bad.sum())} sample(s), first at "
                        f"index {int(np.argmax(bad))}",
                        hint="clean or impute the data before training (empty CSV cells read as NaN)")


def _fit_shape(x: np.ndarray, declared: tuple, name: str, origin: str) -> np.ndarray:
    """Reshape samples to the declared per-sample shape when the element counts agree."""
    got = tuple(x.shape[1:])
    sym = [i for i, d in enumerate(declared) if not isinstance(d, int)]
    fixed = math.prod(d for d in declared if isinstance(d, int))
    count = math.prod(got)
    target: tuple[int, ...] | None = None
    if not sym:
        target = tuple(declared) if fixed == count else None
    elif len(sym) == 1 and fixed and count % fixed == 0:
        if len(got) == len(declared) and all(g == d for g, d in zip(got, declared) if isinstance(d, int)):
            target = got  # symbolic dim (e.g. T) keeps the data's own length
        else:
            target = tuple(count // fixed if not isinstance(d, int) else d for d in declared)
    if target is None:
        raise DataError(f"{origin}: samples have shape {got} ({count} values) but input '{name}' is declared "
                        f"as {tuple(declared)}",
                        hint="change the declared input shape to match the data, or use data whose samples "
                             "have that many values")
    if got == target:
        return x
    if len(got) == 3 and len(target) == 3 and got[-1] == target[0] and got[:-1] == target[1:]:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # channels-last images -> (C, H, W)
    return x.reshape(len(x), *target)


# ---------------------------------------------------------------- labelled samples

def _samples(raw: Raw, data: DataConfig, inputs: Inputs, split: SplitConfig, method: str,
             task: str | None) -> Dataset:
    xs = raw.x if isinstance(raw.x, dict) else {inputs[0][0]: raw.x}
    if len(inputs) > 1 and not isinstance(raw.x, dict):
        raise DataError(f"the model declares {len(inputs)} inputs ({', '.join(n for n, _, _ in inputs)}) but "
                        f"{raw.origin} provides one input array",
                        hint="use an .npz file with one array per input, named after the inputs")
    y = np.asarray(raw.y)
    n = len(y)
    for nm, a in xs.items():
        if len(a) != n:
            raise DataError(f"{raw.origin}: input '{nm}' has {len(a)} samples but there are {n} targets",
                            hint="inputs and targets must have one row per sample")
    class_names = raw.class_names
    # 1. targets: class ids or real values
    if y.dtype.kind in "USO":  # class names (CSV)
        class_names = sorted(set(y.tolist()))
        y = np.searchsorted(np.array(class_names), y).astype(np.int64)
        task = task or "classification"
    rows = y.dtype.kind == "f" and y.ndim == 2 and y.shape[1] > 1  # one-hot or probability rows (N, C)?
    if task is None:
        whole = y.dtype.kind == "f" and y.ndim == 1 and np.isfinite(y).all() and (y == np.round(y)).all()
        one_hot = rows and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()  # Keras' to_categorical
        task = "classification" if y.dtype.kind in "iub" or whole or one_hot else "regression"  # int ids
    _check_finite(y.astype(np.float64) if y.dtype.kind != "f" else y, "targets", raw.origin)
    if task == "classification" and rows:  # one-hot (Keras' categorical targets) or soft probabilities
        _check_distributions(y, raw.origin)
        y = y.astype(np.float32)
    elif task == "classification":
        if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1) and y.dtype.kind not in "iu":
            raise DataError(f"{raw.origin}: class targets must be one id per sample, or one row of class "
                            f"probabilities per sample, got shape {y.shape}",
                            hint="use a regression loss (mse, mae, huber) for real-valued targets")
        if y.dtype.kind == "f" and not (y == np.round(y)).all():
            raise DataError(f"{raw.origin}: classification targets must be whole class ids, found "
                            f"{y[y != np.round(y)][0]!r}", hint="use a regression loss (mse, mae, huber), or "
                                                               "integer labels")
        y = y.astype(np.int64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if data.classes is not None:  # a subset of the classes, relabelled 0..k-1 (e.g. digits 5-9 for fine-tuning)
            keep, y = _keep_classes(y, data.classes, raw.origin)
            xs, n = {nm: np.asarray(a)[keep] for nm, a in xs.items()}, len(y)
            class_names = [class_names[c] if class_names and c < len(class_names) else str(c) for c in data.classes]
    elif data.classes is not None:
        raise DataError(f"{raw.origin}: train.data.classes selects classes, but this run is {task}",
                        hint="remove train.data.classes, or train a classifier (class ids as targets)")
    else:
        y = y.astype(np.float32).reshape(n, -1) if y.ndim == 1 else y.astype(np.float32)
    # 2. inputs: declared shapes and dtypes
    arrays = []
    for nm, shape, dtype in inputs:
        a = np.asarray(xs[nm])
        a = _fit_shape(a, tuple(shape), nm, raw.origin)
        if dtype == "int64":
            if a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all()):
                raise DataError(f"{raw.origin}: input '{nm}' is declared int64 (token ids) but holds non-integer "
                                "values", hint="declare the input as float32, or give integer token ids")
            a = a.astype(np.int64)
            if a.size and a.min() < 0:
                raise DataError(f"{raw.origin}: input '{nm}' holds negative token ids (min {a.min()})",
                                hint="token ids must be >= 0")
        else:
            a = a.astype(np.float32)
            _check_finite(a, f"inputs ('{nm}')", raw.origin)
        arrays.append(a)
    if data.limit is not None:
        arrays, y, n = [a[:data.limit] for a in arrays], y[:data.limit], min(n, data.limit)
    # 3. split: the source's own test set, or a seeded shuffle; val always comes from training data
    rng = np.random.default_rng(split.seed)
    test_part = None
    if raw.x_test is not None:
        txs = raw.x_test if isinstance(raw.x_test, dict) else {inputs[0][0]: raw.x_test}
        t_arrays = [_fit_shape(np.asarray(txs[nm]), tuple(shape), nm, raw.origin).astype(
            np.int64 if dtype == "int64" else np.float32) for nm, shape, dtype in inputs]
        ty = np.asarray(raw.y_test).astype(np.int64 if task == "classification" else np.float32)
        if data.classes is not None:
            keep, ty = _keep_classes(ty, data.classes, raw.origin)
            t_arrays = [a[keep] for a in t_arrays]
        test_part = (t_arrays, ty.reshape(len(ty), -1) if task == "regression" else ty)
        perm = rng.permutation(n)
        n_test = 0
    else:
        perm = rng.permutation(n)
        n_test = _count(n, split.test, "test", raw.origin)
    n_val = _count(n, split.val, "val", raw.origin)  # fractions of all samples (of the train set if test ships)
    te, va, tr = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    if split.train_per_class is not None:
        if task != "classification":
            raise DataError(f"{raw.origin}: split.train_per_class counts samples per class, but this run is {task}",
                            hint="use train.data.limit to train on fewer samples")
        tr = _per_class(tr, y, split.train_per_class)
    if len(tr) == 0:
        raise DataError(f"{raw.origin}: the training split is empty ({n} samples, val {split.val}, test "
                        f"{split.test})", hint="use more data or smaller split fractions")
    parts = {"train": ([a[tr] for a in arrays], y[tr]),
             "val": ([a[va] for a in arrays], y[va]) if n_val else None,
             "test": test_part if test_part is not None else (([a[te] for a in arrays], y[te]) if n_test else None)}
    # 4. normalise with statistics of the training split only
    norms = []
    for i, (nm, shape, dtype) in enumerate(inputs):
        if dtype == "int64":
            norms.append({"method": "none", "shift": 0.0, "scale": 1.0})
            continue
        shift, scale = _stats(parts["train"][0][i], method)
        norms.append({"method": method, "shift": shift, "scale": scale})
        for p in parts.values():
            if p is not None:
                p[0][i] = ((p[0][i] - shift) / scale).astype(np.float32)
    target_scale: tuple[Any, Any] = (0.0, 1.0)
    if task == "regression" and method != "none":
        target_scale = _stats(parts["train"][1], method, axis=0)
        for p in parts.values():
            if p is not None:
                p[1][...] = (p[1] - target_scale[0]) / target_scale[1]
    num_classes = 0
    if task == "classification":
        seen = [p[1] for p in parts.values() if p is not None]
        num_classes = int(max(int(s.max()) for s in seen if len(s)) + 1)
        if min(int(s.min()) for s in seen if len(s)) < 0:
            raise DataError(f"{raw.origin}: negative class ids in the targets", hint="class ids start at 0")
    return Dataset(
        train=_split(parts["train"]), val=_split(parts["val"]), test=_split(parts["test"]), task=task,
        num_classes=num_classes, class_names=class_names, target_scale=target_scale, input_norm=norms)


def _keep_classes(y: np.ndarray, classes: list[int], origin: str) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the samples of ``classes``, their targets relabelled 0..k-1 in the order of ``classes``)."""
    present = set(np.unique(y).tolist())
    absent = [c for c in classes if c not in present]
    if absent or len(set(classes)) != len(classes):
        raise DataError(f"{origin}: train.data.classes {classes} names class id(s) "
                        f"{absent or sorted(c for c in set(classes) if classes.count(c) > 1)} "
                        f"{'that the data do not hold' if absent else 'twice'}",
                        hint=f"class ids in the data: {', '.join(str(c) for c in sorted(present)[:20])}")
    relabel = np.full(max(max(present), max(classes)) + 1, -1, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    keep = relabel[y] >= 0
    return keep, relabel[y[keep]]


def _per_class(rows: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` of ``rows`` (a shuffled order) of each class: a small labelled budget, classes balanced."""
    seen: dict[int, int] = {}
    kept = []
    for r in rows.tolist():
        c = int(y[r])
        if seen.get(c, 0) < k:
            seen[c] = seen.get(c, 0) + 1
            kept.append(r)
    return np.asarray(kept, dtype=rows.dtype)


def _count(n: int, fraction: float, name: str, origin: str) -> int:
    k = round(n * fraction)
    if fraction > 0 and k == 0:
        raise DataError(f"{origin}: the {name} split is empty: {fraction} of {n} samples rounds to 0",
                        hint=f"use more data, raise split.{name}, or set split.{name}: 0 to go without it")
    return k


def _stats(a: np.ndarray, method: str, axis: Any = None) -> tuple[Any, Any]:
    """(shift, scale) over the training split: per channel for (C, H, W) samples, per feature otherwise."""
    if method == "none":
        return 0.0, 1.0
    if axis is None:
        keep = 1 if a.ndim == 4 else a.ndim - 1  # channel axis of images, last axis otherwise
        axis = tuple(i for i in range(a.ndim) if i != keep)
    a64 = a.astype(np.float64)
    if method == "standard":
        shift, scale = a64.mean(axis=axis, keepdims=True), a64.std(axis=axis, keepdims=True)
    else:  # minmax -> [0, 1]; symmetric -> [-1, 1] (a Tanh generator's range)
        lo, hi = a64.min(axis=axis, keepdims=True), a64.max(axis=axis, keepdims=True)
        shift, scale = (lo, hi - lo) if method == "minmax" else ((hi + lo) / 2, (hi - lo) / 2)
    scale = np.where(scale > 1e-12, scale, 1.0)  # constant features (e.g. blank digit corners) stay put
    return shift.astype(np.float32), scale.astype(np.float32)


def _split(part) -> Split | None:
    if part is None:
        return None
    arrays, y = part
    return Split(tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays),
                 torch.from_numpy(np.ascontiguousarray(y)))


# ---------------------------------------------------------------- streamed samples

ROW = "__row"  # the stand-in input that carries source row numbers through _samples on the streamed path


def _streams(data: DataConfig, reader: lazy.Reader, name: str) -> bool:
    """Whether to stream: as asked, or (stream: null) when the decoded data exceed stream_above.

    Held in memory, the data are refused before anything is decoded when they would not fit.
    """
    decoded = reader.decoded_bytes
    if data.stream or (data.stream is None and decoded > data.stream_above):
        return True
    need = 3 * decoded  # the decoded samples, their float32 copy and the split, normalised copies
    free = stream.available_memory()
    if free is not None and need > free:
        size = datafiles.size_text
        raise DataError(f"{reader.origin}: {len(reader)} samples of {size(decoded // max(1, len(reader)))} each "
                        f"need about {size(need)} in memory (decoded {size(decoded)}, copied while splitting "
                        f"and normalising) but {size(free)} is available",
                        hint="set train.data.stream: true to read them batch by batch in DataLoader workers")
    return False


def _prepare(arrays: list[np.ndarray], inputs: Inputs, origin: str,
             norms: tuple[tuple[Any, Any] | None, ...] | None = None) -> list[np.ndarray]:
    """A streamed batch as the in-memory path has it: declared shapes and dtypes, checked, normalised."""
    out = []
    for i, ((nm, shape, dtype), a) in enumerate(zip(inputs, arrays)):
        a = _fit_shape(a, tuple(shape), nm, origin)
        if dtype == "int64":
            if a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all()):
                raise DataError(f"{origin}: input '{nm}' is declared int64 (token ids) but holds non-integer "
                                "values", hint="declare the input as float32, or give integer token ids")
            a = a.astype(np.int64)
        else:
            a = a.astype(np.float32)
            _check_finite(a, f"inputs ('{nm}')", origin)
            if norms is not None and norms[i] is not None:
                shift, scale = norms[i]  # type: ignore[misc]
                a = ((a - shift) / scale).astype(np.float32)
        out.append(a)
    return out


def _streamed(reader: lazy.Reader, data: DataConfig, inputs: Inputs, split: SplitConfig, method: str,
              task: str | None, device: torch.device) -> Dataset:
    """The streamed path: targets and splits exactly as in memory, inputs read by DataLoader workers."""
    # 1. targets, classes, limit and split through _samples itself, with source row numbers as the one input
    n = len(reader)
    rows = Raw(x=np.arange(n, dtype=np.int64)[:, None], y=reader.y, class_names=reader.class_names,
               origin=reader.origin)
    ds = _samples(rows, data, [(ROW, (1,), "int64")], split, "none", task)
    # 2. how batches are read: the workers' count, pinned memory for CUDA; one sample read now, so a
    #    file or shape fault is reported before training rather than from a worker
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    workers = data.workers if data.workers is not None else stream.default_workers(local)
    read = stream.Stream(reader, functools.partial(_prepare, inputs=inputs, origin=reader.origin), workers,
                         pin_memory=device.type == "cuda")

    def streamed(s: Split | None, how: stream.Stream) -> stream.StreamSplit | None:
        return None if s is None else stream.StreamSplit(s.xs[0][:, 0].numpy(), s.y, how)

    train = streamed(ds.train, read)
    first = train.head(1)  # type: ignore[union-attr]
    # 3. normalisation statistics of the training split, in one streamed pass (float64)
    floats = [i for i, (_, _, dtype) in enumerate(inputs) if dtype != "int64"]
    stats = stream.statistics(train, method, floats) if method != "none" and floats else {}  # type: ignore[arg-type]
    norms = tuple(stats.get(i) for i in range(len(inputs)))
    ds.input_norm = [{"method": method if i in stats else "none", "shift": stats[i][0] if i in stats else 0.0,
                      "scale": stats[i][1] if i in stats else 1.0} for i in range(len(inputs))]
    read = replace(read, prepare=functools.partial(_prepare, inputs=inputs, origin=reader.origin, norms=norms))
    shapes, dtypes = tuple(tuple(x.shape[1:]) for x in first), tuple(x.dtype for x in first)
    for name in ("train", "val", "test"):
        s = streamed(getattr(ds, name), read)
        setattr(ds, name, s if s is None else replace(s, shapes=shapes, dtypes=dtypes))
    return ds


# ---------------------------------------------------------------- time series

def _series(raw: Raw, data: DataConfig, inputs: Inputs, split: SplitConfig, method: str) -> Dataset:
    s = np.asarray(raw.series, dtype=np.float64)
    if data.limit is not None:
        s = s[:data.limit]
    _check_finite(s[:, None], "series values", raw.origin)
    if len(inputs) != 1:
        raise DataError(f"forecasting sources give one input window, the model declares {len(inputs)} inputs",
                        hint="declare one input, e.g. input: {x: [24, 1]}")
    name, shape, _ = inputs[0]
    shape = tuple(shape)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise DataError(f"a univariate series window is (window,) or (window, 1), input '{name}' is declared "
                        f"as {shape}", hint="declare e.g. input: {x: [24, 1]} (or [T, 1] with data.window)")
    declared = shape[0] if isinstance(shape[0], int) else None
    window = data.window or declared
    if window is None:
        raise DataError(f"input '{name}' has a symbolic length {shape[0]!r}; the window size is unknown",
                        hint="set train.data.window (e.g. window: 24)")
    if declared is not None and window != declared:
        raise DataError(f"train.data.window is {window} but input '{name}' is declared with {declared} steps",
                        hint="make them equal, or declare the length as a symbol like T")
    h = data.horizon
    L = len(s)
    # 1. chronological boundaries on the raw series; a window belongs to the split holding all its targets
    t1 = round(L * (1 - split.val - split.test))
    t2 = round(L * (1 - split.test))
    starts = np.arange(0, L - window - h + 1)
    first_t, last_t = starts + window, starts + window + h - 1
    idx = {"train": starts[last_t < t1],
           "val": starts[(first_t >= t1) & (last_t < t2)],
           "test": starts[(first_t >= t2) & (last_t < L)]}
    for k, frac in (("train", 1.0), ("val", split.val), ("test", split.test)):
        if frac > 0 and len(idx[k]) == 0:
            raise DataError(f"{raw.origin}: the {k} split has no complete window ({L} values, window {window}, "
                            f"horizon {h})", hint="use a shorter window/horizon or change split fractions")
    # 2. normalise with statistics of the training segment only (no look-ahead)
    train_seg = s[:t1]
    if method == "standard":
        shift, scale = float(train_seg.mean()), float(train_seg.std() or 1.0)
    elif method in ("minmax", "symmetric"):
        lo, hi = float(train_seg.min()), float(train_seg.max())
        shift, scale = (lo, (hi - lo) or 1.0) if method == "minmax" else ((hi + lo) / 2, (hi - lo) / 2 or 1.0)
    else:
        shift, scale = 0.0, 1.0
    z = ((s - shift) / scale).astype(np.float32)
    offsets_x, offsets_y = np.arange(window), np.arange(window, window + h)

    def part(st: np.ndarray) -> Split | None:
        if len(st) == 0:
            return None
        x = z[st[:, None] + offsets_x].reshape(len(st), *((window,) if len(shape) == 1 else (window, 1)))
        return Split((torch.from_numpy(np.ascontiguousarray(x)),), torch.from_numpy(z[st[:, None] + offsets_y]))

    ds = Dataset(train=part(idx["train"]), val=part(idx["val"]) if split.val > 0 else None,  # type: ignore[arg-type]
                 test=part(idx["test"]) if split.test > 0 else None, task="regression",
                 target_scale=(np.float32(shift), np.float32(scale)),
                 input_norm=[{"method": method, "shift": shift, "scale": scale}], series=True)
    # 3. naive baseline: repeat the last observed value (in original units)
    if ds.test is not None:
        st = idx["test"]
        last = s[st + window - 1][:, None].repeat(h, axis=1)
        truth = s[st[:, None] + offsets_y]
        ds.baselines["naive_rmse"] = float(np.mean(np.sqrt(((truth - last) ** 2).mean(axis=0))))
    return ds


# ---------------------------------------------------------------- targets vs model outputs

def _check_distributions(y, origin: str) -> None:
    """Refuse class-score rows that are not probabilities (a negative entry, or a row not summing to 1)."""
    sums = np.asarray(y, dtype=np.float64).sum(axis=-1)
    bad = np.flatnonzero((np.asarray(y) < 0).any(axis=-1).reshape(-1) | (np.abs(sums - 1) > 1e-3).reshape(-1))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{origin}: class targets given as rows of {y.shape[-1]} scores must be one-hot or "
                        f"probabilities (non-negative, each row summing to 1); row {i} sums to "
                        f"{float(sums.reshape(-1)[i]):.4g}",
                        hint="normalise each row to sum 1, give class ids instead, or use a regression loss "
                             "(mse, mae, huber) for real-valued targets")


def _as_ids_or_probs(y: torch.Tensor, name: str) -> torch.Tensor:
    """Class-score targets as class ids when every row is one-hot, else as float probabilities."""
    _check_distributions(y.cpu().numpy(), f"the {name} split")
    if ((y == 0) | (y == 1)).all():
        return y.argmax(-1)  # one-hot: exactly the class-id loss, and the metrics read ids
    return y.float()

def fit_targets(ds: Dataset, out_shape: tuple[int, ...], loss_task: str) -> Dataset:
    """Check targets against the model's per-sample output shape and give them the loss's layout.

    ``loss_task`` is the loss's task: classification (class ids), binary (0/1, one logit) or regression.
    """
    def each(fn):
        for name in ("train", "val", "test"):
            s = getattr(ds, name)
            if s is not None:
                setattr(ds, name, replace(s, y=fn(s.y, name)))

    if loss_task == "regression":
        if ds.task != "regression":
            ds.task = "regression"
            ds.target_scale = (0.0, 1.0)
            each(lambda y, _: y.float().reshape(len(y), -1))
        per = math.prod(out_shape)
        k = ds.train.y[0].numel() if len(ds.train) else per
        if per != k:
            raise DataError(f"the model outputs {out_shape} per sample ({per} values) but the targets have {k}",
                            hint="make the last layer output one value per target (e.g. Dense(1) for a "
                                 "one-step forecast)")
        each(lambda y, _: y.reshape(len(y), *out_shape))
        return ds
    if ds.task != "classification":
        raise DataError("the targets are real values but the loss expects class labels",
                        hint="use a regression loss (mse, mae, huber), or class-id targets")
    if loss_task == "binary":
        if math.prod(out_shape) != 1:
            raise DataError(f"bce expects one logit per sample, the model outputs {out_shape}",
                            hint="end the model with Dense(1), or use cross_entropy with Dense(num_classes)")
        for name in ("train", "val", "test"):
            s = getattr(ds, name)
            if s is not None and len(s) and (s.y.min() < 0 or s.y.max() > 1):
                raise DataError(f"bce needs 0/1 labels, the {name} split has labels up to {int(s.y.max())}",
                                hint="use cross_entropy for more than two classes")
        ds.num_classes, ds.binary = 2, True
        each(lambda y, _: y.float().reshape(len(y), *out_shape))
        return ds
    classes = out_shape[-1] if out_shape else 1
    for name in ("train", "val", "test"):
        s = getattr(ds, name)
        if s is None or not len(s):
            continue
        if s.y.dim() - 1 == len(out_shape) and len(out_shape):  # a row of class scores per output position
            if s.y.shape[-1] != classes:
                raise DataError(f"the {name} targets are rows of {s.y.shape[-1]} class scores but the model "
                                f"outputs {classes} classes", hint=f"make the last layer output {s.y.shape[-1]} "
                                                                  f"classes (e.g. Dense({s.y.shape[-1]}))")
            s = Split(s.xs, _as_ids_or_probs(s.y, name))
            setattr(ds, name, s)
            if s.y.is_floating_point():
                continue
        if s.y.dim() - 1 != len(out_shape) - 1:
            raise DataError(f"the model outputs {out_shape} per sample (class scores last) but the {name} targets "
                            f"have shape {tuple(s.y.shape[1:])}",
                            hint="one class id per sample for (classes,) outputs, one per step for (T, classes)")
        hi = int(s.y.max())
        if hi >= classes:
            raise DataError(f"the {name} split has class id {hi} but the model outputs {classes} classes",
                            hint=f"make the last layer output at least {hi + 1} classes (e.g. Dense({hi + 1}))")
    ds.num_classes = classes
    if ds.class_names is not None and len(ds.class_names) < classes:
        ds.class_names = ds.class_names + [str(i) for i in range(len(ds.class_names), classes)]
    return ds


def _to_device(ds: Dataset, device: str | torch.device) -> Dataset:
    for name in ("train", "val", "test"):
        s = getattr(ds, name)
        if isinstance(s, stream.StreamSplit):  # the targets; inputs reach the device batch by batch
            setattr(ds, name, replace(s, y=s.y.to(device)))
        elif s is not None:
            setattr(ds, name, Split(tuple(x.to(device) for x in s.xs), s.y.to(device)))
    return ds
