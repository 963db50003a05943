"""``netc check``'s entry points over the one front end (:mod:`netc.compiler.frontend`): files, text, ``--param``."""

from __future__ import annotations

from pathlib import Path

from netc.compiler.elaborate import DEFAULT_MAX_PARAMS
from netc.compiler.frontend import Checked, front_end
from netc.compiler.ir import Program
from netc.diagnostics import SpecError, Span

MAX_FILE_BYTES = 2_000_000


def read_source(path: str | Path) -> bytes:
    """Read a spec file, turning OS errors into located SpecErrors."""
    p = Path(path)
    where = Span(str(path), 1, 1, 1, 2)
    if p.is_dir():
        raise SpecError(f"{path} is a directory, not a spec file", where, "pass a .yaml file", kind="io")
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"{path} is {size:,} bytes; spec files are limited to {MAX_FILE_BYTES:,}", where,
                            "a spec describes a model, not data: keep data in separate files", kind="io")
        return p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"no such file: {path}", None, "check the path", kind="io") from None
    except PermissionError:
        raise SpecError(f"cannot read {path}: permission denied", None, kind="io") from None
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}", None, kind="io") from None


def check_text(text: str | bytes, file: str = "<string>", max_params: int = DEFAULT_MAX_PARAMS,
               params: dict[str, object] | None = None) -> Program:
    """The checked Program of a spec (train: block included); raises SpecError with every diagnostic.

    ``params`` override the spec's ``params:`` defaults.
    """
    return front_end(text, file, params=params, max_params=max_params).program


def check_file(path: str | Path, max_params: int = DEFAULT_MAX_PARAMS,
               params: dict[str, object] | None = None) -> Program:
    """:func:`check_text` on a file."""
    return check_text(read_source(path), str(path), max_params, params)


def front_end_file(path: str | Path, max_params: int = DEFAULT_MAX_PARAMS,
                   params: dict[str, object] | None = None) -> Checked:
    """:func:`~netc.compiler.frontend.front_end` on a file: program and train config."""
    return front_end(read_source(path), str(path), params=params, max_params=max_params)


def parse_param_overrides(items: list[str]) -> dict[str, object]:
    """``["classes=100", "size=32"]`` → ``{"classes": 100, "size": 32}`` (typed as ``--set`` values are)."""
    from netc.diagnostics import UsageError
    from netc.dsl.scalars import typed_scalar

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param expects NAME=VALUE, got {item!r}", hint="e.g. --param classes=100")
        out[key.strip()] = typed_scalar(raw)
    return out
