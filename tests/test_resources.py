"""One resource policy (issue 21): memory, parameters and nodes refused alike by check, summary, compile and train."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netc.cli import main
from netc.compiler import resources
from netc.compiler.check import check_text, front_end_file
from netc.compiler.frontend import front_end
from netc.compiler.resources import Limits, estimate, parse_size
from netc.diagnostics import SpecError
from netc.dsl import spec as dsl_spec
from netc.runner.options import TRAIN_OPTIONS, worker_argv

ROOT = Path(__file__).resolve().parent.parent
GiB = 2**30
AVAILABLE_MEMORY = resources.available_memory  # before the fixture replaces it
TRAIN = "train:\n  data: {source: npz, path: d.npz}\n  batch_size: 32\n"


@pytest.fixture(autouse=True)
def machine_with_24_gib(monkeypatch):
    """The default limit as on this 24 GiB machine, whatever the test machine has free."""
    monkeypatch.setattr(resources, "available_memory", lambda: (24 * GiB, "memory available now"))


def spec(model: str, inp: str, train: str = "") -> str:
    return f"netc: 1\nname: m\ninput: {{x: {inp}}}\nmodel: {model}\n{train}"


def refusal(text: str, **kw) -> str:
    """The one resource diagnostic of ``text``, rendered with its line and carets."""
    with pytest.raises(SpecError) as e:
        front_end(text, "s.yaml", **kw)
    (d,) = e.value.diagnostics
    assert d.kind == "resource" and d.span is not None, d
    return d.render(text) + "\n  hint: " + (d.hint or "")


# ----------------------------------------------------------------------------- the cases

def test_dense_60000_on_60000_wide_input():
    # 3.6e9 weights: 14.4 GB to run; to train with Adam, weights + gradients + two moments: 57.6 GB
    est = estimate(check_text(spec("Dense(60000)", "[60000]")))
    assert est.parts["parameters"] == 3_600_060_000 * 4 and not est.training
    msg = refusal(spec("Dense(60000) → Dense(10)", "[60000]", TRAIN))
    assert "needs about 58.1 GB to train at batch 32" in msg and "adam state 28.8 GB" in msg
    assert "57.8 GB of it for Dense(60000)" in msg and "the limit is 25.8 GB (memory available now)" in msg
    assert "s.yaml:4:8" in msg and "--max-memory 59GB" in msg
    # to run, it fits 24 GiB; a smaller limit refuses it
    check_text(spec("Dense(60000)", "[60000]"))
    msg = refusal(spec("Dense(60000)", "[60000]"), limits=Limits(max_memory=8 * 10**9))
    assert "needs about 14.4 GB to run at batch 1" in msg and "the limit is 8.0 GB (--max-memory)" in msg


def test_ten_dense_20000_are_refused_together_at_the_model():
    text = spec("Dense(20000) * 10", "[20000]")
    msg = refusal(text)  # 4,000,200,000 parameters: past the default --max-params, though each layer is not
    assert "model 'm' holds 4,000,200,000 parameters (16.0 GB in float32); the limit is 4,000,000,000" in msg
    assert "the largest part is Dense(20000) at line 4" in msg and "--max-params" in msg
    msg = refusal(text, limits=Limits(max_params=5 * 10**9, max_memory=10 * 10**9))
    assert "needs about 16.0 GB to run" in msg and "the largest part is Dense(20000) at line 4 (1.6 GB)" in msg
    assert "s.yaml:4:1" in msg  # no op holds half: the model line


def test_transformer_encoder_of_a_million_wide_model():
    msg = refusal(spec("TransformerEncoder(1, 8)", "[16, 1000000]"))
    assert "TransformerEncoder would hold" in msg and "--max-params" in msg and "s.yaml:4:8" in msg


def test_attention_over_30000_steps_counts_its_score_matrices():
    msg = refusal(spec("MultiHeadAttention(16) → SeqPool(mean) → Dense(10)", "[30000, 64]"))
    # 16 heads x 30,000 x 30,000 float32 scores per sample
    assert "needs about 57.6 GB to run at batch 1" in msg and "57.6 GB of it for MultiHeadAttention(16)" in msg
    assert "s.yaml:4:8" in msg


def test_conv_producing_4_3_gb_per_sample():
    model = "Conv2D(64, 3, padding=same) → GlobalAvgPool → Dense(10)"
    est = estimate(check_text(spec(model, "[3, 4096, 4096]")))
    assert est.parts["activations"] >= 64 * 4096 * 4096 * 4  # 4.3 GB alive at batch 1
    msg = refusal(spec(model, "[3, 4096, 4096]", "train:\n  data: {source: npz, path: d.npz}\n  batch_size: 8\n  eval_batch_size: 8\n"))
    assert "to train at batch 8" in msg and "Conv2D(64, 3, padding=same)" in msg
    assert "train.batch_size" in msg  # the batch makes it big: the hint says which setting
    msg = refusal(spec(model, "[3, 4096, 4096]"), limits=Limits(max_memory=4 * 10**9))
    assert "Conv2D(64, 3, padding=same)" in msg and "s.yaml:4:8" in msg


def test_evaluation_batch_is_counted_when_it_is_the_peak():
    text = spec("Conv2D(64, 3, padding=same) → GlobalAvgPool → Dense(10)", "[3, 1024, 1024]", TRAIN)
    msg = refusal(text)
    assert "activations (evaluation at batch 1024)" in msg and "train.eval_batch_size" in msg


def test_training_adds_gradients_and_the_optimizers_state():
    for opt, copies in [("adam", 2), ("adamw(amsgrad=true)", 3), ("sgd", 0), ("sgd(momentum=0.9)", 1),
                        ("rmsprop(centered=true)", 2)]:
        est = front_end(spec("Dense(100)", "[100]", f"train:\n  data: {{source: npz, path: d.npz}}\n  optimizer: {opt}\n"),
                        "s.yaml").resources
        name = opt.partition("(")[0]
        assert est.parts["gradients"] == est.parts["parameters"] == 10_100 * 4
        assert est.parts[f"{name} state"] == 10_100 * 4 * copies, opt


def test_inference_peak_frees_tensors_after_their_last_use():
    # a chain keeps at most two tensors alive; a residual keeps its input until the Add
    chain = estimate(check_text(spec("Dense(1000) → ReLU → ReLU → ReLU", "[1000]")))
    assert chain.parts["activations"] == 2 * 1000 * 4
    train = front_end(spec("Dense(1000) → ReLU → ReLU → ReLU", "[1000]", TRAIN), "s.yaml").resources
    assert train.parts["activations (evaluation at batch 1024)"] == 1024 * 2 * 1000 * 4


# ----------------------------------------------------------------------------- one policy, four commands

CASES = [("dense60k.yaml", spec("Dense(60000)", "[60000]"), ["--max-memory", "8GB"], "--max-memory"),
         ("tenwide.yaml", spec("Dense(20000) * 10", "[20000]"), [], "--max-params"),
         ("attention.yaml", spec("MultiHeadAttention(16) → SeqPool(mean) → Dense(10)", "[30000, 64]"), [],
          "--max-memory")]


@pytest.mark.parametrize("command", ["check", "summary", "compile"])
@pytest.mark.parametrize("name,text,flags,flag", CASES)
def test_check_summary_and_compile_refuse_alike(tmp_path, capsys, command, name, text, flags, flag):
    path = tmp_path / name
    path.write_text(text)
    assert main([command, str(path), *flags]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4:" in err and "error[resource]" in err and flag in err and "internal" not in err


def test_limits_can_be_raised_on_every_command(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(spec("Dense(64) * 3", "[64]"))
    for command in ("check", "summary", "compile"):
        assert main([command, str(path), "--max-memory", "1GB", "--max-params", "20000", "--max-nodes", "10"]) == 0
        assert main([command, str(path), "--max-params", "10000"]) == 1
        assert "the limit is 10,000" in capsys.readouterr().err
        assert main([command, str(path), "--max-memory", "10KB"]) == 1
        assert "the limit is 10.0 KB (--max-memory)" in capsys.readouterr().err


def test_bad_limit_values_are_usage_errors(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(spec("Dense(8)", "[8]"))
    for flags in (["--max-memory", "lots"], ["--max-params", "0"], ["--max-nodes", "-3"]):
        with pytest.raises(SystemExit) as e:
            main(["check", str(path), *flags])
        assert e.value.code == 2
        assert "error[cli]" in capsys.readouterr().err


def test_train_refuses_before_building_anything(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(spec("Dense(64) → Dense(10)", "[64]", TRAIN))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--max-memory", "100KB"]) == 1
    err = capsys.readouterr().err
    assert "needs about" in err and "to train at batch 32" in err and "--max-memory" in err
    assert not out.exists()
    # --set is applied before the estimate: a smaller batch is a smaller estimate
    big = front_end_file(path, training=True, sets=["train.batch_size=4096"]).resources
    small = front_end_file(path, training=True, sets=["train.batch_size=1", "train.eval_batch_size=1"]).resources
    assert big.total > small.total and small.batch == 1


def test_train_estimates_training_even_without_a_train_block(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(spec("Dense(64)", "[64]"))
    assert not front_end_file(path).resources.training
    est = front_end_file(path, training=True).resources
    assert est.training and est.batch == 64 and est.parts["adam state"] == 2 * est.parts["parameters"]


def test_train_options_carry_the_limits_to_ddp_workers():
    names = {o.flags[0] for o in TRAIN_OPTIONS if o.flags}
    assert {"--max-memory", "--max-params", "--max-nodes"} <= names
    argv = worker_argv({"file": "s.yaml", "sets": [], "params": [], "max_memory": 8 * 10**9, "max_params": 5})
    assert argv[argv.index("--max-memory") + 1] == str(8 * 10**9) and "--max-params" in argv


def test_no_example_or_library_spec_is_refused_on_a_24_gib_machine():
    files = sorted((ROOT / "examples").glob("**/*.yaml")) + sorted((ROOT / "specs").glob("**/*.yaml"))
    assert files
    for f in files:
        est = front_end_file(f).resources  # raises if refused
        assert est.total < 4 * GiB, f


# ----------------------------------------------------------------------------- limits and sizes

def test_parse_size():
    assert parse_size("24GB") == 24 * 10**9 and parse_size("16GiB") == 16 * GiB and parse_size("512m") == 512 * 10**6
    assert parse_size("1.5e9") == 1_500_000_000 and parse_size("100") == 100
    for bad in ("", "lots", "-1GB", "0", "1e999", "9" * 40, "12XB"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_available_memory_reads_the_platform_torch_free():
    n, source = resources.Limits().memory()  # the fixture's 24 GiB: the default limit is available memory
    assert n == 24 * GiB and source == "memory available now"
    code = "from netc.compiler.resources import available_memory; import sys; n, s = available_memory(); " \
           "assert n > 0 and s, (n, s); assert 'torch' not in sys.modules; print(n)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert int(out.stdout) > 0


def test_available_memory_falls_back_without_proc(monkeypatch):
    import builtins

    real_open = builtins.open

    def no_proc(path, *a, **k):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    n, source = AVAILABLE_MEMORY()  # sysconf, else the stated default
    assert n > 0 and source
    monkeypatch.setattr(resources.os, "sysconf", lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert AVAILABLE_MEMORY() == (resources.FALLBACK_MEMORY, "the default limit (the platform reports no memory size)")


# ----------------------------------------------------------------------------- import count and depth

def test_import_chain_deeper_than_the_limit_is_refused(tmp_path):
    n = dsl_spec.MAX_IMPORT_DEPTH + 4
    for i in range(n):
        body = f"netc: 1\nimports: {{nx: f{i + 1}.yaml}}\nblocks:\n  B{i}: nx.B{i + 1}\n" if i + 1 < n else \
            f"netc: 1\nblocks:\n  B{i}: Dense(4)\n"
        (tmp_path / f"f{i}.yaml").write_text(body)
    top = tmp_path / "top.yaml"
    top.write_text("netc: 1\nname: t\nimports: {a: f0.yaml}\ninput: {x: [4]}\nmodel: a.B0\n")
    with pytest.raises(SpecError) as e:
        front_end_file(top)
    deep = [d for d in e.value.diagnostics if d.kind == "resource"]
    assert deep and f"imports nest more than {dsl_spec.MAX_IMPORT_DEPTH} files deep" in deep[0].message
    assert deep[0].span is not None
    # a chain within the limit is fine
    first = n - dsl_spec.MAX_IMPORT_DEPTH + 1  # the chain from here holds MAX_IMPORT_DEPTH files with ok.yaml
    (tmp_path / "ok.yaml").write_text(
        f"netc: 1\nname: t\nimports: {{a: f{first}.yaml}}\ninput: {{x: [4]}}\nmodel: a.B{first}\n")
    front_end_file(tmp_path / "ok.yaml")


def test_import_count_is_bounded_with_repeats_and_failures_counted(tmp_path, capsys):
    (tmp_path / "lib.yaml").write_text("netc: 1\nblocks:\n  L: Dense(4)\n")
    n = dsl_spec.MAX_IMPORTS + 10
    wide = tmp_path / "wide.yaml"
    wide.write_text("netc: 1\nname: w\nimports:\n" + "".join(f"  a{i}: lib.yaml\n" for i in range(n))
                    + "input: {x: [4]}\nmodel: a0.L\n")
    assert main(["check", str(wide)]) == 1
    err = capsys.readouterr().err
    assert f"imports more than {dsl_spec.MAX_IMPORTS} files" in err and f"wide.yaml:{4 + dsl_spec.MAX_IMPORTS}:" in err
    # a tree of failing imports, two distinct files per level each importing both of the next: 2^14 paths,
    # bounded work and each error reported once
    levels = 14
    for i in range(levels):
        for j in range(2):
            body = "netc: 1\nblocks:\n  B: Dense(\n" if i == levels - 1 else \
                f"netc: 1\nimports:\n  p: h{i + 1}_0.yaml\n  q: h{i + 1}_1.yaml\nblocks:\n  B: p.B\n"
            (tmp_path / f"h{i}_{j}.yaml").write_text(body)
    top = tmp_path / "fan.yaml"
    top.write_text("netc: 1\nname: f\nimports: {a: h0_0.yaml}\ninput: {x: [4]}\nmodel: a.B\n")
    with pytest.raises(SpecError) as e:
        front_end_file(top)
    assert len(e.value.diagnostics) < 100


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS bounds allocations on Linux")
def test_train_past_this_machines_memory_is_named_not_called_a_bug(tmp_path):
    """--max-memory raised past what the process may allocate: torch's failure is 'not enough memory'."""
    import resource

    path = tmp_path / "s.yaml"
    path.write_text(spec("Dense(60000) → Dense(60000) → Dense(10)", "[64]", TRAIN))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 10**9, 6 * 10**9))

    r = subprocess.run([sys.executable, "-m", "netc", "train", str(path), "--out", str(tmp_path / "run"),
                        "--device", "cpu", "--max-memory", "100GB"], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, preexec_fn=cap, check=False)
    assert r.returncode == 1, r.stderr
    assert "not enough memory to build model 'm'" in r.stderr and "--max-memory" in r.stderr
    assert "bug" not in r.stderr and "Traceback" not in r.stderr
