"""Checkpoints: safetensors weights, weights-only state, atomic writes, refusals."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from netc.diagnostics import CheckpointError
from netc.runner import checkpoint as ckpt


def _model(hidden=8, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, 3))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_roundtrip_weights_and_state(tmp_path):
    m = _model(seed=1)
    opt = torch.optim.Adam(m.parameters())
    m(torch.randn(5, 4)).sum().backward()
    opt.step()
    state = {"epoch": 3, "step": 30, "best": 0.5, "optimizer": opt.state_dict(), "rng": ckpt.rng_state(),
             "history": [{"epoch": 1, "train": {"loss": 1.0}}], "config": {"epochs": 5, "metrics": None}}
    d = ckpt.save_checkpoint(tmp_path / "last", m, state)
    assert sorted(p.name for p in d.iterdir()) == ["model.safetensors", "state.pt"]
    fresh = _model(seed=2)
    assert not _same(m, fresh)
    ckpt.load_weights(fresh, d)
    assert _same(m, fresh)
    loaded = ckpt.load_state(d)
    assert loaded["epoch"] == 3 and loaded["history"] == state["history"] and loaded["config"] == state["config"]
    opt2 = torch.optim.Adam(fresh.parameters())
    opt2.load_state_dict(loaded["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert not list(tmp_path.glob(".*"))  # no temporary or .old directories left


def test_rng_state_roundtrip():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    s = ckpt.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(s)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_state_is_loadable_weights_only(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(), {"rng": ckpt.rng_state(), "gen": torch.Generator().get_state()})
    torch.load(tmp_path / "c" / "state.pt", weights_only=True)  # what load_state uses


def test_tied_weights_are_saved(tmp_path):
    m = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 5, bias=False))
    m[1].weight = m[0].weight
    ckpt.save_checkpoint(tmp_path / "t", m, {})
    other = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 5, bias=False))
    other[1].weight = other[0].weight
    ckpt.load_weights(other, tmp_path / "t")
    assert torch.equal(other[0].weight, m[0].weight)


def test_compiled_or_wrapped_models_save_plain_names(tmp_path):
    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    m = _model()
    ckpt.save_checkpoint(tmp_path / "w", Wrapper(m), {})
    names = set(ckpt.read_weights(tmp_path / "w"))
    assert names == set(m.state_dict())


# ---------------------------------------------------------------- crashes

def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    old, new = _model(seed=1), _model(seed=2)
    ckpt.save_checkpoint(tmp_path / "last", old, {"epoch": 1})
    real_replace = os.replace
    for fail_on in (1, 2):  # 1: moving the old dir aside; 2: moving the new one in
        calls = {"n": 0}

        def flaky(src, dst, _fail=fail_on):
            calls["n"] += 1
            if calls["n"] == _fail:
                raise OSError("simulated crash")
            return real_replace(src, dst)

        monkeypatch.setattr(ckpt.os, "replace", flaky)
        with pytest.raises(OSError, match="simulated crash"):
            ckpt.save_checkpoint(tmp_path / "last", new, {"epoch": 2})
        monkeypatch.setattr(ckpt.os, "replace", real_replace)
        fresh = _model(seed=3)
        ckpt.load_weights(fresh, ckpt.resolve_dir(tmp_path / "last"))
        assert _same(fresh, old)
        assert ckpt.load_state(tmp_path / "last")["epoch"] == 1
        if fail_on == 2:  # the crash left the old copy in .last.old; resolve_dir found it; repair for next round
            real_replace(tmp_path / ".last.old", tmp_path / "last")
    ckpt.save_checkpoint(tmp_path / "last", new, {"epoch": 2})  # and the next save works normally
    assert ckpt.load_state(tmp_path / "last")["epoch"] == 2


def test_crash_in_the_middle_of_a_file_write(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path / "best", _model(seed=1), {"epoch": 1})

    def torn(path, data):
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "_write_synced", torn)
    with pytest.raises(CheckpointError, match="disk full.*previous checkpoint .* is intact"):
        ckpt.save_checkpoint(tmp_path / "best", _model(seed=2), {"epoch": 2})
    assert ckpt.load_state(tmp_path / "best")["epoch"] == 1
    ckpt.load_weights(_model(), tmp_path / "best")


def test_atomic_write_leaves_old_content_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "metrics.jsonl"
    ckpt.atomic_write(p, "old\n")
    monkeypatch.setattr(ckpt.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        ckpt.atomic_write(p, "new\n")
    assert p.read_text() == "old\n" and [q.name for q in tmp_path.iterdir()] == ["metrics.jsonl"]


# ---------------------------------------------------------------- refusals

def test_mismatch_lists_keys_and_shapes(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(hidden=8), {})
    other = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 3), torch.nn.Linear(3, 2))
    with pytest.raises(CheckpointError) as e:
        ckpt.load_weights(other, tmp_path / "c")
    msg = str(e.value)
    assert "does not match the model" in msg
    assert "shape of 0.weight: checkpoint (8, 4), model (16, 4)" in msg
    assert "missing in checkpoint: 4.weight (2, 3)" in msg
    assert e.value.hint


def test_pickled_checkpoint_is_refused_unread(tmp_path):
    p = tmp_path / "model.safetensors"
    torch.save(_model().state_dict(), p)  # a torch.save zip file under the expected name
    with pytest.raises(CheckpointError, match="pickle / torch.save file; netc refuses to unpickle"):
        ckpt.load_weights(_model(), p)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    q = tmp_path / "evil.safetensors"
    q.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="refuses to unpickle"):
        ckpt.load_weights(_model(), q)
    assert not marker.exists()


def test_safetensors_whose_header_length_looks_like_pickle_magic_loads(tmp_path):
    """A 640-byte header begins the file with b'\\x80\\x02' (pickle protocol 2's magic): still safetensors."""
    import json

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (640 - len(header))
    p = tmp_path / "model.safetensors"
    p.write_bytes(len(header).to_bytes(8, "little") + header + torch.tensor([1.0, 2.0]).numpy().tobytes())
    assert p.read_bytes()[:2] == b"\x80\x02"
    assert ckpt.read_weights(p)["w"].tolist() == [1.0, 2.0]


def test_garbage_checkpoint_is_refused(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        ckpt.load_weights(_model(), p)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        ckpt.load_weights(_model(), tmp_path / "nope")


def test_unsafe_state_file_is_refused(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(), {})
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"epoch": Exploit()}, tmp_path / "c" / "state.pt")
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        ckpt.load_state(tmp_path / "c")
    assert not marker.exists()
    Path(tmp_path / "c" / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        ckpt.load_state(tmp_path / "c")


def test_a_changed_weights_file_fails_its_checksum(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(), {"epoch": 1})
    f = tmp_path / "c" / ckpt.WEIGHTS
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor's bytes: still a valid safetensors file
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the checksum netc recorded for its tensors"):
        ckpt.read_weights(tmp_path / "c")


def test_a_replaced_state_file_fails_its_checksum(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(), {"epoch": 1})
    assert ckpt.load_state(tmp_path / "c")["epoch"] == 1
    torch.save({"epoch": 7}, tmp_path / "c" / ckpt.STATE)  # valid, safe, but not the state written with these weights
    with pytest.raises(CheckpointError, match="does not match the checksum netc recorded for the training state"):
        ckpt.load_state(tmp_path / "c")


def test_checkpoints_without_checksums_still_load(tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "c").mkdir()
    save_file({k: v.contiguous() for k, v in _model().state_dict().items()}, str(tmp_path / "c" / ckpt.WEIGHTS))
    torch.save({"epoch": 2}, tmp_path / "c" / ckpt.STATE)
    assert ckpt.load_state(tmp_path / "c")["epoch"] == 2
    assert set(ckpt.read_weights(tmp_path / "c")) == set(_model().state_dict())


def test_a_fork_waits_for_the_writer_thread(tmp_path):
    """A DataLoader worker forked while a checkpoint is being written must not inherit the writer mid-write:
    before any fork, queued writes finish (the child finds the file complete)."""
    import time

    writer = ckpt.Writer()
    path = tmp_path / "slow.txt"

    def slow_write():
        time.sleep(0.3)
        path.write_text("done")

    writer._submit(slow_write)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the write had finished before the fork
        os._exit(0 if path.exists() and path.read_text() == "done" else 1)
    _, status = os.waitpid(pid, 0)
    writer.close()
    assert os.waitstatus_to_exitcode(status) == 0
