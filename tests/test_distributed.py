"""Data-parallel training on CPU (gloo, 2 processes): the same numbers as one process with the same global batch.

Run by pytest, this file is also the workers' script: the ``ddp_runs`` fixture starts
``torchrun --nproc-per-node 2 tests/test_distributed.py ROOT`` once, and every rank runs the
``SCENARIOS`` below in one process group (one launch keeps the file fast). The single-process
references are trained in this process; the tests compare the two. The elastic-restart test goes
through ``netc train --nproc-per-node 2 --max-restarts 1`` itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netc.runner import distributed
from netc.runner.cli import _build, _program, inputs_of, train_config
from netc.runner.gan import fit_gan, is_gan
from netc.runner.loop import TrainingInterrupted, evaluate, fit, seed_everything

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOL = 1e-5  # per-epoch losses: 2 processes vs 1 (float32 sums in another order)

# An MLP without BatchNorm or dropout: the two-process run must follow the single-process one.
# 1258 training samples, global batch 45: shares of 23/22 samples, a last batch of 43 (22/21).
SPEC = """\
netc: 1
name: ddp_mlp
input: [64]
model: Dense(32) → ReLU → Dense(10)
train:
  data: digits
  split: {val: 0.1, test: 0.2, seed: 0}
  optimizer: adam(lr=3e-3)
  epochs: 3
  batch_size: 45
  metrics: [accuracy, f1, auc_roc]
  checkpoint_every: 1
  plots: false
"""
# 211 training samples, global batch 35: the last batch has 1 sample, so rank 1's share is empty.
REMAINDER = ["train.data.limit=301", "train.batch_size=35", "train.epochs=2"]
LSTM = ["train.epochs=2", "train.plots=false"]
GAN = ["train.epochs=2", "train.data.limit=300", "train.batch_size=37", "train.plots=false"]
BN = ["train.epochs=1", "train.data.limit=300", "train.plots=false", "train.sync_batchnorm=true"]
INTERRUPT_AT = 28 + 5  # the 5th training forward of epoch 2 (28 steps per epoch)


def train(spec: Path, out: Path, sets: list[str] = (), resume: Path | None = None, hook=None):
    """What ``netc train`` does (seed, build, fit or fit_gan), in this process: (result, trained modules)."""
    program = _program(str(spec), None)
    cfg = train_config(program, list(sets))
    seed_everything(cfg.seed)
    if is_gan(program.graphs):
        g, d = _build(program, "generator"), _build(program, "discriminator")
        result = fit_gan(g, d, inputs_of(program.graphs["generator"]), inputs_of(program.graphs["discriminator"]),
                         cfg, out, resume=resume, progress=False)
        return result, (g, d)
    model = _build(program)
    if hook is not None:
        model.register_forward_pre_hook(hook)
    return fit(model, inputs_of(program.main), cfg, out, resume=resume, progress=False), (model,)


def scenarios(root: Path) -> list[tuple[str, Path, list[str], Path | None]]:
    """(name, spec, --set overrides, resume from) of every two-process run; each writes ROOT/name."""
    spec = root / "ddp_mlp.yaml"
    return [
        ("ddp", spec, [], None),
        ("ddp_remainder", spec, [*REMAINDER, "train.accumulate=2"], None),
        ("ddp_2epochs", spec, ["train.epochs=2"], None),  # resumed by one process in a test
        ("ddp_from_cursor", spec, [], root / "interrupted"),  # a one-process checkpoint taken mid-epoch
        ("ddp_lstm", EXAMPLES / "sunspots_lstm.yaml", LSTM, None),
        ("ddp_gan", EXAMPLES / "digits_gan.yaml", GAN, None),
        ("ddp_bn", EXAMPLES / "digits_cnn.yaml", BN, None),
    ]


def worker(root: Path) -> None:
    """One rank of the two-process job: run every scenario, then check the ranks hold the same weights."""
    torch.set_num_threads(1)
    for name, spec, sets, resume in scenarios(root):
        result, modules = train(spec, root / name, sets, resume)
        flat = torch.cat([p.detach().flatten() for m in modules for p in m.parameters()])
        everyone = [torch.empty_like(flat) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(everyone, flat)
        if torch.distributed.get_rank() == 0:
            (root / name / "ranks.json").write_text(json.dumps({
                "world": len(everyone), "same_weights": all(bool((w == flat).all()) for w in everyone),
                "history": result.history, "test": result.test}))
    distributed.teardown()


# ---------------------------------------------------------------- fixtures

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """Single-process references (here) and every two-process scenario (one torchrun launch): their root."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "ddp_mlp.yaml").write_text(SPEC, encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = root / "ddp_mlp.yaml"
        train(spec, root / "ref")
        train(spec, root / "ref_remainder", REMAINDER)
        train(EXAMPLES / "sunspots_lstm.yaml", root / "ref_lstm", LSTM)
        calls = [0]

        def ctrl_c(module, args):
            if module.training:
                calls[0] += 1
                if calls[0] == INTERRUPT_AT:
                    os.kill(os.getpid(), signal.SIGINT)

        with pytest.raises(TrainingInterrupted):
            train(spec, root / "interrupted", hook=ctrl_c)
    finally:
        torch.set_num_threads(threads)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          __file__, str(root)], capture_output=True, text=True, timeout=600, cwd=root, check=False)
    (root / "workers.log").write_text(run.stdout + run.stderr, encoding="utf-8")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[:6000]
    return root


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def assert_same_run(got: list[dict], want: list[dict], tol: float = TOL) -> None:
    """Per-epoch train/val losses within ``tol``; metrics too (relative ``tol`` for ones in data units)."""
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for g, w in zip(got, want):
        for split in ("train", "val"):
            assert set(g.get(split, {})) == set(w.get(split, {}))
            for k, v in w.get(split, {}).items():
                close = pytest.approx(v, abs=tol) if k == "loss" else pytest.approx(v, abs=tol, rel=tol)
                assert g[split][k] == close, (g["epoch"], split, k)


def assert_same_test(got: dict, want: dict, tol: float = TOL) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        close = pytest.approx(v, abs=tol) if k == "loss" else pytest.approx(v, abs=tol, rel=tol)
        assert got[k] == close, k


# ---------------------------------------------------------------- the sharding rule (no processes)

def plans(n: int, batch: int, world: int, accumulate: int):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    chunks = perm.split(batch)
    return perm, chunks, [distributed.Dist(rank=r, world=world).plan(chunks, accumulate) for r in range(world)]


@pytest.mark.parametrize("n,batch,world,accumulate", [(23, 7, 2, 1), (23, 7, 3, 2), (22, 7, 2, 3), (10, 4, 3, 1),
                                                      (1258, 45, 2, 1), (211, 35, 2, 2), (5, 5, 1, 3)])
def test_each_global_batch_is_shared_out_whole_and_weighted_to_its_mean(n, batch, world, accumulate):
    _, chunks, per_rank = plans(n, batch, world, accumulate)
    for b, chunk in enumerate(chunks):
        real = []
        for r in range(world):
            micro = per_rank[r][b]
            assert len(micro) == accumulate  # every rank joins every all-reduce
            for idx, w in micro:
                if w == 0.0:  # an empty share: one borrowed sample that adds nothing
                    assert idx.tolist() == chunk[:1].tolist()
                    continue
                # DDP averages over ranks: (1/W) * sum over micro-batches of w * mean(micro) = mean(global batch)
                assert w == pytest.approx(world * len(idx) / len(chunk))
                real += idx.tolist()
        assert real == chunk.tolist()  # contiguous shares in rank order: nothing duplicated or dropped


def test_global_batch_of_w_times_b_gives_each_rank_b_samples_in_the_single_process_order():
    _, chunks, (r0, r1) = plans(64 * 3, 64, 2, 1)
    for b, chunk in enumerate(chunks):
        assert r0[b][0][0].tolist() == chunk[:32].tolist() and r1[b][0][0].tolist() == chunk[32:].tolist()
        assert r0[b][0][1] == r1[b][0][1] == 1.0  # no loss scaling for even shares


@pytest.mark.parametrize("first", [0, 2])
def test_positions_say_where_each_collected_output_belongs(first):
    n, batch, world = 23, 7, 3
    perm, _, per_rank = plans(n, batch, world, 2)
    for r in range(world):
        d = distributed.Dist(rank=r, world=world)
        prefix = first * batch if r == 0 else 0
        # rank 0 may hold outputs of batches before ``first`` (a resumed one-process cursor), then its shares
        collected = perm[:prefix].tolist() + [i for step in per_rank[r][first:] for idx, w in step if w
                                              for i in idx.tolist()]
        assert perm[d.positions(n, batch, first, prefix)].tolist() == collected


def test_evaluation_rows_partition_a_split():
    for n in (0, 1, 2, 5, 180, 359):
        for world in (1, 2, 3):
            spans = [distributed.Dist(rank=r, world=world).rows(n) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
            assert [hi - lo for lo, hi in spans] == [len(t) for t in torch.arange(n).tensor_split(world)]


def test_one_process_helpers_change_nothing():
    d = distributed.Dist()
    assert not d.enabled and d.main
    chunks = torch.arange(10).split(4)
    assert [[(i.tolist(), w) for i, w in s] for s in d.plan(chunks)] == [[(c.tolist(), 1.0)] for c in chunks]
    t = torch.ones(3)
    assert d.mean(t) is t and d.gather_rows(t, torch.arange(3), 3) is t and d.from_main(lambda: 7) == 7
    model = torch.nn.Linear(2, 2)
    assert d.wrap(model, sync_batchnorm=True) is model
    state = torch.get_rng_state()
    d.seed_epoch(0, 1)
    assert torch.equal(state, torch.get_rng_state())  # one process keeps its RNG stream


def test_a_dead_peer_is_reported_as_such_not_as_a_bug():
    from netc.diagnostics import NetcError

    lost = RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:44466. ...")
    with pytest.raises(NetcError, match="rank 1: communication with the other training processes failed"):
        with distributed.Dist(rank=1, world=2).peers_lost():
            raise lost
    for d, error in ((distributed.Dist(), lost), (distributed.Dist(rank=1, world=2), RuntimeError("shape"))):
        with pytest.raises(RuntimeError) as e, d.peers_lost():
            raise error
        assert e.value is error  # one process, or another failure: untouched


def test_init_without_torchrun_is_a_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d = distributed.init(torch.device("cpu"))
    assert (d.rank, d.world, d.device.type) == (0, 1, "cpu") and not torch.distributed.is_initialized()


# ---------------------------------------------------------------- accumulation in one process

def test_accumulation_takes_the_same_steps_as_whole_batches(tmp_path):
    spec = tmp_path / "ddp_mlp.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    sets = ["train.epochs=2", "train.data.limit=500", "train.batch_size=40"]  # 350 samples: a last batch of 30
    whole, _ = train(spec, tmp_path / "whole", sets)
    parts, _ = train(spec, tmp_path / "parts", [*sets, "train.accumulate=3"])
    assert_same_run(parts.history, whole.history)
    assert_same_test(parts.test, whole.test)


# ---------------------------------------------------------------- launcher

def launcher_args(**kw) -> argparse.Namespace:
    base = {"file": "spec.yaml", "sets": ["train.epochs=3"], "out": "runs/x", "resume": None, "device": None,
            "force": True, "params": [], "nproc_per_node": 2, "nnodes": None, "node_rank": None,
            "rdzv_endpoint": None, "max_restarts": None}
    return argparse.Namespace(**{**base, **kw})


def test_workers_run_the_same_command_without_the_launcher_flags(monkeypatch):
    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    args = launcher_args(max_restarts=2)
    worker_cmd = distributed.worker_args(args)
    assert worker_cmd == ["spec.yaml", "--set", "train.epochs=3", "--out", "runs/x", "--force"]
    assert distributed.torchrun_args(args, worker_cmd) == [
        "--nproc-per-node", "2", "--max-restarts", "2", "--standalone", "-m", "netc", "train", *worker_cmd]


def test_multi_machine_flags_map_onto_torchrun_rendezvous(monkeypatch):
    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    fixed = distributed.torchrun_args(launcher_args(nproc_per_node=8, nnodes=2, node_rank=1,
                                                    rdzv_endpoint="node0:29500"), [])
    assert fixed[:fixed.index("-m")] == ["--nproc-per-node", "8", "--max-restarts", "0", "--nnodes", "2",
                                         "--rdzv-endpoint", "node0:29500", "--rdzv-backend", "static",
                                         "--node-rank", "1"]
    elastic = distributed.torchrun_args(launcher_args(nproc_per_node=8, nnodes=2, rdzv_endpoint="node0:29400",
                                                      max_restarts=3), [])
    assert "c10d" in elastic and "--node-rank" not in elastic and elastic[3] == "3"
    from torch.distributed.run import parse_args

    parsed = parse_args([*fixed, "train", "spec.yaml"])  # torchrun accepts what netc passes
    assert (parsed.nnodes, parsed.node_rank, parsed.rdzv_backend, parsed.module) == ("2", 1, "static", True)


def test_launcher_misuse_is_a_usage_error(monkeypatch, capsys):
    from netc.cli import main
    from netc.diagnostics import UsageError

    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UsageError, match="needs --rdzv-endpoint"):
        distributed.torchrun_args(launcher_args(nnodes=2), [])
    with pytest.raises(UsageError, match="at least 1"):
        distributed.torchrun_args(launcher_args(nproc_per_node=0), [])
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(UsageError, match="inside a torchrun worker"):
        distributed.torchrun_args(launcher_args(), [])
    assert main(["train", str(EXAMPLES / "digits_mlp.yaml"), "--nnodes", "2"]) == 2
    assert "only apply with --nproc-per-node" in capsys.readouterr().err


# ---------------------------------------------------------------- two processes

def test_two_processes_follow_one_process_epoch_by_epoch(ddp_runs):
    ddp, ref = history(ddp_runs / "ddp"), history(ddp_runs / "ref")
    assert len(ddp) == 3  # rank 0 alone wrote the log: no duplicated records
    assert_same_run(ddp, ref)
    assert_same_test(results(ddp_runs / "ddp")["test"], results(ddp_runs / "ref")["test"])
    ranks = json.loads((ddp_runs / "ddp" / "ranks.json").read_text())
    assert ranks["world"] == 2 and ranks["same_weights"]
    assert ranks["history"] == ddp and ranks["test"] == results(ddp_runs / "ddp")["test"]  # every rank agrees


def test_global_metrics_equal_one_process_metrics_on_the_same_weights(ddp_runs):
    """The DDP run's test and last validation metrics, gathered over ranks, match one process evaluating its
    best weights over the whole split."""
    from netc.runner.checkpoint import load_weights

    program = _program(str(ddp_runs / "ddp_mlp.yaml"), None)
    cfg = train_config(program)
    model = _build(program)
    load_weights(model, ddp_runs / "ddp" / "best")
    run = results(ddp_runs / "ddp")
    test = evaluate(model, inputs_of(program.main), cfg, "test")
    assert_same_test(run["test"], {k: test[k] for k in run["test"]}, tol=1e-6)
    val = evaluate(model, inputs_of(program.main), cfg, "val")
    best = history(ddp_runs / "ddp")[run["best_epoch"] - 1]["val"]
    assert_same_test(best, {k: val[k] for k in best}, tol=1e-6)


def test_uneven_shares_empty_shares_and_accumulation_follow_one_process(ddp_runs):
    assert_same_run(history(ddp_runs / "ddp_remainder"), history(ddp_runs / "ref_remainder"))
    assert_same_test(results(ddp_runs / "ddp_remainder")["test"], results(ddp_runs / "ref_remainder")["test"])
    assert json.loads((ddp_runs / "ddp_remainder" / "ranks.json").read_text())["same_weights"]


def test_regression_on_sequences_follows_one_process(ddp_runs):
    assert_same_run(history(ddp_runs / "ddp_lstm"), history(ddp_runs / "ref_lstm"))
    assert_same_test(results(ddp_runs / "ddp_lstm")["test"], results(ddp_runs / "ref_lstm")["test"], tol=1e-4)


def test_one_process_checkpoint_taken_mid_epoch_resumes_on_two(ddp_runs):
    from netc.runner.checkpoint import load_state

    state = load_state(ddp_runs / "interrupted" / "last")
    assert state["epoch"] == 1 and state["cursor"]["batch"] == 5  # rank 0 carries the outputs of batches 0-4
    assert_same_run(history(ddp_runs / "ddp_from_cursor"), history(ddp_runs / "ref"))
    assert_same_test(results(ddp_runs / "ddp_from_cursor")["test"], results(ddp_runs / "ref")["test"])


def test_two_process_checkpoint_resumes_in_one_process(ddp_runs, tmp_path):
    result, _ = train(ddp_runs / "ddp_mlp.yaml", tmp_path / "cont", resume=ddp_runs / "ddp_2epochs")
    assert_same_run(result.history, history(ddp_runs / "ref"))
    assert_same_test(result.test, results(ddp_runs / "ref")["test"])


def test_gan_trains_on_two_processes_with_identical_models(ddp_runs):
    records = history(ddp_runs / "ddp_gan")
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(math.isfinite(v) and v > 0 for r in records for v in r["train"].values())
    assert json.loads((ddp_runs / "ddp_gan" / "ranks.json").read_text())["same_weights"]
    assert (ddp_runs / "ddp_gan" / "last" / "model.safetensors").exists()


def test_batchnorm_model_trains_on_two_processes(ddp_runs):
    """BatchNorm on CPU: per-rank batch statistics (SyncBatchNorm needs CUDA); the weights stay in step."""
    ranks = json.loads((ddp_runs / "ddp_bn" / "ranks.json").read_text())
    assert ranks["same_weights"] and ranks["test"]["accuracy"] > 0.1


def test_killed_rank_is_restarted_and_the_run_ends_as_if_uninterrupted(ddp_runs):
    out = ddp_runs / "killed"
    env = {**os.environ, distributed.KILL_ENV: "1:40"}  # rank 1 dies at step 12 of epoch 2, after epoch 1's checkpoint
    run = subprocess.run([sys.executable, "-m", "netc", "train", str(ddp_runs / "ddp_mlp.yaml"), "--out", str(out),
                          "--nproc-per-node", "2", "--max-restarts", "1"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=ddp_runs, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    assert f"resuming from {out / 'last'} at the end of epoch 1" in run.stdout
    assert run.stdout.count("epoch 3/3") == 1  # only rank 0 prints
    uninterrupted = history(ddp_runs / "ddp")
    restarted = history(out)
    assert [r["epoch"] for r in restarted] == [1, 2, 3]
    assert_same_run(restarted, uninterrupted, tol=1e-12)
    assert_same_test(results(out)["test"], results(ddp_runs / "ddp")["test"], tol=1e-12)


if __name__ == "__main__":  # a torchrun worker (see ddp_runs)
    worker(Path(sys.argv[1]))
