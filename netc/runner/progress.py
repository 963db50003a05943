"""Progress reporting: a live bar with loss and ETA on a terminal, one plain line per epoch otherwise.

The loop calls ``due`` after every batch; the reporter only does work when at
least ``interval`` seconds have passed, so a fast loop pays one clock read per
step. Reading the loss (a device sync) happens only at those moments.

The bar is drawn by hand (one carriage-return line, ANSI colours) rather than by
rich's Progress: a rich redraw lays out a table through its console pipeline,
1.5-8 ms each, which at 10 redraws a second and three per epoch boundary put
2-5 % on a small model's epoch (bench/runner_overhead.py); this line costs
about 20 µs. It shows what rich's bar showed: epoch, bar, steps done of total,
running loss, time remaining.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # typing.Self is Python 3.11+; annotations are never evaluated at run time
    from typing import Self

BAR_WIDTH = 30
_DONE, _TODO, _RESET, _CLEAR = "\x1b[38;5;197m", "\x1b[38;5;237m", "\x1b[0m", "\r\x1b[2K"


def format_record(record: dict[str, Any]) -> str:
    """One line per epoch: 'epoch 3/10  train.loss 0.1234  val.loss 0.2  val.accuracy 0.95  lr 1e-3  1.2s'."""
    parts = [f"epoch {record['epoch']}/{record.get('epochs', '?')}"]
    for split in ("train", "val"):
        for k, v in (record.get(split) or {}).items():
            parts.append(f"{split}.{k} {v:.4g}" if isinstance(v, float) else f"{split}.{k} {v}")
    if "lr" in record:
        parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record.get('seconds', 0.0):.1f}s")
    return "  ".join(parts)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def bar_line(description: str, done: int, total: int, loss: str, eta: float | None, color: bool = True) -> str:
    """'epoch 3/10 ━━━━━━━━━━╸━━━━━━━━ 45/100 loss 0.1234 0:00:05' (the live line, without control codes)."""
    filled = BAR_WIDTH * done / total if total else BAR_WIDTH
    full = int(filled)
    head = "╸" if full < BAR_WIDTH and filled - full >= 0.5 else ""
    rest = BAR_WIDTH - full - len(head)
    bar = (f"{_DONE}{'━' * full}{head}{_TODO}{'━' * rest}{_RESET}" if color
           else "━" * full + head + " " * rest)
    return f"{description} {bar} {done}/{total} loss {loss} {_clock(eta)}"


class Progress:
    """Reports training progress; ``plain`` (no TTY) prints only epoch lines and notes."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, interval: float = 0.1,
                 plain: bool | None = None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.interval = interval
        self.plain = plain if plain is not None else not getattr(self.stream, "isatty", lambda: False)()
        self.color = "NO_COLOR" not in os.environ
        self._live = False  # a bar is on screen (or will be: an epoch is running)
        self._drawn = False  # the cursor sits at the end of a drawn bar line
        self._next = 0.0
        self._desc, self._total, self._first, self._started, self._loss = "", 0, 0, 0.0, "-"
        self._last = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self._drawn:  # leave the last bar on screen, end its line
            self._write("\n")
        self._live = self._drawn = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _bar(self) -> bool:
        return self.enabled and not self.plain

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int = 0) -> None:
        """A new epoch of ``steps`` batches begins (``done`` of them already run, when resuming mid-epoch)."""
        now = time.perf_counter()
        self._next = now + self.interval
        if self._bar():
            self._desc, self._total, self._first, self._started, self._loss = f"epoch {epoch}/{epochs}", steps, done, \
                now, "-"
            self._live = True
            self._draw(done)

    def _draw(self, done: int) -> None:
        ran = done - self._first
        eta = (time.perf_counter() - self._started) / ran * (self._total - done) if ran > 0 else None
        self._last = bar_line(self._desc, done, self._total, self._loss, eta, self.color)
        self._write(_CLEAR + self._last)
        self._drawn = True

    def due(self) -> bool:
        """True at most once per ``interval``: the loop then reads the loss and calls ``update``."""
        now = time.perf_counter()
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def update(self, step: int, loss: float | Callable[[], float]) -> None:
        """Move the bar to ``step`` batches done and show the running loss."""
        if self._bar() and self._live:
            value = loss() if callable(loss) else loss
            self._loss = f"{value:.4f}"
            self._draw(step)

    def end_epoch(self, record: dict[str, Any]) -> None:
        """Print the epoch's summary line (on a terminal, in place of the finished bar)."""
        if not self.enabled:
            return
        line = format_record(record)
        if self._bar():
            self._write(_CLEAR + line + "\n")
            self._live = self._drawn = False
        else:
            print(line, file=self.stream, flush=True)

    def note(self, message: str) -> None:
        """A one-line message (fallbacks, checkpoints, stopping reasons)."""
        if not self.enabled:
            return
        if self._drawn:  # print above the bar, then draw it again below
            self._write(_CLEAR + message + "\n" + self._last)
        else:
            print(message, file=self.stream, flush=True)
