"""Data sources: one reader per format, attached by name to the declared ``SOURCES``.

A reader turns ``train.data`` into a :class:`Raw` of numpy arrays (samples and
targets, plus the source's own test set if it ships one, or a 1-D series for
forecasting sources). Splitting, normalisation and tensors happen in
``data.py``. Every failure is a DataError naming the file and a fix; nothing
here ever unpickles arbitrary objects (CIFAR-10's pickled batches go through a
restricted unpickler that only rebuilds numpy arrays).

The names and what each source needs are declared in
``netc.compiler.train.sources`` (what ``netc check`` validates against); numpy and
the format libraries are imported inside the readers.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netc.compiler.train import sources as declared
from netc.compiler.train.registry import implement
from netc.compiler.train.sources import Source, infer_source
from netc.diagnostics import DataError, did_you_mean
from netc.runner import datafiles, lazy, tables, textread

if TYPE_CHECKING:
    import numpy as np

    from netc.compiler.train.config import DataConfig

Inputs = list[tuple[str, tuple[Any, ...], str]]  # (name, per-sample shape, dtype) as declared by the spec


@dataclass
class Raw:
    """What a reader found: samples and targets as numpy arrays."""

    x: Any = None  # (n, ...) array, or {input name: array} for several model inputs
    y: Any = None  # (n,) class ids / labels, or (n, k) real targets
    x_test: Any = None  # the source's own test set, when it ships one (MNIST, CIFAR-10)
    y_test: Any = None
    series: Any = None  # forecasting sources: one 1-D float series instead of x/y
    class_names: list[str] | None = None
    origin: str = ""  # for messages: file or data set name


# ---------------------------------------------------------------- helpers

_need = lazy.need


# ---------------------------------------------------------------- embedded data

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # netc/data: provenance and licences in its README


def _embedded(name: str) -> dict[str, np.ndarray]:
    """The arrays of one embedded data set (netc/data/<name>.npz: plain arrays, never unpickled)."""
    import numpy as np

    path = DATA_DIR / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except OSError as e:
        raise DataError(f"the embedded data set '{name}' cannot be read ({path}): {e}",
                        hint="the netc installation is incomplete; reinstall netc") from None


def _digits(cfg: DataConfig, inputs: Inputs) -> Raw:
    import numpy as np

    d = _embedded("digits")  # scikit-learn's load_digits(), pixel counts 0..16 as uint8
    return Raw(x=d["data"].astype("float32"), y=d["target"].astype("int64"),
               class_names=[str(c) for c in np.unique(d["target"])], origin="digits")


def _sunspots(cfg: DataConfig, inputs: Inputs) -> Raw:
    s = _embedded("sunspots")["activity"]  # statsmodels' sunspots SUNACTIVITY
    return Raw(series=s.astype("float64"), origin="sunspots (yearly sunspot activity, 1700-2008)")


def _co2(cfg: DataConfig, inputs: Inputs) -> Raw:
    import numpy as np

    s = _embedded("co2")["co2"].astype("float64")  # statsmodels' co2, weekly, gaps as NaN
    gaps = np.isnan(s)
    at = np.arange(len(s))
    # Gaps filled linearly between their neighbours, ends held: pandas' interpolate(limit_direction="both").
    s[gaps] = np.interp(at[gaps], at[~gaps], s[~gaps])
    return Raw(series=s, origin="co2 (weekly Mauna Loa CO2, 1958-2001)")


# ---------------------------------------------------------------- MNIST IDX

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, limit: int = datafiles.DEFAULT_MAX_BYTES) -> np.ndarray:
    """One IDX file (optionally gzipped): magic 00 00 <type> <ndim>, big-endian dims, data."""
    import zlib

    import numpy as np

    try:
        raw = datafiles.read_bytes(path, limit, "IDX file")
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read IDX file: {e}", hint="re-download the file; .gz files must be "
                        "complete gzip streams") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})",
                        hint="expected MNIST-style files such as train-images-idx3-ubyte(.gz)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header", hint="re-download the file")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX header says {dims} {dtype.name} values ({expected} bytes) but the file "
                        f"holds {len(raw) - header} bytes of data", hint="the file is truncated or corrupt; "
                        "re-download it")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=header).reshape(dims)


def _find(directory: Path, *prefixes: str) -> Path | None:
    for c in sorted(directory.iterdir()):
        n = c.name.lower()
        if any(n.startswith(p) for p in prefixes) and "ubyte" in n:
            return c
    return None


def _idx(cfg: DataConfig, inputs: Inputs) -> Raw:
    p = _need(cfg.path, "idx")
    if p.is_dir():
        tri, trl = _find(p, "train-images"), _find(p, "train-labels")
        tei, tel = _find(p, "t10k-images", "test-images"), _find(p, "t10k-labels", "test-labels")
    else:
        tri = p
        trl = p.with_name(p.name.replace("images", "labels").replace("idx3", "idx1"))
        tei = tel = None
    if tri is None or trl is None or not trl.exists():
        raise DataError(f"{cfg.path}: no train-images/train-labels IDX pair found",
                        hint="expected train-images-idx3-ubyte and train-labels-idx1-ubyte (optionally .gz), "
                             "plus t10k-* for the test set")
    x, y = read_idx(tri, cfg.max_bytes), read_idx(trl, cfg.max_bytes)
    _same_count(x, y, tri, trl)
    raw = Raw(x=x, y=y.astype("int64"), origin=str(tri))
    if tei is not None and tel is not None:
        raw.x_test, raw.y_test = read_idx(tei, cfg.max_bytes), read_idx(tel, cfg.max_bytes).astype("int64")
        _same_count(raw.x_test, raw.y_test, tei, tel)
    if x.ndim == 3:  # (n, H, W) -> (n, 1, H, W); reshaping to the declared shape happens later
        raw.x = x[:, None]
        if raw.x_test is not None:
            raw.x_test = raw.x_test[:, None]
    return raw


def _same_count(x, y, xp, yp) -> None:
    if len(x) != len(y):
        raise DataError(f"{xp.name} holds {len(x)} samples but {yp.name} holds {len(y)} labels",
                        hint="use the images and labels files of the same set")


# ---------------------------------------------------------------- CIFAR-10 python batches

class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other class or function is refused."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 spell bytes
    })

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays and plain "
                                     "containers are allowed in a data batch")


def load_batch(path: Path, limit: int = datafiles.DEFAULT_MAX_BYTES) -> dict:
    """One CIFAR-10 python batch through the restricted unpickler (at most ``limit`` bytes read)."""
    try:
        with datafiles.open_binary(path, limit, "CIFAR-10 batch") as f:
            obj = SafeUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{path}: unsafe or corrupt batch file: {e}",
                        hint="use the original CIFAR-10 python batches (cifar-10-batches-py)") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise DataError(f"{path}: corrupt batch file: {e}", hint="re-download the CIFAR-10 python batches") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict of data and labels, found {type(obj).__name__}",
                        hint="use the original CIFAR-10 python batches (cifar-10-batches-py)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_part(files: list[Path], limit: int = datafiles.DEFAULT_MAX_BYTES):
    import numpy as np

    xs, ys = [], []
    for f in files:
        b = load_batch(f, limit)
        if "data" not in b or "labels" not in b:
            raise DataError(f"{f}: batch has keys {sorted(b)}, expected data and labels",
                            hint="use the original CIFAR-10 python batches")
        labels = b["labels"]
        # the originals hold a uint8 array and a list of ints; nested lists (which a pickle can make
        # from a few bytes of shared references) are refused before numpy expands them
        if not isinstance(b["data"], np.ndarray) or not isinstance(labels, list | np.ndarray) or \
                (isinstance(labels, list) and not all(type(v) is int for v in labels)):
            raise DataError(f"{f}: data must be a numpy array and labels a list of class ids",
                            hint="use the original CIFAR-10 python batches")
        data = b["data"]
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
            raise DataError(f"{f}: data is {data.dtype} {data.shape}, expected uint8 (n, 3072)",
                            hint="use the original CIFAR-10 python batches")
        labels = np.asarray(b["labels"], dtype=np.int64)
        _same_count(data, labels, f, f)
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def _cifar10(cfg: DataConfig, inputs: Inputs) -> Raw:
    p = _need(cfg.path, "cifar10")
    if not p.is_dir():
        raise DataError(f"{cfg.path}: expected the cifar-10-batches-py directory",
                        hint="point data.path at the directory with data_batch_1..5 and test_batch")
    train = sorted(p.glob("data_batch_*"))
    if not train:
        raise DataError(f"{cfg.path}: no data_batch_* files found",
                        hint="point data.path at the directory with data_batch_1..5 and test_batch")
    x, y = _cifar_part(train, cfg.max_bytes)
    raw = Raw(x=x, y=y, origin=str(p))
    if (p / "test_batch").exists():
        raw.x_test, raw.y_test = _cifar_part([p / "test_batch"], cfg.max_bytes)
    if (p / "batches.meta").exists():
        names = load_batch(p / "batches.meta", cfg.max_bytes).get("label_names")
        if isinstance(names, list):
            raw.class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return raw


# ---------------------------------------------------------------- NPZ

def _npz(cfg: DataConfig, inputs: Inputs) -> Raw:
    import zipfile

    import numpy as np

    p = _need(cfg.path, "npz")
    datafiles.check_zip_members(p, cfg.max_bytes)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: refused
        raise DataError(f"{p}: {e}", hint="save plain numeric arrays (np.savez(path, x=..., y=...)); "
                        "object arrays are refused because loading them would unpickle") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{p}: not a readable .npz file: {e}", hint="write it with np.savez(path, x=..., y=...)") \
            from None
    names = [n for n, _, _ in inputs]
    if len(names) > 1:
        missing = [n for n in names if n not in arrays]
        if missing:
            raise DataError(f"{p}: the model has inputs {names} but the file lacks {missing}",
                            hint=f"store one array per model input, named after it; found {sorted(arrays)}")
        x: Any = {n: arrays[n] for n in names}
    else:
        if cfg.x_key not in arrays:
            raise DataError(f"{p}: no array '{cfg.x_key}' (found {sorted(arrays)})",
                            hint="set train.data.x_key to the array holding the inputs")
        x = arrays[cfg.x_key]
    if cfg.y_key not in arrays:
        raise DataError(f"{p}: no array '{cfg.y_key}' (found {sorted(arrays)})",
                        hint="set train.data.y_key to the array holding the targets")
    return Raw(x=x, y=arrays[cfg.y_key], origin=str(p))


# ---------------------------------------------------------------- CSV, JSON Lines and Parquet tables

def _csv(cfg: DataConfig, inputs: Inputs) -> Raw:
    import numpy as np

    p = _need(cfg.path, "csv")
    table, rows = tables.read_table(p, cfg.max_bytes)
    targets, fi, li = _csv_columns(p, table.header, cfg)
    x = np.empty((len(rows), len(fi)), dtype=np.float64)
    labels = []
    for r, row in enumerate(rows):
        x[r] = _csv_row(table.at(r + table.first), row, table.header, fi)
        labels.append([row[i].strip() for i in li])
    return Raw(x=x, y=_csv_targets(p, labels, targets, cfg), origin=str(p))


def table_features(p: Path, data: DataConfig | None) -> np.ndarray:
    """The features of a CSV, JSON Lines or Parquet file of samples (``netc predict``): the training table's feature
    columns when the file has them, else every column but the training table's target columns."""
    import numpy as np

    table, rows = tables.read_table(p, datafiles.DEFAULT_MAX_BYTES)
    header = table.header
    targets = list(getattr(data, "labels", None) or [getattr(data, "label", None) or _training_label(data)])
    features = getattr(data, "features", None)
    if not (features and all(c in header for c in features)):
        features = [h for h in header if h not in targets]
    fi = [header.index(c) for c in features]
    x = np.array([_csv_row(table.at(r + table.first), row, header, fi) for r, row in enumerate(rows)],
                 dtype=np.float64).reshape(len(rows), len(fi))
    empty = np.argwhere(np.isnan(x))
    if len(empty):
        r, c = (int(v) for v in empty[0])
        raise DataError(f"{table.at(r + table.first)}: column '{features[c]}' is empty "
                        f"({len(empty)} empty cells)",
                        hint="a prediction needs every feature value: fill the cells")
    return x


def _training_label(data: DataConfig | None) -> str | None:
    """The label column of the run's training table: its last column, unless train.data.label names one."""
    path = getattr(data, "path", None)
    if not path or infer_source(path) != "csv" or not Path(path).is_file():
        return None
    header = tables.header_of(Path(path))
    return header[-1] if header else None


def _csv_columns(p: Path, header: list[str], cfg: DataConfig) -> tuple[list[str], list[int], list[int]]:
    """The target columns' names, and the feature and target column numbers, checked against the header."""
    targets = cfg.labels or [cfg.label or header[-1]]  # several: one-hot columns or several regression targets
    for label in targets:
        if label not in header:
            hint = did_you_mean(label, header)
            raise DataError(f"{p}: no column '{label}' (columns: {', '.join(header)})",
                            hint=f"{hint + ' ' if hint else ''}set train.data.label{'s' if cfg.labels else ''} to "
                                 f"the target column{'s' if cfg.labels else ''}")
    features = cfg.features or [h for h in header if h not in targets]
    for c in features:
        if c not in header:
            raise DataError(f"{p}: no feature column '{c}' (columns: {', '.join(header)})",
                            hint="fix train.data.features")
    return targets, [header.index(c) for c in features], [header.index(c) for c in targets]


def _csv_row(where: str, row: list[str], header: list[str], fi: list[int]) -> list[float]:
    """The feature values of the row at ``where`` (``Table.at``; empty cells as NaN; a row of the header's
    width, as tables checks it); a located error for a word."""
    values = []
    for i in fi:
        try:
            values.append(float(row[i]) if row[i].strip() else float("nan"))
        except ValueError:
            raise DataError(f"{where}: column '{header[i]}' holds {row[i]!r}, not a number",
                            hint="feature columns must be numeric; drop the column with "
                                 "train.data.features") from None
    return values


def _csv_targets(p: Path, labels: list[list[str]], targets: list[str], cfg: DataConfig) -> np.ndarray:
    """The target cells as numbers, or (one label column of words) as class names."""
    import numpy as np

    try:
        y = np.array([[float(v) for v in r] for r in labels])
    except ValueError:
        if cfg.labels:
            raise DataError(f"{p}: the columns {', '.join(targets)} must be numeric", hint="train.data.labels reads "
                            "numbers (one-hot rows, probabilities or several targets)") from None
        y = np.array([r[0] for r in labels])  # class names; mapped to ids in data.py
    return y[:, 0] if y.ndim == 2 and not cfg.labels else y


@dataclass
class CsvReader(lazy.Reader):
    """A CSV or JSON Lines file read on demand: the byte offset of every row, found in one pass; rows parsed
    when read."""

    path: str = ""
    offsets: Any = None  # (rows + 1,) int64: where each data row starts, then the end of the last
    header: list[str] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)  # the feature columns

    def read(self, rows: np.ndarray) -> list[np.ndarray]:
        import numpy as np

        out = np.empty((len(rows), len(self.columns)), dtype=np.float64)
        table = tables.Table(Path(self.path))
        table.header = self.header
        with open(self.path, "rb") as f:
            for i in np.argsort(rows, kind="stable"):  # in file order: reads run forward, in chunks the OS reads ahead
                r = int(rows[i])
                f.seek(int(self.offsets[r]))
                n = r + table.first
                try:
                    line = f.read(int(self.offsets[r + 1] - self.offsets[r])).decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{table.p}:{n}: cannot read: {e}", hint=tables.HINT[table.jsonl]) from None
                out[i] = _csv_row(table.at(n), table.cells(n, line), self.header, self.columns)
        return [out]


def _csv_lazy(cfg: DataConfig, inputs: Inputs) -> CsvReader | None:
    """The table's rows found without holding them (one pass: offsets and targets); None to read it whole.

    Without ``stream: true`` a file up to ``stream_above`` bytes is read whole by ``_csv``, unscanned.
    """
    import numpy as np

    p = _need(cfg.path, "csv")
    table = tables.Table(p)
    kind = table.kind
    if table.parquet:  # columnar: read whole (up to max_bytes), never row by row
        if cfg.stream:
            raise DataError(f"{p}: a Parquet file is read whole, not streamed row by row",
                            hint="set train.data.stream: false, or write the table as CSV or JSON Lines to stream it")
        return None
    size = datafiles.regular(p, kind).stat().st_size
    if not cfg.stream and (cfg.stream is False or size <= cfg.stream_above):
        return None
    if p.name.endswith(".gz"):
        raise DataError(f"{p}: a compressed {kind} cannot be read row by row",
                        hint="decompress it to stream it, or set train.data.stream: false to read it whole")
    offsets, labels = [], []
    fi: list[int] = []
    try:
        with datafiles.open_binary(p, size, kind) as f:
            at = 0
            for n, raw in enumerate(f, start=1):
                line = raw.decode("utf-8")
                if n == 1 and table.start(line) is None:  # CSV: the header row
                    at = len(raw)
                    continue
                row = table.cells(n, line)
                if n == table.first:
                    targets, fi, li = _csv_columns(p, table.header, cfg)
                table.check_width(n, row, "every row needs one value per column (quoted line breaks cannot stream)")
                offsets.append(at)
                labels.append([row[i].strip() for i in li])
                at += len(raw)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read {kind}: {e}", hint=tables.HINT[table.jsonl]) from None
    if not labels:
        raise DataError(f"{p}: needs {'a header row and ' if not table.jsonl else ''}at least one data row",
                        hint="add rows to the file")
    offsets.append(at)
    return CsvReader(y=_csv_targets(p, labels, targets, cfg), shapes=[(len(fi),)], origin=str(p), path=str(p),
                     offsets=np.array(offsets, dtype=np.int64), header=table.header, columns=fi)


# ---------------------------------------------------------------- folders, .npy directories, tar shards

def whole(reader: lazy.Reader, inputs: Inputs) -> Raw:
    """A lazy reader's every sample, for the in-memory path (the streamed path reads it batch by batch)."""
    arrays = reader.whole()
    x: Any = arrays[0] if len(arrays) == 1 else {n: a for (n, _, _), a in zip(inputs, arrays)}
    return Raw(x=x, y=reader.y, class_names=reader.class_names, origin=reader.origin)


def _folder(cfg: DataConfig, inputs: Inputs) -> Raw:
    return whole(lazy.folder(cfg, inputs), inputs)


def _npy(cfg: DataConfig, inputs: Inputs) -> Raw:
    return whole(lazy.npy(cfg, inputs), inputs)


def _tar(cfg: DataConfig, inputs: Inputs) -> Raw:
    return whole(lazy.tar(cfg, inputs), inputs)


LAZY = {**lazy.READERS, "csv": _csv_lazy}  # the sources that can stream (Source.streams): listed, not read

SOURCES: dict[str, Source] = implement(declared.SOURCES, "read", {
    "digits": _digits, "sunspots": _sunspots, "co2": _co2, "idx": _idx, "cifar10": _cifar10, "npz": _npz,
    "csv": _csv, "folder": _folder, "npy": _npy, "tar": _tar, **textread.READERS,
})


__all__ = ["DATA_DIR", "LAZY", "SOURCES", "CsvReader", "Inputs", "Raw", "SafeUnpickler", "Source", "infer_source",
           "load_batch", "read_idx", "whole"]
