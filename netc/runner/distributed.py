"""Data-parallel training on PyTorch's own engine: torchrun launches, DDP synchronises, rank 0 writes.

One process per device. ``torchrun`` (or ``netc train --nproc-per-node N``, which calls
``torch.distributed.run`` itself) starts the processes and sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init` turns that into a :class:`Dist` (NCCL on CUDA, gloo on CPU). Without
those variables, or with one process, :func:`init` returns a ``Dist`` whose helpers do nothing, so
the single-process loop runs exactly as before.

The rules, in one place:

* **Sharding.** ``train.batch_size`` is the *global* batch ``B``. Every rank draws the same seeded
  permutation per epoch and cuts it into the same global batches as a single process with batch
  ``B``; global batch ``[i*B, (i+1)*B)`` is split into ``W`` contiguous shares with
  ``Tensor.tensor_split`` (so with ``B = W*b`` each rank takes ``b`` samples; for the last, partial
  batch of ``m`` samples the first ``m % W`` ranks take one sample more). Each share's loss is
  weighted by ``W * share / m``, so DDP's gradient average equals the gradient of the global batch
  mean: the same optimizer steps as one process, no sample duplicated or dropped. A rank whose share
  is empty (``m < W``) runs one borrowed sample with weight 0, because every rank must join every
  gradient all-reduce. With ``train.accumulate: k`` each share is split the same way into ``k``
  micro-batches; gradients are all-reduced only on the last one (``no_sync`` before).
* **Metrics.** Per-step losses are averaged over ranks once per epoch (one all-reduce); outputs of
  the training epoch and of the validation/test splits (each rank evaluates a contiguous share) are
  gathered in sample order, so loss, accuracy, F1 and AUC are computed over the whole split exactly
  as one process would; rank 0's epoch record is broadcast so every rank takes the same decisions
  (schedule, best checkpoint, early stopping).
* **Files.** Only rank 0 prints, writes the run directory and reads checkpoints; what other ranks
  need (resume state, best weights) reaches them over the process group, so a run needs no shared
  file system and no rank can read a half-written file.
* **Randomness.** Dropout, augmentation and GAN noise draw from per-rank generators re-seeded at each
  epoch from ``(seed, epoch, rank)``, so a restart from an epoch checkpoint replays the same draws.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from netc.diagnostics import EXIT_INTERRUPTED, EXIT_OK, NetcError, UsageError
from netc.runner.options import LAUNCH_FLAGS, worker_argv

T = TypeVar("T")

KILL_ENV = "NETC_TEST_KILL_AT"  # tests only: "RANK:N" makes that rank exit at its N-th training forward, first attempt
_NULL = contextlib.nullcontext()


# ---------------------------------------------------------------- torchrun's environment

def restart_count() -> int:
    """How often torchrun has restarted this job's workers (0 on the first attempt or without torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def job_id() -> str | None:
    """torchrun's run id of this job (its ``--rdzv-id``), or None outside torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID")


def under_torchrun() -> bool:
    """True inside a worker started by torchrun (or another launcher that sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ


# ---------------------------------------------------------------- the process's place in the job

@dataclass(frozen=True)
class Dist:
    """This process's rank among ``world`` processes and its device; every helper is a no-op for one process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """True on rank 0, the one that prints and writes files."""
        return self.rank == 0

    # ------------------------------------------------------------ sharding

    def plan(self, chunks: Sequence[torch.Tensor], accumulate: int = 1
             ) -> list[tuple[tuple[torch.Tensor, float], ...]]:
        """Per global batch: this rank's micro-batches as (sample indices, loss weight).

        The weight is ``W * len(micro) / len(global batch)`` (1.0 for one process without accumulation);
        an empty micro-batch borrows the global batch's first sample with weight 0.
        """
        if self.world == 1 and accumulate == 1:
            return [((c, 1.0),) for c in chunks]
        steps = []
        for c in chunks:
            m = len(c)
            micro = []
            for part in c.tensor_split(self.world)[self.rank].tensor_split(accumulate):
                micro.append((part, self.world * len(part) / m) if len(part) else (c[:1], 0.0))
            steps.append(tuple(micro))
        return steps

    def positions(self, n: int, batch_size: int, first: int = 0, prefix: int = 0) -> torch.Tensor:
        """Positions (in the epoch's permutation) of the samples this rank trains on from batch ``first``,
        in the order its outputs are collected; ``prefix`` rows of already-collected outputs come first."""
        own = [p.tensor_split(self.world)[self.rank] for p in torch.arange(first * batch_size, n).split(batch_size)]
        return torch.cat([torch.arange(prefix), *own]).to(self.device)

    def rows(self, n: int) -> tuple[int, int]:
        """The contiguous rows ``[lo, hi)`` of an ``n``-row split this rank evaluates (tensor_split's rule)."""
        base, extra = divmod(n, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    # ------------------------------------------------------------ reductions

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise mean of ``t`` over ranks (``t`` itself for one process)."""
        if not self.enabled:
            return t
        t = t.detach().clone()
        torch.distributed.all_reduce(t)
        return t / self.world

    def gather_rows(self, rows: torch.Tensor, positions: torch.Tensor, total: int) -> torch.Tensor:
        """Every rank's ``rows`` placed at their ``positions``: the whole ``total``-row tensor, on every rank."""
        if not self.enabled:
            return rows
        count = torch.tensor([len(rows)], device=self.device)
        counts = [torch.zeros_like(count) for _ in range(self.world)]
        torch.distributed.all_gather(counts, count)
        sizes = [int(c) for c in counts]
        assert sum(sizes) == total, f"ranks hold {sizes} rows, expected {total} in all"
        most = max(sizes)
        padded = rows.new_zeros((most, *rows.shape[1:]))
        padded[:len(rows)] = rows
        where = positions.new_zeros(most)
        where[:len(positions)] = positions
        all_rows = [torch.empty_like(padded) for _ in range(self.world)]
        all_where = [torch.empty_like(where) for _ in range(self.world)]
        torch.distributed.all_gather(all_rows, padded)
        torch.distributed.all_gather(all_where, where)
        out = rows.new_empty((total, *rows.shape[1:]))
        for k, r, p in zip(sizes, all_rows, all_where):
            out[p[:k]] = r[:k]
        return out

    def from_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0 and its result (or its exception, raised everywhere) sent to every rank."""
        if not self.enabled:
            return fn()
        box: list[Any] = [None]
        if self.main:
            try:
                box[0] = ("ok", fn())
            except Exception as e:  # noqa: BLE001 - re-raised on every rank below
                try:
                    pickle.dumps(e)
                    box[0] = ("error", e)
                except Exception:  # noqa: BLE001 - an exception that cannot travel: send its text
                    box[0] = ("error", RuntimeError(f"{type(e).__name__}: {e}"))
        torch.distributed.broadcast_object_list(box, src=0, device=self.device)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    @contextlib.contextmanager
    def peers_lost(self):
        """Under DDP: a collective that fails (usually because another worker died) is one clear error, not a bug."""
        try:
            yield
        except RuntimeError as e:
            text = str(e)
            if not self.enabled or not (isinstance(e, torch.distributed.DistError) or any(
                    s in text.lower() for s in ("closed by peer", "remote worker", "connection reset"))):
                raise
            raise NetcError(f"rank {self.rank}: communication with the other training processes failed: "
                            f"{text.splitlines()[0]}",
                            hint="usually another worker failed (its error is above); with --max-restarts K "
                                 "torchrun restarts the job from the last checkpoint", kind="train") from None

    def broadcast_module(self, module: torch.nn.Module, buffers_only: bool = False) -> None:
        """Copy rank 0's parameters and buffers (or only buffers) into every rank's ``module``, in place."""
        if not self.enabled:
            return
        tensors = list(module.buffers()) if buffers_only else list(module.state_dict().values())
        for t in tensors:
            torch.distributed.broadcast(t.data, src=0)

    # ------------------------------------------------------------ model and randomness

    def wrap(self, model: torch.nn.Module, sync_batchnorm: bool = False,
             note: Callable[[str], None] | None = None) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (rank 0's weights and buffers reach every rank here).

        Call it after restoring a checkpoint on rank 0. One process: ``model`` unchanged.
        """
        if not self.enabled:
            return model
        if sync_batchnorm:
            if self.device.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same Parameter objects
            elif note is not None and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                          for m in model.modules()):
                note("note: train.sync_batchnorm needs CUDA (torch's SyncBatchNorm); on CPU each process "
                     "normalises with its own batch statistics")
        _kill_switch(model, self.rank)
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def no_sync(self, net: torch.nn.Module) -> Callable[[bool], contextlib.AbstractContextManager]:
        """``skip -> context``: DDP's ``no_sync()`` when ``skip`` (an accumulating micro-batch), else nothing."""
        ddp = net if isinstance(net, torch.nn.parallel.DistributedDataParallel) else getattr(net, "_orig_mod", None)
        if not isinstance(ddp, torch.nn.parallel.DistributedDataParallel):
            return lambda skip: _NULL
        return lambda skip: ddp.no_sync() if skip else _NULL

    def seed_epoch(self, seed: int, epoch: int, *generators: torch.Generator) -> None:
        """Under DDP: re-seed torch's global RNG (dropout) and ``generators`` from (seed, epoch, rank)."""
        if not self.enabled:
            return
        base = (seed * 1_000_003 + epoch * 7_919 + self.rank * 104_729) % (2**62)
        torch.manual_seed(base)
        for i, g in enumerate(generators):
            g.manual_seed(base + i + 1)


def init(device: torch.device) -> Dist:
    """This process's :class:`Dist`: from torchrun's variables, initialising the process group once.

    ``device`` is the resolved ``train.device``; under DDP on CUDA it becomes ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist(device=device)
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise UsageError(f"WORLD_SIZE is {world} but RANK is not set",
                         hint="start distributed runs with torchrun or netc train --nproc-per-node N") from None
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if restart_count() and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and \
                os.environ.get("GROUP_WORLD_SIZE", "1") == "1":
            # torchrun keeps its key-value store across restarts, so a restarted worker could read the
            # failed attempt's addresses (pytorch#135712); on one machine every worker shares the restart
            # count, so it can name a fresh key space. (Several machines: see _agent_env.)
            store, _, _ = next(torch.distributed.rendezvous("env://"))
            store = torch.distributed.PrefixStore(f"netc/attempt-{restart_count()}", store)
            torch.distributed.init_process_group(backend, store=store, rank=rank, world_size=world)
        else:
            torch.distributed.init_process_group(backend)
    return Dist(rank, world, local, device)


def teardown() -> None:
    """Leave the process group (if one was joined), once every rank is done with it."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        import gc

        torch.distributed.barrier()
        gc.collect()  # DDP wrappers hold the group: free them now, not in the interpreter's shutdown
        torch.distributed.destroy_process_group()


def _kill_switch(model: torch.nn.Module, rank: int) -> None:
    """Tests only: with NETC_TEST_KILL_AT=RANK:N, rank RANK dies at its N-th training forward on the first attempt."""
    spec = os.environ.get(KILL_ENV)
    if not spec or restart_count() > 0:
        return
    who, at = (int(v) for v in spec.split(":"))
    if who != rank:
        return
    calls = [0]

    def hook(module, args):
        if module.training:
            calls[0] += 1
            if calls[0] == at:
                os._exit(1)

    model.register_forward_pre_hook(hook)


# ---------------------------------------------------------------- launcher: netc train --nproc-per-node N

def torchrun_args(args: argparse.Namespace, worker: list[str]) -> list[str]:
    """torch.distributed.run's command line for ``args``' launcher flags, running ``python -m netc`` + ``worker``."""
    n = args.nproc_per_node
    nnodes = getattr(args, "nnodes", None) or 1
    endpoint = getattr(args, "rdzv_endpoint", None)
    node_rank = getattr(args, "node_rank", None)
    restarts = getattr(args, "max_restarts", None) or 0
    if n < 1:
        raise UsageError(f"--nproc-per-node must be at least 1, got {n}",
                         hint="one process per GPU, e.g. --nproc-per-node 8")
    if under_torchrun():
        raise UsageError("--nproc-per-node given inside a torchrun worker",
                         hint="either run torchrun ... -m netc train SPEC, or netc train SPEC --nproc-per-node N")
    out = ["--nproc-per-node", str(n), "--max-restarts", str(restarts)]
    if nnodes == 1 and endpoint is None:
        out.append("--standalone")  # local rendezvous on a free port, a fresh run id
    else:
        if endpoint is None:
            raise UsageError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (a machine every node reaches)",
                             hint="e.g. --nnodes 2 --node-rank 0 --rdzv-endpoint node0.example.com:29500")
        out += ["--nnodes", str(nnodes), "--rdzv-endpoint", endpoint]
        if node_rank is not None:  # fixed node ranks: rank 0's machine hosts the rendezvous
            out += ["--rdzv-backend", "static", "--node-rank", str(node_rank)]
        else:  # elastic rendezvous: torchrun assigns node ranks
            out += ["--rdzv-backend", "c10d"]
    return [*out, "-m", "netc", "train", *worker]


def _agent_env(args: argparse.Namespace) -> dict[str, str]:
    """Settings for torchrun's agent: with restarts on several machines, no key-value store shared across
    attempts (restart counts differ between machines there, so workers cannot tell attempts apart)."""
    if (getattr(args, "nnodes", None) or 1) > 1 and (getattr(args, "max_restarts", None) or 0) > 0:
        return {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    return {}


def worker_args(args: argparse.Namespace) -> list[str]:
    """The ``netc train`` arguments of ``args`` without the launcher flags (what each worker runs)."""
    return worker_argv(vars(args))


def launch(args: argparse.Namespace) -> int:
    """Run ``netc train`` in N worker processes through ``torch.distributed.run``; the workers' exit code."""
    argv = torchrun_args(args, worker_args(args))
    os.environ.update(_agent_env(args))
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except ChildFailedError as e:
        failures = sorted(e.failures.items())
        rank, failure = failures[0]
        code = failure.exitcode if 0 < failure.exitcode < 256 else 1
        print(f"netc: error[train]: worker rank {rank} exited with code {failure.exitcode}"
              + (f" (restarted {args.max_restarts} time(s) before)" if getattr(args, "max_restarts", None) else ""),
              file=sys.stderr)
        return code
    except SignalException:
        print("netc: interrupted; workers stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


__all__ = [
    "KILL_ENV",
    "LAUNCH_FLAGS",
    "Dist",
    "init",
    "job_id",
    "launch",
    "restart_count",
    "teardown",
    "torchrun_args",
    "under_torchrun",
    "worker_args",
]
