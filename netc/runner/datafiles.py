"""Opening data files with bounded work: regular files only, every read and decompression capped.

Every data path the runner opens (training sources, ``netc predict`` inputs) goes through here,
so a device (``/dev/zero``), a FIFO, a compressed bomb (``.csv.gz``, ``.idx.gz``, an ``.npz``
whose members inflate to gigabytes) or an image of 16,000 × 16,000 pixels ends in one clean
error naming the limit and the setting that raises it, before the work is spent.

Limits: ``train.data.max_bytes`` (bytes read into memory, after decompression; default 2 GiB)
and ``train.data.max_pixels`` (pixels per image; default 50 million).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import BinaryIO

from netc.compiler.train.config import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from netc.diagnostics import DataError

BYTES_KEY, PIXELS_KEY = "train.data.max_bytes", "train.data.max_pixels"


def size_text(n: int) -> str:
    """A byte count as '1.5 GiB' (three significant digits)."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def too_large(path: Path | str, what: str, limit: int) -> DataError:
    """The error for data past ``train.data.max_bytes``."""
    return DataError(f"{path}: {what} more than {size_text(limit)}, the limit on data read into memory ({BYTES_KEY})",
                     hint=f"raise it with --set {BYTES_KEY}=N if the machine has the memory, or use a "
                          "smaller file (train.data.limit reads fewer samples)")


def regular(path: Path | str, what: str = "data file") -> Path:
    """``path`` if it is a regular file; a DataError for devices, FIFOs, sockets and missing files."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError(f"{what} not found: {p}", hint="check the path") from None
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}", hint="check the path and its permissions") from None
    except ValueError as e:  # a NUL byte in the path
        raise DataError(f"cannot read {p!r}: {e}", hint="check the path") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, FIFO or socket"
        raise DataError(f"{p} is not a regular file ({kind})", hint=f"pass a {what} saved on disk")
    return p


class _Capped(io.RawIOBase):
    """A read-only stream that fails once more than ``limit`` bytes have come through it."""

    def __init__(self, inner: BinaryIO, path: Path, limit: int, what: str):
        self.inner, self.path, self.limit, self.what, self.count = inner, path, limit, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        if self.count > self.limit:
            raise too_large(self.path, self.what, self.limit)
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


def open_binary(path: Path | str, limit: int = DEFAULT_MAX_BYTES, what: str = "data file") -> BinaryIO:
    """A buffered binary stream of a regular file (gunzipped when it ends in .gz), capped at ``limit`` bytes.

    Opened without blocking and checked on the open descriptor, so a path swapped for a FIFO cannot hang
    the read; one open and one fstat, since streamed image folders open thousands of files a second.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}", hint="check the path") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}", hint="check the path and its permissions") from None
    except ValueError as e:  # a NUL byte in the path
        raise DataError(f"cannot read {path!r}: {e}", hint="check the path") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, FIFO or socket"
        raise DataError(f"{path} is not a regular file ({kind})", hint=f"pass a {what} saved on disk")
    p = Path(path) if st.st_size > limit or str(path).endswith(".gz") else None
    raw: BinaryIO = os.fdopen(fd, "rb")
    if p is None:  # within the limit as it stands: the plain file
        return raw
    if p.name.endswith(".gz"):
        import gzip

        raw = gzip.GzipFile(fileobj=_Capped(raw, p, limit, "holds"), mode="rb")  # type: ignore[assignment]
        return io.BufferedReader(_Capped(raw, p, limit, "decompresses to"))  # type: ignore[return-value]
    return io.BufferedReader(_Capped(raw, p, limit, "holds"))  # type: ignore[return-value]


def read_bytes(path: Path | str, limit: int = DEFAULT_MAX_BYTES, what: str = "data file") -> bytes:
    """The whole (decompressed) content of a data file, at most ``limit`` bytes.

    A damaged .gz stream raises what gzip raises (OSError, EOFError, zlib.error): the caller names the format.
    """
    with open_binary(path, limit, what) as f:
        return f.read()


def check_zip_members(path: Path | str, limit: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse an .npz (a zip) whose members inflate past ``limit`` bytes, before numpy reads any of them."""
    import zipfile

    p = regular(path, "npz file")
    try:
        with zipfile.ZipFile(p) as z:
            total = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{p}: not a readable .npz file: {e}", hint="write it with np.savez(path, x=..., y=...)") \
            from None
    if total > limit:
        raise too_large(p, "inflates to", limit)


def check_pixels(path: Path | str, size: tuple[int, int], limit: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse an image whose header declares more than ``limit`` pixels (checked before it is decoded)."""
    w, h = size
    if w * h > limit:
        raise DataError(f"{path}: the image is {w} × {h} = {w * h:,} pixels, more than {limit:,} "
                        f"({PIXELS_KEY}, a guard against decompression bombs)",
                        hint=f"resize the image, or raise the limit with --set {PIXELS_KEY}=N")
