"""Readers that find samples without decoding them: image folders, .npy directories, WebDataset tar shards.

Opening a reader lists what is there (file names, array headers, tar member offsets) and holds the
targets, which are small; ``read(rows)`` then decodes just those rows. The streamed path
(``stream.py``) calls ``read`` from DataLoader workers, one batch at a time; the in-memory path
calls ``whole()`` once. So each format has one reader, and a streamed run and an in-memory run of
the same files see the same numbers.

A reader is picklable (paths and offsets only, never an open file), so DataLoader workers started
with ``spawn`` get their own. Every fault is a DataError naming the file.
"""

from __future__ import annotations

import io
import math
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netc.diagnostics import DataError
from netc.runner import datafiles

if TYPE_CHECKING:
    from netc.compiler.train.config import DataConfig

Inputs = list[tuple[str, tuple[Any, ...], str]]  # (name, per-sample shape, dtype) as declared by the spec

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Reader:
    """Samples read on demand: ``read(rows)`` decodes those rows; the targets are held in memory."""

    y: np.ndarray  # targets of every sample (class ids or values), in row order
    shapes: list[tuple[int, ...]]  # per model input: one sample's shape as read (before fitting the declared one)
    origin: str  # for messages
    class_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def read(self, rows: np.ndarray) -> list[np.ndarray]:
        """The inputs of ``rows`` (source row numbers), one array per model input."""
        raise NotImplementedError

    @property
    def decoded_bytes(self) -> int:
        """Size of every sample as float32, the in-memory path's tensors."""
        return len(self.y) * sum(math.prod(s) for s in self.shapes) * 4

    def whole(self) -> list[np.ndarray]:
        """Every sample, read at once (the in-memory path)."""
        return self.read(np.arange(len(self.y)))


# ---------------------------------------------------------------- image decoding (folders and tar shards)

def image_shape(inputs: Inputs, what: str) -> tuple[int, int, int]:
    """The declared (channels, height, width) of an image source's one input."""
    shape = tuple(inputs[0][1]) if inputs else ()
    if len(shape) != 3 or not all(isinstance(d, int) for d in shape):
        raise DataError(f"{what} need a declared input shape (channels, height, width), got {shape}",
                        hint="e.g. input: {image: [3, 32, 32]}")
    if shape[0] not in (1, 3):
        raise DataError(f"{what} give 1 (grayscale) or 3 (RGB) channels, the input declares {shape[0]}",
                        hint="declare input: {image: [1, H, W]} or [3, H, W]")
    return shape  # type: ignore[return-value]


def decode_image(stream: Any, where: str, shape: tuple[int, int, int], max_pixels: int) -> np.ndarray:
    """One image file's pixels as uint8 (C, H, W): converted to the declared channels, resized if needed."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    try:
        with Image.open(stream) as im:
            datafiles.check_pixels(where, im.size, max_pixels)  # from the header, before decoding
            im = im.convert("L" if channels == 1 else "RGB")
            if im.size != (width, height):
                im = im.resize((width, height), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{where}: cannot read image: {e}", hint="remove or replace the file") from None
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


@dataclass
class FolderReader(Reader):
    """``path/<class>/*.png``: file names listed, images decoded when read.

    The names are one fixed-width bytes array, not a list of str: a few bytes per image, and a
    forked worker reading them touches no reference counts (which would copy the pages).
    """

    root: str = ""
    names: np.ndarray = field(default_factory=lambda: np.empty(0, "S1"))  # file name inside its class folder
    shape: tuple[int, int, int] = (1, 1, 1)
    max_bytes: int = datafiles.DEFAULT_MAX_BYTES
    max_pixels: int = datafiles.DEFAULT_MAX_PIXELS

    def read(self, rows: np.ndarray) -> list[np.ndarray]:
        out = np.empty((len(rows), *self.shape), dtype=np.uint8)
        classes = self.class_names or []
        for i, r in enumerate(rows):
            r = int(r)
            f = os.path.join(self.root, classes[int(self.y[r])], os.fsdecode(self.names[r]))
            with datafiles.open_binary(f, self.max_bytes, "image") as stream:
                out[i] = decode_image(stream, f, self.shape, self.max_pixels)
        return [out]


def folder(cfg: DataConfig, inputs: Inputs) -> FolderReader:
    """An image folder, one subfolder per class (sorted names are the class ids); nothing decoded yet."""
    p = need(cfg.path, "folder")
    if not p.is_dir():
        raise DataError(f"{p}: expected a directory with one subfolder per class",
                        hint="layout: path/cat/*.png, path/dog/*.png")
    classes = sorted(c.name for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
    if not classes:
        raise DataError(f"{p}: no class subfolders found", hint="layout: path/cat/*.png, path/dog/*.png")
    shape = image_shape(inputs, "image folders")
    names, ys = [], []
    for ci, c in enumerate(classes):
        found = np.array(sorted(os.fsencode(n) for n in os.listdir(p / c)
                                if os.path.splitext(n)[1].lower() in IMAGE_EXT), dtype=bytes)
        names.append(found)
        ys.append(np.full(len(found), ci, dtype=np.int64))
    if not sum(len(n) for n in names):
        raise DataError(f"{p}: no images found in {', '.join(classes)}",
                        hint=f"supported extensions: {', '.join(IMAGE_EXT)}")
    return FolderReader(y=np.concatenate(ys), shapes=[shape], origin=str(p), class_names=classes, root=str(p),
                        names=np.concatenate(names), shape=shape, max_bytes=cfg.max_bytes, max_pixels=cfg.max_pixels)


# ---------------------------------------------------------------- .npy directories

@dataclass
class NpyReader(Reader):
    """One .npy file per input: headers checked with ``np.load(mmap_mode='r')``, rows read with ``pread``.

    Reading through the mapping would leave every page touched in this process's resident set;
    ``os.pread`` at the offsets the header gives goes through the page cache instead, which the
    kernel frees under pressure, so resident memory stays flat however large the file.
    """

    files: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # where the data start, per file
    dtypes: list[str] = field(default_factory=list)

    def read(self, rows: np.ndarray) -> list[np.ndarray]:
        out = []
        for f, offset, dtype, shape in zip(self.files, self.offsets, self.dtypes, self.shapes):
            dt = np.dtype(dtype)
            row = math.prod(shape) * dt.itemsize
            buf = bytearray(row * len(rows))
            fd = os.open(f, os.O_RDONLY)
            try:
                for i, r in enumerate(rows):
                    got = os.preadv(fd, [memoryview(buf)[i * row:(i + 1) * row]], offset + int(r) * row)
                    if got != row:
                        raise DataError(f"{f}: row {int(r)} is cut short ({got} of {row} bytes)",
                                        hint="the file is truncated; write it again with np.save")
            finally:
                os.close(fd)
            out.append(np.frombuffer(buf, dtype=dt).reshape(len(rows), *shape))
        return out


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of one .npy file, checked: numeric, C order, complete."""
    datafiles.regular(path, ".npy file")
    try:
        m = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refused
        raise DataError(f"{path}: {e}", hint="save a plain numeric array with np.save; object arrays are refused "
                        "because loading them would unpickle") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file: {e}", hint="write it with np.save(path, array)") \
            from None
    if not isinstance(m, np.memmap) or m.ndim == 0:
        raise DataError(f"{path}: expected one array with a row per sample", hint="write it with np.save(path, x)")
    if m.dtype.kind not in "biuf":
        raise DataError(f"{path}: arrays of dtype {m.dtype} cannot be training data",
                        hint="save numbers (float32, uint8, int64, ...): np.save(path, x.astype('float32'))")
    if not m.flags.c_contiguous:
        raise DataError(f"{path}: the array is stored in Fortran order",
                        hint="save it in C order: np.save(path, np.ascontiguousarray(x))")
    shape, dtype, offset = tuple(m.shape), m.dtype, int(m.offset)
    del m
    return shape, dtype, offset


def npy(cfg: DataConfig, inputs: Inputs) -> NpyReader:
    """A directory of .npy files: ``<x_key>.npy`` (or one per input name) and ``<y_key>.npy``."""
    p = need(cfg.path, "npy")
    if not p.is_dir():
        raise DataError(f"{p}: expected a directory holding {cfg.x_key}.npy and {cfg.y_key}.npy",
                        hint="save them with np.save(dir / 'x.npy', x); np.save(dir / 'y.npy', y)")
    names = [n for n, _, _ in inputs] if len(inputs) > 1 else [cfg.x_key]
    found = sorted(f.name for f in p.glob("*.npy"))
    for n in [*names, cfg.y_key]:
        if not (p / f"{n}.npy").exists():
            raise DataError(f"{p}: no {n}.npy (found {', '.join(found) or 'no .npy files'})",
                            hint="set train.data.x_key / y_key to the arrays' names, or name one file per "
                                 "model input")
    ypath = p / f"{cfg.y_key}.npy"
    yshape, ydtype, _ = _npy_header(ypath)
    n = yshape[0]
    if math.prod(yshape) * ydtype.itemsize > cfg.max_bytes:
        raise datafiles.too_large(ypath, "targets file", cfg.max_bytes)
    y = np.load(ypath, allow_pickle=False)
    files, offsets, dtypes, shapes = [], [], [], []
    for nm in names:
        f = p / f"{nm}.npy"
        shape, dtype, offset = _npy_header(f)
        if shape[0] != n:
            raise DataError(f"{f} holds {shape[0]} samples but {ypath.name} holds {n} targets",
                            hint="inputs and targets must have one row per sample")
        files.append(str(f))
        offsets.append(offset)
        dtypes.append(dtype.str)
        shapes.append(shape[1:])
    return NpyReader(y=y, shapes=shapes, origin=str(p), files=files, offsets=offsets,
                     dtypes=dtypes)


# ---------------------------------------------------------------- WebDataset tar shards

@dataclass
class TarReader(Reader):
    """WebDataset shards: per sample, the (shard, offset, size) of its image or array member."""

    shards: list[str] = field(default_factory=list)
    where: np.ndarray = field(default_factory=lambda: np.empty((0, 3), np.int64))  # (shard index, offset, size)
    kinds: np.ndarray = field(default_factory=lambda: np.empty(0, "S1"))  # per sample: the member's extension
    shape: tuple[int, int, int] = (1, 1, 1)
    max_pixels: int = datafiles.DEFAULT_MAX_PIXELS

    def read(self, rows: np.ndarray) -> list[np.ndarray]:
        out = np.empty((len(rows), *self.shape), dtype=np.uint8)
        files: dict[int, Any] = {}
        try:
            for i, r in enumerate(rows):
                shard, offset, size = (int(v) for v in self.where[int(r)])
                f = files.get(shard)
                if f is None:
                    f = files[shard] = open(datafiles.regular(self.shards[shard], "tar shard"), "rb")  # noqa: SIM115
                f.seek(offset)
                data = f.read(size)
                name = f"{self.shards[shard]}: sample {int(r)}"
                if len(data) != size:
                    raise DataError(f"{self.shards[shard]}: truncated shard (a member ends after the file)",
                                    hint="copy or write the shard again")
                out[i] = _tar_sample(data, self.kinds[int(r)].decode(), name, self.shape, self.max_pixels)
        finally:
            for f in files.values():
                f.close()
        return [out]


def _tar_sample(data: bytes, kind: str, where: str, shape: tuple[int, int, int], max_pixels: int) -> np.ndarray:
    if kind != ".npy":
        return decode_image(io.BytesIO(data), where, shape, max_pixels)
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{where}: cannot read the .npy member: {e}", hint="store numeric arrays") from None
    if a.dtype.kind not in "biuf" or math.prod(a.shape) != math.prod(shape):
        raise DataError(f"{where}: the .npy member holds {a.dtype} {a.shape}, the input is declared {shape}",
                        hint="store one uint8 image (C, H, W) per sample")
    return a.reshape(shape).astype(np.uint8)


def tar(cfg: DataConfig, inputs: Inputs) -> TarReader:
    """A .tar shard or a directory of them: members indexed (headers only), class ids read from .cls members."""
    p = need(cfg.path, "tar")
    shards = sorted(str(s) for s in p.glob("*.tar")) if p.is_dir() else [str(p)]
    if not shards:
        raise DataError(f"{p}: no .tar shards found", hint="write WebDataset shards: <key>.png and <key>.cls "
                                                          "per sample, e.g. with webdataset.ShardWriter")
    shape = image_shape(inputs, "tar shards")
    where, kinds, ys = [], [], []
    for si, shard in enumerate(shards):
        datafiles.regular(shard, "tar shard")
        samples: dict[str, dict[str, Any]] = {}
        try:
            with tarfile.open(shard, "r:") as t:  # headers only: member data are skipped, never extracted
                for m in t:
                    if not m.isfile():
                        continue
                    key, _, ext = m.name.partition(".")
                    ext = "." + ext.lower()
                    if ext == ".cls":
                        f = t.extractfile(m)
                        text = f.read(64).decode("ascii", "replace").strip() if f is not None else ""
                        samples.setdefault(key, {})["cls"] = text
                    elif ext in (*IMAGE_EXT, ".npy"):
                        samples.setdefault(key, {})["data"] = (m.offset_data, m.size, ext)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{shard}: cannot read tar shard: {e}", hint="the shard is truncated or not a tar "
                            "file; write it again") from None
        end = os.path.getsize(shard)
        for key, s in samples.items():
            if "data" not in s or "cls" not in s:
                raise DataError(f"{shard}: sample '{key}' lacks {'its image or array' if 'data' not in s else 'a .cls'}"
                                " member", hint="each sample needs <key>.png (or .jpg, .npy) and <key>.cls")
            offset, n, ext = s["data"]
            if offset + n > end:
                raise DataError(f"{shard}: truncated shard (sample '{key}' ends after the file)",
                                hint="copy or write the shard again")
            try:
                ys.append(int(s["cls"]))
            except ValueError:
                raise DataError(f"{shard}: sample '{key}' has class {s['cls']!r}, not an integer id",
                                hint="write the class id as text, e.g. b'3'") from None
            where.append((si, offset, n))
            kinds.append(ext.encode())
    if not where:
        raise DataError(f"{p}: the shards hold no samples", hint="each sample needs <key>.png and <key>.cls")
    return TarReader(y=np.array(ys, dtype=np.int64), shapes=[shape], origin=str(p),
                     shards=shards, where=np.array(where, dtype=np.int64), kinds=np.array(kinds, dtype=bytes), shape=shape,
                     max_pixels=cfg.max_pixels)


# ---------------------------------------------------------------- helpers

def need(path: str | None, what: str) -> Path:
    """The source's path, which must exist."""
    if not path:
        raise DataError(f"the {what} source needs train.data.path", hint=f"e.g. data: {{source: {what}, path: ...}}")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data file not found: {path}",
                        hint="check train.data.path (relative paths are resolved from the spec file's folder)")
    return p


READERS = {"folder": folder, "npy": npy, "tar": tar}  # the sources that can stream (Source.streams)


__all__ = ["IMAGE_EXT", "READERS", "FolderReader", "NpyReader", "Reader", "TarReader", "decode_image", "folder",
           "image_shape", "need", "npy", "tar"]
