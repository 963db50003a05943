"""The pass manager: registry, -O levels, explain, IR verification, failure reports, torch-free import,
and the whole pipeline checked numerically on every example and spec."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from conftest import EXAMPLES, ROOT
from equivalence import assert_equivalent, unoptimised
from pass_support import CASES, IDS, eval_graph

import netc
from netc.backend.weights import optimize_module
from netc.compiler import passes
from netc.compiler.ir import Node
from netc.compiler.passes import (
    LEVELS,
    PASSES,
    PIPELINE,
    Pass,
    PassError,
    pipeline_names,
    run_pipeline,
)
from netc.diagnostics import UsageError

CNN = "input: [3, 8, 8]\nmodel: Conv2D(4, 3) → BatchNorm → ReLU → Dropout(0.1) → Flatten → Dense(2)"


# ----------------------------------------------------------------------------- registry and levels

def test_registry_and_pipeline_agree():
    assert set(PIPELINE) == set(PASSES) and len(PIPELINE) == len(set(PIPELINE))
    for name, p in PASSES.items():
        assert p.name == name and p.level in (1, 2) and p.doc and p.run.__doc__
        assert (ROOT / "netc" / "compiler" / "passes" / f"{name}.py").exists(), "one file per pass"
        assert (ROOT / "tests" / f"test_pass_{name}.py").exists(), "one test file per pass"
        assert (ROOT / "tests" / "golden" / "passes" / f"{name}.out").exists(), "one golden per pass"


def test_levels():
    assert pipeline_names(0) == []
    assert pipeline_names(1) == ["eliminate_dropout", "eliminate_identity", "collapse_reshapes"]
    assert pipeline_names(2) == list(PIPELINE) == pipeline_names(None)
    assert LEVELS == (0, 1, 2)
    assert run_pipeline(eval_graph(CNN), 0) == eval_graph(CNN)


def test_named_passes_run_in_the_order_given():
    seen = []
    run_pipeline(eval_graph(CNN), names=["fold_batchnorm", "eliminate_dropout"], explain=lambda n, g: seen.append(n))
    assert seen == ["fold_batchnorm", "eliminate_dropout"]


def test_unknown_pass_and_level_are_usage_errors():
    with pytest.raises(UsageError) as e:
        pipeline_names(names=["fold_batchnrm"])
    assert "fold_batchnorm" in e.value.hint
    with pytest.raises(UsageError):
        pipeline_names(3)


# ----------------------------------------------------------------------------- training graphs, explain

def test_training_graph_comes_back_unchanged_from_every_pass_and_level():
    for label, g in CASES:
        train = dataclasses.replace(g, training=True)
        for p in PASSES.values():
            assert p(train) is train, (label, p.name)
        calls: list[str] = []
        assert run_pipeline(train, 2, explain=lambda n, gr, seen=calls: seen.append(n)) is train
        assert calls == []


def test_explain_names_only_the_passes_that_changed_something():
    calls: list[tuple[str, str]] = []
    out = run_pipeline(eval_graph(CNN), 2, explain=lambda n, g: calls.append((n, g.text())))
    assert [n for n, _ in calls] == ["eliminate_dropout", "fold_batchnorm", "fuse_activation",
                                     "channels_last"]
    assert calls[-1][1] == out.text()


def test_pipeline_is_idempotent():
    for label, g in CASES:
        once = run_pipeline(g, 2)
        assert run_pipeline(once, 2) == once, label


# ----------------------------------------------------------------------------- failures name the pass

def _broken(graph):
    """Reads a tensor that does not exist: an invalid graph."""
    n = graph.nodes[-1]
    return dataclasses.replace(graph, nodes=(*graph.nodes[:-1], dataclasses.replace(n, inputs=("nowhere",))))


def _crash(graph):
    raise ZeroDivisionError("boom")


@pytest.mark.parametrize(("run", "what"), [(_broken, "invalid graph"), (_crash, "ZeroDivisionError: boom")])
def test_a_failing_pass_is_named_with_the_passes_before_it(monkeypatch, run, what):
    monkeypatch.setitem(PASSES, "fold_batchnorm", Pass("fold_batchnorm", run, 2, "broken on purpose"))
    with pytest.raises(PassError) as e:
        run_pipeline(eval_graph(CNN), 2)
    msg = str(e.value)
    assert "'fold_batchnorm' failed (after eliminate_dropout, eliminate_identity, collapse_reshapes)" in msg
    assert what in msg and e.value.hint


def test_an_invalid_input_graph_is_reported_before_any_pass():
    g = eval_graph(CNN)
    with pytest.raises(PassError, match="given to the optimiser is invalid"):
        run_pipeline(dataclasses.replace(g, outputs=("missing",)), 2)


# ----------------------------------------------------------------------------- the whole pipeline, numerically

@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_optimised_module_equals_unoptimised(label, graph, level):
    after = run_pipeline(graph, level)
    if after == graph:
        pytest.skip(f"-O{level} does not change {label}")
    before = unoptimised(graph)
    fast = optimize_module(before, level)
    assert fast.netc_graph == after and not fast.training
    assert fast.netc_source_graph is graph or fast.netc_source_graph == graph
    assert_equivalent(before, fast, graph)
    assert after.params <= graph.params + sum(n.type.shape[1] for n in graph.nodes if n.op == "BatchNorm")


def test_optimize_module_takes_a_trained_state_dict():
    spec = "netc: 1\n" + CNN
    trained = netc.build(spec, train=True)
    opt = torch.optim.SGD(trained.parameters(), lr=0.1)
    for _ in range(3):  # a few steps: BatchNorm running statistics and weights move away from their defaults
        opt.zero_grad()
        trained(torch.randn(8, 3, 8, 8)).square().mean().backward()
        opt.step()
    fast = optimize_module(trained, 2)
    assert trained.training, "the trained module is left as it was"
    trained.eval()
    assert_equivalent(trained, fast, trained.netc_graph)
    # the same from a state_dict alone (e.g. loaded from a checkpoint)
    again = optimize_module(netc.build(spec, train=False), 2, state_dict=trained.state_dict())
    assert_equivalent(trained, again, trained.netc_graph)


def test_build_with_passes_uses_the_pipeline():
    m = netc.build("netc: 1\n" + CNN, train=False, passes=2)
    assert [n.op for n in m.netc_graph.nodes][:3] == ["ChannelsLast", "Conv2D", "InplaceActivation"]
    m = netc.build("netc: 1\n" + CNN, train=True, passes=2)
    assert "BatchNorm" in [n.op for n in m.netc_graph.nodes], "training builds are never optimised"


def test_compile_explain_prints_each_changing_pass(capsys):
    from netc.cli import main

    assert main(["compile", str(ROOT / "examples" / "digits_cnn.yaml"), "--format", "ir", "--explain"]) == 0
    out, err = capsys.readouterr()
    assert "# after fold_batchnorm" in err and "# after eliminate_identity" not in err
    assert "folded_from" in out and "BatchNorm" not in out


def test_passes_never_import_torch():
    files = [str(p) for p in EXAMPLES if p.exists()]
    code = ("import sys, dataclasses\n"
            "from netc.compiler.check import check_file\n"
            "from netc.compiler.passes import run_pipeline, PASSES\n"
            f"for f in {files!r}:\n"
            "    for g in check_file(f).graphs.values():\n"
            "        run_pipeline(dataclasses.replace(g, training=False), 2)\n"
            "assert 'torch' not in sys.modules, 'the passes imported torch'\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_rewritten_nodes_keep_spans():
    for label, g in CASES:
        spans = {n.span for n in g.nodes}
        for n in run_pipeline(g, 2).nodes:
            assert n.span in spans, (label, n.name)


def test_package_exports():
    assert set(passes.__all__) <= set(dir(passes))
    assert isinstance(PASSES["fold_batchnorm"], Pass)
    assert Node  # the IR type passes produce


def test_optimize_module_keeps_dtype():
    g = eval_graph(CNN)
    before = unoptimised(g).double()
    fast = optimize_module(before, 2)
    assert all(p.dtype == torch.float64 for p in fast.parameters())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), before(x), rtol=1e-12, atol=1e-12)
