"""The files of a run directory, named in one place.

``netc train`` writes a self-contained directory that ``eval``, ``predict``, ``export`` and
``--resume`` read back; every reader and writer goes through :class:`RunDir`, so a file is
renamed (or added) here and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netc.diagnostics import UsageError

_HELD: set[int] = set()  # this process's run-lock descriptors


def _close_held() -> None:
    """In a forked child (a DataLoader worker): close the inherited lock descriptors.

    The lock belongs to the training process; a worker left behind by a kill -9 would otherwise
    keep it for seconds and refuse the immediate --resume.
    """
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held)


@dataclass(frozen=True)
class RunDir:
    """A run directory: ``RunDir(Path("runs/digits_cnn")).config`` is its config.json."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # a str is welcome too

    spec_name = "spec.yaml"  # the spec as trained (the run needs nothing else to be re-built)
    lock_name = ".lock"  # held by the one process that writes the run (its pid inside)
    checkpoint_names = ("best", "last", ".last.old")  # .last.old: the previous last/, while a new one is written

    @property
    def spec(self) -> Path:
        """The copy of the spec the run was trained with."""
        return self.root / self.spec_name

    @property
    def run_json(self) -> Path:
        """Where the spec came from, the model, --param values and the torchrun job id."""
        return self.root / "run.json"

    @property
    def config(self) -> Path:
        """The resolved train config, the objective, inputs and preprocessing statistics."""
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        """One JSON record per epoch."""
        return self.root / "metrics.jsonl"

    @property
    def results(self) -> Path:
        """Test metrics, report, best epoch."""
        return self.root / "results.json"

    @property
    def best(self) -> Path:
        """The checkpoint with the best monitored value."""
        return self.root / "best"

    @property
    def last(self) -> Path:
        """The latest resumable checkpoint."""
        return self.root / "last"

    @property
    def last_old(self) -> Path:
        """The previous last/, kept until a new one is complete."""
        return self.root / ".last.old"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files (train.tensorboard)."""
        return self.root / "tensorboard"

    def plot(self, name: str) -> Path:
        """A plot: loss, metrics, confusion_matrix or samples (PNG)."""
        return self.root / f"{name}.png"

    def is_empty(self) -> bool:
        """True when the directory is missing or holds nothing but its lock file."""
        return not self.root.exists() or all(p.name == self.lock_name for p in self.root.iterdir())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock while the block runs; a second writer gets a UsageError at once.

        An advisory ``flock`` on ``.lock``: the kernel releases it when the holder exits, however it
        exits (kill -9 included), so a stale lock never blocks a later run.
        """
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            yield
            return
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"{self.root} is a file, not a run directory", hint="pick another --out DIR")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / self.lock_name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                raise UsageError(f"run directory {self.root} is being written by another netc train (pid {holder})",
                                 hint="wait for that run to finish, or pick another --out DIR") from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            _HELD.add(fd)
            yield
        finally:
            _HELD.discard(fd)
            os.close(fd)

    def has_last(self) -> bool:
        """True when there is a last/ checkpoint to resume from (or its .old copy)."""
        return self.last.exists() or self.last_old.exists()

    def read(self, name: str) -> dict[str, Any]:
        """A JSON file of the run (``config``, ``run_json``, ``results``); {} when absent."""
        path: Path = getattr(self, name)
        return json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def around(cls, path: str | Path) -> RunDir | None:
        """The run directory ``path`` is, or holds a checkpoint of (``run/best``, ``run/best/model.safetensors``)."""
        p = Path(path)
        for d in (p, p.parent, p.parent.parent):
            if (d / "config.json").exists() and (d == p or p.relative_to(d).parts[0] in cls.checkpoint_names):
                return cls(d)
        return None
