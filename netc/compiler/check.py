"""``netc check``'s entry points over the one front end (:mod:`netc.compiler.frontend`): files, text, ``--param``."""

from __future__ import annotations

from pathlib import Path

from netc.compiler.elaborate import DEFAULT_MAX_PARAMS
from netc.compiler.frontend import Checked, front_end
from netc.compiler.ir import Program
from netc.compiler.resources import Limits
from netc.diagnostics import Span
from netc.dsl.files import MAX_FILE_BYTES, read_spec_bytes  # noqa: F401  MAX_FILE_BYTES re-exported


def read_source(path: str | Path) -> bytes:
    """Read a spec file with bounded work (:mod:`netc.dsl.files`), turning OS errors into located SpecErrors."""
    return read_spec_bytes(path, Span(str(path), 1, 1, 1, 2))


def check_text(text: str | bytes, file: str = "<string>", max_params: int = DEFAULT_MAX_PARAMS,
               params: dict[str, object] | None = None) -> Program:
    """The checked Program of a spec (train: block included); raises SpecError with every diagnostic.

    ``params`` override the spec's ``params:`` defaults.
    """
    return front_end(text, file, params=params, limits=Limits.of(max_params)).program


def check_file(path: str | Path, max_params: int | None = None,
               params: dict[str, object] | None = None, *, limits: Limits | None = None) -> Program:
    """:func:`check_text` on a file; ``limits`` bound nodes, parameters and memory (``--max-*``)."""
    return front_end_file(path, max_params, params, limits=limits).program


def front_end_file(path: str | Path, max_params: int | None = None,
                   params: dict[str, object] | None = None, *, limits: Limits | None = None,
                   training: bool = False, sets: list[str] | None = None) -> Checked:
    """:func:`~netc.compiler.frontend.front_end` on a file: program, train config and resource estimate."""
    if limits is None:
        limits = Limits.of(max_params)
    return front_end(read_source(path), str(path), params=params, limits=limits, training=training, sets=sets)


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
