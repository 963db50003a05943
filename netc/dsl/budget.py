"""A per-thread work budget for the front end: a deadline and a cancel flag, checked as work is done.

The language server checks each document under a :class:`Budget`: a check that runs past its
deadline stops with one diagnostic, and a check superseded by a newer edit is cancelled, so a
slow or hostile document never holds a worker for long. ``netc check`` runs without one (its
limits are the front end's size bounds). ``check()`` costs one attribute read when no budget is
set and a clock read when one is.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from netc.diagnostics import Span, SpecError

_local = threading.local()


class Cancelled(BaseException):
    """The check was superseded (a newer edit arrived); its result is not wanted.

    A BaseException, like asyncio.CancelledError: the front end's ``except Exception`` (which turns
    bugs into diagnostics) must not catch a cancellation.
    """


class Budget:
    """``seconds`` of work for one check of ``file``; ``cancel()`` may be called from another thread."""

    def __init__(self, seconds: float | None, file: str = "<string>"):
        self.seconds, self.file = seconds, file
        self.deadline = time.perf_counter() + seconds if seconds is not None else None
        self.cancelled = False

    def cancel(self) -> None:
        """Ask the check to stop at its next ``check()``."""
        self.cancelled = True

    def check(self) -> None:
        """Raise Cancelled, or a SpecError naming the budget, when the work must stop."""
        if self.cancelled:
            raise Cancelled
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise SpecError(f"netc stopped checking this document after {self.seconds:g} s, its budget per check",
                            Span(self.file, 1, 1, 1, 2),
                            "the spec expands to very many layers; repeat fewer times (x * N) or split it into "
                            "blocks; `netc check` on the command line has no time budget", kind="resource")


@contextlib.contextmanager
def budget(b: Budget) -> Iterator[Budget]:
    """Run the block under ``b`` (in this thread)."""
    previous = getattr(_local, "budget", None)
    _local.budget = b
    try:
        yield b
    finally:
        _local.budget = previous


def check() -> None:
    """Stop the current thread's work if its budget is spent or it was cancelled (no-op without a budget)."""
    b = getattr(_local, "budget", None)
    if b is not None:
        b.check()
