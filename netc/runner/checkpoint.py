"""Checkpoints: weights in safetensors, training state in a weights-only torch file, written atomically.

A checkpoint is a directory (``best/`` or ``last/`` in the run directory) with

* ``model.safetensors`` -- the model's state dict (never pickled);
* ``state.pt`` -- optimizer, scheduler, RNG states, epoch, step, best value,
  history and config, made of tensors and plain values only so that
  ``torch.load(weights_only=True)`` can read it without running any code.

The directory is written as a whole: files go to a temporary sibling
(each flushed and fsynced), which then replaces the old directory with
``os.replace``. A crash at any point leaves the previous checkpoint loadable
(``resolve_dir`` also finds it in the ``.old`` slot during the swap).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import shutil
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netc.diagnostics import CheckpointError

WEIGHTS = "model.safetensors"
STATE = "state.pt"
# Integrity: model.safetensors' header metadata records the SHA-256 of its tensors and of state.pt,
# written with them and verified on every read (a checkpoint without them predates checksums).
SUM_TENSORS, SUM_STATE = "netc.sha256.tensors", "netc.sha256.state"
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ and torch.save's zip container


def _is_pickle(data: bytes) -> bool:
    """A pickle or torch.save file, not a safetensors file whose 8-byte header length happens to begin 0x80
    (a header of 640 bytes starts b'\\x80\\x02', pickle protocol 2's magic): safetensors has its JSON at byte 8."""
    if not data.startswith(_PICKLE_MAGIC):
        return False
    size = int.from_bytes(data[:8], "little")
    return not (8 + size <= len(data) and data[8:9] == b"{")


# ---------------------------------------------------------------- atomic files

def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened; rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write a file so that readers see either the old or the new content, never a torn one."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


# ---------------------------------------------------------------- weights

def weights_bytes(model: torch.nn.Module | dict[str, torch.Tensor], state: bytes | None = None) -> bytes:
    """The model's state dict serialised as safetensors (tied tensors stored once per name).

    The header records the tensors' SHA-256 (and ``state``'s, the state.pt written beside them).
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    items = model.items() if isinstance(model, dict) else _unwrap(model).state_dict().items()
    for k, v in items:
        t = v.detach().to("cpu").contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in storages:
            t = t.clone()  # tied weights: safetensors refuses names that share memory
        storages.add(t.untyped_storage().data_ptr())
        tensors[k] = t
    sums = {SUM_TENSORS: _tensors_sha256(tensors)}
    if state is not None:
        sums[SUM_STATE] = hashlib.sha256(state).hexdigest()
    return save(tensors, metadata=sums)


def _tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (CPU), in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _header(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file's header (read without the tensors); {} if unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return {}


def _damaged(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} does not match the checksum netc recorded for {what}: the file was changed or "
                           "damaged after it was written",
                           hint="use the run's other checkpoint (best/ or last/), or retrain")


def snapshot_weights(model: torch.nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of the model's state dict that later training steps cannot change."""
    items = model if isinstance(model, dict) else _unwrap(model).state_dict()
    return {k: v.detach().clone() for k, v in items.items()}


def snapshot(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples whose tensors are cloned (detached), so later in-place updates
    (optimizer steps) cannot leak into a checkpoint that is still being written."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [snapshot(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(snapshot(v) for v in obj)
    return obj


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module under torch.compile / DDP wrappers (their state-dict keys carry prefixes)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; anything else (pickles, torch.save files, garbage) is refused unread."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    p = Path(path)
    if p.is_dir():
        p = p / WEIGHTS
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}",
                              hint="pass a run's best/ or last/ directory, or its model.safetensors file")
    data = _read(p)
    if _is_pickle(data):
        raise CheckpointError(f"{p} is a pickle / torch.save file; netc refuses to unpickle checkpoints "
                              "(loading one can run arbitrary code)",
                              hint="convert it once with safetensors.torch.save_file(state_dict, "
                                   "'model.safetensors') from a source you trust")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{p} is not a valid safetensors file: {e}",
                              hint="the file is corrupt or of another format; use a checkpoint written by "
                                   "netc train") from None
    expected = _header(p).get(SUM_TENSORS)
    if expected is not None and _tensors_sha256(tensors) != expected:
        raise _damaged(p, "its tensors")
    return tensors


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load safetensors weights into ``model``; names and shapes must match exactly."""
    tensors = read_weights(path)
    target = _unwrap(model)
    expected = {k: tuple(v.shape) for k, v in target.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [k for k in expected if k in found and expected[k] != found[k]]
    if missing or unexpected or wrong:
        lines = []
        lines += [f"  shape of {k}: checkpoint {found[k]}, model {expected[k]}" for k in wrong[:10]]
        lines += [f"  missing in checkpoint: {k} {expected[k]}" for k in missing[:10]]
        lines += [f"  not in the model: {k} {found[k]}" for k in unexpected[:10]]
        more = len(wrong) + len(missing) + len(unexpected) - len(lines)
        if more > 0:
            lines.append(f"  ... and {more} more")
        raise CheckpointError(f"checkpoint {path} does not match the model:\n" + "\n".join(lines),
                              hint="load it with the spec it was trained with (same layers and sizes)")
    target.load_state_dict(tensors, strict=True)
    return model


# ---------------------------------------------------------------- RNG state (weights-only friendly)

def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as tensors and plain values."""
    py = random.getstate()
    npy = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py[0], "state": torch.from_numpy(np.array(py[1], dtype=np.int64)), "gauss": py[2]},
        "numpy": {"name": npy[0], "keys": torch.from_numpy(npy[1].astype(np.int64)), "pos": int(npy[2]),
                  "has_gauss": int(npy[3]), "cached": float(npy[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- whole checkpoints

def save_checkpoint(directory: str | Path, model: torch.nn.Module, state: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``state.pt`` into ``directory`` as one atomic step."""
    state_bytes = _state_bytes(state)
    return _write_checkpoint(Path(directory), weights_bytes(model, state_bytes), state_bytes)


def _read(path: Path) -> bytes:
    """A checkpoint file's bytes."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}",
                              hint="check the path and its permissions") from None


def _state_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _write_checkpoint(directory: Path, weights: bytes, state: bytes) -> Path:
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{directory.name}.tmp"
    old = parent / f".{directory.name}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        try:
            _write_synced(tmp / WEIGHTS, weights)
            _write_synced(tmp / STATE, state)
            _fsync_dir(tmp)
        except OSError as e:  # ENOSPC, EIO, quota: the previous checkpoint has not been touched
            kept = f"the previous checkpoint in {directory} is intact" if directory.exists() else \
                "no earlier checkpoint existed"
            raise CheckpointError(f"could not write checkpoint {directory}: {e.strerror or e}; {kept}",
                                  hint="free disk space (or fix the device) and continue with --resume") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)  # a crash from here until the next line leaves the old copy in .old
        os.replace(tmp, directory)
        _fsync_dir(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return directory


class Writer:
    """Writes checkpoints and run files on one background thread, in order, off the training loop's clock.

    The caller's thread only copies tensors (a consistent snapshot, cheap next to an epoch);
    serialisation, file writes, fsyncs and renames happen in the background, where torch ops and
    syscalls run without the GIL. ``flush`` waits and re-raises the first error. A writer made with
    ``enabled=False`` (the ranks other than 0 of a distributed run) ignores every request.
    """

    def __init__(self, enabled: bool = True) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netc-writer")
        self._pending: list[Any] = []
        self.enabled = enabled
        _WRITERS.add(self)

    def settle(self) -> None:
        """Wait until the writer thread is idle (no error raised: ``flush`` reports those)."""
        from concurrent.futures import wait

        wait(list(self._pending))

    def checkpoint(self, directory: str | Path, model: torch.nn.Module | dict[str, torch.Tensor],
                   state: dict[str, Any]) -> None:
        """Snapshot ``model`` (or a state dict) and ``state`` now; serialise and write them in the background."""
        if not self.enabled:
            return
        weights = snapshot_weights(model)
        state = snapshot(state)
        def write() -> Path:
            state_bytes = _state_bytes(state)
            return _write_checkpoint(Path(directory), weights_bytes(weights, state_bytes), state_bytes)

        self._submit(write)

    def file(self, path: str | Path, data: bytes | str) -> None:
        """Write ``path`` atomically in the background."""
        if self.enabled:
            self._submit(atomic_write, path, data)

    def _submit(self, fn, *args) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for f in done:
            f.result()  # surface a failed earlier write now
        self._pending.append(self._pool.submit(fn, *args))

    def flush(self) -> None:
        """Wait for every queued write; raise the first failure."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        for e in errors:
            if e is not None:
                raise e

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)


# A process forked while the writer thread is mid-write (a streamed epoch's DataLoader workers start
# right after the previous epoch queued its checkpoint and metrics) inherits whatever lock that thread
# held — in the allocator, a file object, the serialiser — and can wait on it forever. Before any fork,
# the live writers finish their queued writes.
_WRITERS: weakref.WeakSet[Writer] = weakref.WeakSet()


def _settle_writers() -> None:
    for w in list(_WRITERS):
        w.settle()


os.register_at_fork(before=_settle_writers)


def resolve_dir(directory: str | Path) -> Path:
    """The checkpoint directory to read: ``directory``, or its ``.old`` copy if a save was cut short."""
    directory = Path(directory)
    if (directory / WEIGHTS).exists():
        return directory
    old = directory.parent / f".{directory.name}.old"
    if (old / WEIGHTS).exists():
        return old
    raise CheckpointError(f"no checkpoint in {directory}",
                          hint="pass a run directory's best/ or last/, written by netc train")


def load_state(directory: str | Path) -> dict[str, Any]:
    """The training state of a checkpoint, read with ``torch.load(weights_only=True)``."""
    p = resolve_dir(directory) / STATE
    if not p.exists():
        raise CheckpointError(f"{p} is missing; cannot resume from weights alone",
                              hint="resume from a run directory written by netc train (it has last/state.pt)")
    data = _read(p)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError,
            TypeError) as e:  # UnpicklingError for unsafe content, the rest for corruption
        raise CheckpointError(f"{p} cannot be loaded safely: {str(e).splitlines()[0]}",
                              hint="state.pt may only hold tensors and plain values; use a file written by "
                                   "netc train") from None
    expected = _header(p.parent / WEIGHTS).get(SUM_STATE)  # after the (safe) load: a file that is no state
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:  # at all is named as such
        raise _damaged(p, "the training state")
    return state
