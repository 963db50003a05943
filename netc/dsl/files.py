"""Reading spec files with bounded work: regular files only, at most ``MAX_FILE_BYTES``, never trusting ``stat``.

Every path the front end opens (the spec given on the command line and each file it imports)
is read here, so a device (``/dev/zero``), a FIFO, a symlink loop, a NUL byte in a path or a
20 GB sparse file each end in one clean, located error instead of a hang or an exhausted memory.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from netc.diagnostics import Span, SpecError, UsageError

MAX_FILE_BYTES = 2_000_000  # a spec describes a model; data lives in separate files
_CHUNK = 1 << 16


def read_spec_bytes(path: str | Path, span: Span | None = None, *, label: str | None = None,
                    limit: int = MAX_FILE_BYTES, kind: str = "io") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is a SpecError at ``span``."""
    shown = label if label is not None else str(path)

    def refuse(message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, span, hint, kind=kind)

    if "\0" in str(path):
        raise refuse(f"cannot read {shown!r}: the path contains a NUL byte", "file names cannot contain NUL")
    try:
        # 1. the file's type, before opening it: opening a FIFO for reading waits for a writer forever
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise refuse(f"{shown} is a directory, not a spec file", "pass a .yaml file")
        if not stat.S_ISREG(st.st_mode):
            raise refuse(f"{shown} is not a regular file (a device, FIFO or socket)",
                         "spec files are plain files; save the text to a .yaml file")
        if st.st_size > limit:
            raise refuse(f"{shown} is {st.st_size:,} bytes; spec files are limited to {limit:,}",
                         "a spec describes a model, not data: keep data in separate files")
        # 2. open without blocking (the path may have been swapped for a FIFO since), re-check what was opened
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise refuse(f"{shown} is not a regular file (a device, FIFO or socket)",
                             "spec files are plain files; save the text to a .yaml file")
            # 3. read at most limit + 1 bytes: a size of 0 from stat (/proc, growing files) is not trusted
            chunks: list[bytes] = []
            total = 0
            while total <= limit:
                chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise refuse(f"no such file: {shown}", "check the path") from None
    except PermissionError:
        raise refuse(f"cannot read {shown}: permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise refuse(f"cannot read {shown}: too many levels of symbolic links (a symlink loop?)",
                         "point the path at a real file") from None
        raise refuse(f"cannot read {shown}: {e.strerror or e}") from None
    except ValueError as e:  # e.g. a path the OS cannot represent
        raise refuse(f"cannot read {shown}: {e}") from None
    if total > limit:
        raise refuse(f"{shown} is more than {limit:,} bytes; spec files are limited to {limit:,}",
                     "a spec describes a model, not data: keep data in separate files")
    return b"".join(chunks)


def check_output_path(output: str | Path, inputs: tuple[str | Path, ...] = (), flag: str = "-o") -> None:
    """Refuse, before any work, an output path that is one of the command's inputs or lies in a missing folder."""
    out = Path(output)
    for src in inputs:
        try:
            same = os.path.samefile(out, src) if out.exists() else out.resolve() == Path(src).resolve()
        except (OSError, RuntimeError, ValueError):
            same = False
        if same:
            raise UsageError(f"{flag} {output} would overwrite the input {src}", hint="choose another output path")
    if out.is_dir():
        raise UsageError(f"{flag} {output} is a directory", hint="name a file inside it")
    if not out.parent.is_dir():
        raise UsageError(f"{flag} {output}: cannot write there, no such directory {out.parent}",
                         hint="create it first, or pick another path")
    _fifo_has_reader(out, flag)


def _fifo_has_reader(out: Path, flag: str) -> None:
    """A FIFO as output (``-o >(gzip > f.gz)``) is fine while a process reads it; without one, opening it
    would wait forever, so probe with a non-blocking open, which fails at once (ENXIO) when nobody reads."""
    try:
        if not stat.S_ISFIFO(os.stat(out).st_mode):
            return
        fd = os.open(out, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise UsageError(f"{flag} {out} is a FIFO that no process reads; writing would wait forever",
                             hint="start its reader first, or write to a regular file") from None
        return  # missing (it is created), unreadable...: the write itself reports it
    os.close(fd)
