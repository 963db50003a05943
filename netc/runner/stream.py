"""Streamed splits: samples read and decoded by DataLoader workers, in the order the engine chose.

A :class:`StreamSplit` is a split whose inputs stay on disk: it holds the source rows of its
samples, their targets (small, in memory) and a :class:`Stream` (the lazy reader, the per-batch
preparation: declared shape, dtype checks, normalisation). The engine draws each epoch's order and
shares it out between ranks exactly as for in-memory data; the objective then asks a
:class:`Feed` for each batch of that plan, and the workers have already read it. So the streamed
path and the in-memory path take the same steps on the same samples, a resumed run reads from
the exact next batch, and under torchrun each rank reads only its own share.

Randomness stays out of the workers: augmentation runs on the batch in the training step (as for
in-memory data), so the workers' own RNG never touches the numbers and a resume needs only the
engine's saved order and generators.

A worker's DataError comes back as a value (:class:`Failed`) and is raised in the training
process as itself; DataLoader would otherwise re-raise it with the worker's traceback as its text.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from netc.diagnostics import DataError
from netc.runner.lazy import Reader

Prepare = Callable[[list[np.ndarray]], list[np.ndarray]]  # raw arrays of a batch -> model inputs (numpy)


@dataclass(frozen=True)
class Failed:
    """A DataError raised in a worker, carried back to the training process as a value."""

    message: str
    hint: str | None


@dataclass
class Stream:
    """How a streamed split's samples are read: the reader, the per-batch preparation, the workers."""

    reader: Reader
    prepare: Prepare  # picklable (a module-level function or a partial of one): workers may be spawned
    workers: int
    pin_memory: bool = False  # CUDA: page-locked batches, copied to the device without blocking


class Rows(torch.utils.data.Dataset):
    """Positions in a split -> its samples' model inputs; ``__getitems__`` reads a whole batch at once."""

    def __init__(self, stream: Stream, rows: np.ndarray):
        self.stream, self.rows = stream, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, positions: Any) -> tuple[torch.Tensor, ...] | Failed:
        try:
            arrays = self.stream.prepare(self.stream.reader.read(self.rows[np.asarray(positions, dtype=np.int64)]))
        except DataError as e:
            return Failed(str(e.diagnostics[0].message), e.hint)
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)


def _whole_batch(batch: Any) -> Any:
    return batch  # __getitems__ already returns the collated batch


@dataclass
class StreamSplit:
    """A split read on demand: source rows, targets in memory, and how to read the inputs."""

    rows: np.ndarray  # the source rows of this split's samples, in split order
    y: torch.Tensor
    stream: Stream
    shapes: tuple[tuple[int, ...], ...] = ()  # per input: one sample's shape as the model gets it
    dtypes: tuple[torch.dtype, ...] = ()

    def __len__(self) -> int:
        return len(self.y)

    def part(self, lo: int, hi: int) -> StreamSplit:
        """Samples ``[lo, hi)`` of this split."""
        return replace(self, rows=self.rows[lo:hi], y=self.y[lo:hi])

    def head(self, k: int) -> tuple[torch.Tensor, ...]:
        """The first ``k`` samples' inputs, read in this process (probes)."""
        return _checked(Rows(self.stream, self.rows).__getitems__(np.arange(min(k, len(self)))))

    def loader(self, batches: list[np.ndarray]) -> torch.utils.data.DataLoader:
        """A DataLoader yielding the inputs of ``batches`` (lists of positions in this split), in that order."""
        workers = self.stream.workers
        return torch.utils.data.DataLoader(
            Rows(self.stream, self.rows), batch_sampler=batches, num_workers=workers,
            collate_fn=_whole_batch, pin_memory=self.stream.pin_memory,
            prefetch_factor=4 if workers else None)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """Every sample's inputs in order, ``batch_size`` at a time (evaluation)."""
        order = [np.arange(i, min(i + batch_size, len(self))) for i in range(0, len(self), batch_size)]
        feed = Feed(self, order, self.y.device)
        for _ in order:
            yield feed.take()


def _checked(got: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(got, Failed):
        raise DataError(got.message, hint=got.hint)
    return got


class Feed:
    """One pass of batches over a streamed split, read ahead by the workers; ``take`` returns the next."""

    def __init__(self, split: StreamSplit, batches: list[np.ndarray], device: torch.device):
        self.device = device
        self.it = iter(split.loader(batches)) if batches else iter(())

    def take(self) -> tuple[torch.Tensor, ...]:
        """The next batch's inputs on the device."""
        try:
            got = next(self.it)
        except RuntimeError as e:  # a worker killed (out of memory) or gone: DataLoader's own RuntimeError
            if "DataLoader worker" not in str(e):
                raise
            raise DataError(f"a data-loading worker died: {str(e).splitlines()[0]}",
                            hint="the machine may be out of memory: lower train.data.workers or "
                                 "train.batch_size") from None
        non_blocking = self.device.type == "cuda"
        return tuple(x.to(self.device, non_blocking=non_blocking) for x in _checked(got))


# ---------------------------------------------------------------- statistics in one streamed pass

class Moments:
    """Per-channel mean and variance (Chan et al.'s pairwise merge, float64) or min/max, batch by batch."""

    def __init__(self, method: str):
        self.method, self.n = method, 0
        self.a: Any = None  # mean (standard) or min
        self.b: Any = None  # sum of squared deviations (standard) or max

    def add(self, x: np.ndarray) -> None:
        """Fold in one batch (n, ...): per channel for (n, C, H, W), per feature otherwise."""
        keep = 1 if x.ndim == 4 else x.ndim - 1
        axis = tuple(i for i in range(x.ndim) if i != keep)
        x64 = x.astype(np.float64)
        count = math.prod(x.shape[i] for i in axis)
        if self.method == "standard":
            mean = x64.mean(axis=axis, keepdims=True)
            self.merge(count, mean, ((x64 - mean) ** 2).sum(axis=axis, keepdims=True))
        else:
            self.merge(count, x64.min(axis=axis, keepdims=True), x64.max(axis=axis, keepdims=True))

    def merge(self, count: int, a: Any, b: Any) -> None:
        """Fold in the moments of another part: (its count, its mean or min, its squared deviations or max)."""
        if count == 0:
            return
        if self.a is None:
            self.n, self.a, self.b = count, a, b
            return
        total = self.n + count
        if self.method == "standard":
            delta = a - self.a
            self.a = self.a + delta * (count / total)
            self.b = self.b + b + delta ** 2 * (self.n * count / total)
        else:
            self.a, self.b = np.minimum(self.a, a), np.maximum(self.b, b)
        self.n = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(shift, scale) as float32, as ``data._stats`` gives them for the whole array."""
        if self.method == "standard":
            shift, scale = self.a, np.sqrt(self.b / self.n)
        else:  # minmax -> [0, 1]; symmetric -> [-1, 1]
            lo, hi = self.a, self.b
            shift, scale = (lo, hi - lo) if self.method == "minmax" else ((hi + lo) / 2, (hi - lo) / 2)
        scale = np.where(scale > 1e-12, scale, 1.0)  # constant features stay put
        return shift.astype(np.float32), scale.astype(np.float32)


def statistics(split: StreamSplit, method: str, which: list[int], batch_size: int = 256
               ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(shift, scale) of the inputs ``which`` over the whole split, in one pass read by the workers.

    Under torchrun each rank reads its contiguous share and the ranks' moments are merged in rank
    order, so every rank gets the same statistics and no sample is read twice.
    """
    dist = torch.distributed
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    part = split
    if world > 1:
        base, extra = divmod(len(split), world)
        rank = dist.get_rank()
        lo = rank * base + min(rank, extra)
        part = split.part(lo, lo + base + (1 if rank < extra else 0))
    moments = {i: Moments(method) for i in which}
    for xs in part.batches(batch_size):
        for i in which:
            moments[i].add(xs[i].cpu().numpy())
    if world > 1:
        mine = {i: (m.n, m.a, m.b) for i, m in moments.items()}
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, mine)
        moments = {i: Moments(method) for i in which}
        for theirs in everyone:
            for i, (n, a, b) in theirs.items():
                moments[i].merge(n, a, b)
    return {i: m.result() for i, m in moments.items()}


# ---------------------------------------------------------------- sizes and workers

def default_workers(local_world: int = 1) -> int:
    """DataLoader workers per process: its share of the CPU cores minus one (the training loop), 1 to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // max(1, local_world) - 1))


def available_memory() -> int | None:
    """Bytes this process can still take: the smaller of MemAvailable and the cgroup's headroom."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
                found.append(int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


__all__ = ["Failed", "Feed", "Moments", "Rows", "Stream", "StreamSplit", "available_memory", "default_workers",
           "statistics"]
