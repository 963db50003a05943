"""netc: a compiler for declarative neural-network spec files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build", "compile_source", "load", "load_run"]

if TYPE_CHECKING:
    from netc.api import build, compile_source, load, load_run


def __getattr__(name: str) -> Any:
    # Lazy re-exports: `import netc` stays fast and torch-free; torch loads on the first build().
    if name in ("build", "compile_source", "load", "load_run"):
        from netc import api

        return getattr(api, name)
    raise AttributeError(f"module 'netc' has no attribute {name!r}")
