"""Progress reporting: a rich bar with loss and ETA on a terminal, one plain line per epoch otherwise.

The loop calls ``step`` after every batch; the reporter only does work when at
least ``interval`` seconds have passed, so a fast loop pays one clock read per
step. Reading the loss (a device sync) happens only at those moments.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


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


class Progress:
    """Reports training progress; ``plain`` (no TTY) prints only epoch lines and notes."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, interval: float = 0.1,
                 plain: bool | None = None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.interval = interval
        self.plain = plain if plain is not None else not getattr(self.stream, "isatty", lambda: False)()
        self._bar: Any = None
        self._task: Any = None
        self._next = 0.0

    def __enter__(self) -> Progress:
        if self.enabled and not self.plain:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                                     console=Console(file=self.stream), transient=False,
                                     auto_refresh=False)  # no refresh thread: we redraw at our own throttled pace
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int = 0) -> None:
        """A new epoch of ``steps`` batches begins (``done`` of them already run, when resuming mid-epoch)."""
        self._next = time.perf_counter() + self.interval
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(f"epoch {epoch}/{epochs}", total=steps, completed=done, loss="-")
            self._bar.refresh()

    def due(self) -> bool:
        """True at most once per ``interval``: the loop then reads the loss and calls ``update``."""
        now = time.perf_counter()
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def update(self, step: int, loss: float | Callable[[], float]) -> None:
        """Move the bar to ``step`` batches done and show the running loss."""
        if self._bar is not None:
            value = loss() if callable(loss) else loss
            self._bar.update(self._task, completed=step, loss=f"{value:.4f}", refresh=True)

    def end_epoch(self, record: dict[str, Any]) -> None:
        """Print the epoch's summary line."""
        if not self.enabled:
            return
        line = format_record(record)
        if self._bar is not None:
            self._bar.update(self._task, completed=self._bar.tasks[-1].total,
                             loss=f"{record['train']['loss']:.4f}", refresh=True)
            self._bar.console.print(line)
        else:
            print(line, file=self.stream, flush=True)

    def note(self, message: str) -> None:
        """A one-line message (fallbacks, checkpoints, stopping reasons)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(message)
        else:
            print(message, file=self.stream, flush=True)
