"""Eager training without importing ``torch._dynamo`` (about 1.1-1.3 s of start-up, measured below).

Every ``torch.optim`` optimizer imports torch._dynamo on its first ``step()`` only to call
``torch._dynamo.graph_break()`` (a no-op outside tracing), and ``add_param_group`` imports it to
mark itself untraced. Nothing is traced unless ``train.compile`` is set, so the engine installs a
stand-in module that answers those calls and becomes the real torch._dynamo the moment anything
asks for more: any other attribute, or an import of one of its submodules. The swap is complete:
``sys.modules`` and ``torch._dynamo`` then hold the real package, and later code sees only it.

Measured (``python -X importtime -m netc train examples/digits_mlp.yaml --set train.epochs=1``):
torch._dynamo's cumulative import time was 1.15 s of a 3.4 s run on this 2-core machine.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import types
from typing import ClassVar

NAME = "torch._dynamo"


class _StandIn(types.ModuleType):
    """What eager optimizers use of torch._dynamo; anything else loads the real package."""

    __path__: ClassVar[list[str]] = []  # a package, so `import torch._dynamo.x` reaches our finder

    @staticmethod
    def graph_break() -> None:
        """Outside tracing, a graph break does nothing."""

    @staticmethod
    def disable(fn=None, recursive: bool = True, **kwargs):
        """Nothing is traced, so every function already runs untraced."""
        return fn if fn is not None else (lambda f: f)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(_load_real(), name)


class _Finder(importlib.abc.MetaPathFinder):
    """Loads the real torch._dynamo before any of its submodules is imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(NAME + ".") and isinstance(sys.modules.get(NAME), _StandIn):
            _load_real()
            return importlib.util.find_spec(fullname)
        return None


_FINDER = _Finder()


def _load_real() -> types.ModuleType:
    """Replace the stand-in with the real torch._dynamo (imported now) everywhere it is referenced."""
    import torch

    if isinstance(sys.modules.get(NAME), _StandIn):
        del sys.modules[NAME]
        torch.__dict__.pop("_dynamo", None)
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
    real = importlib.import_module(NAME)
    torch._dynamo = real
    return real


def install() -> None:
    """Put the stand-in in place unless torch._dynamo is already imported (then nothing changes)."""
    import torch

    if NAME in sys.modules:
        return
    stand_in = _StandIn(NAME, "netc's stand-in for torch._dynamo until something needs it")
    sys.modules[NAME] = stand_in
    torch._dynamo = stand_in
    sys.meta_path.insert(0, _FINDER)


def is_real() -> bool:
    """True when torch._dynamo is imported for real."""
    return NAME in sys.modules and not isinstance(sys.modules[NAME], _StandIn)
