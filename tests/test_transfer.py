"""Transfer learning: init_from (matched by node name and shape), freeze (BatchNorm statistics too), lr_mult,
class subsets and small per-class budgets; patterns that name no node are located errors in ``netc check``."""

from __future__ import annotations

from pathlib import Path

import pytest

from netc.compiler.check import check_text
from netc.diagnostics import SpecError

MODEL = """\
netc: 1
name: {name}
input: [64]
model:
  features: Dense(16) → BatchNorm → ReLU
  head: Dense({classes})
train:
  data: {{source: digits, classes: {ids}}}
  split: {{val: 0.1, test: 0.2, seed: 0{budget}}}
  optimizer: adam(lr=1e-2)
  epochs: 1
  batch_size: 32
  plots: false
{extra}"""


def write(tmp_path: Path, file: str, *, name: str, ids: str, classes: int = 5, budget: str = "",
          extra: str = "") -> Path:
    p = tmp_path / file
    p.write_text(MODEL.format(name=name, ids=ids, classes=classes, budget=budget, extra=extra), encoding="utf-8")
    return p


def errors(text: str) -> list:
    with pytest.raises(SpecError) as e:
        check_text(text, "t.yaml")
    return e.value.diagnostics


# ---------------------------------------------------------------- netc check (torch-free)

def test_patterns_that_match_no_node_are_located_with_the_nearest_name():
    text = MODEL.format(name="t", ids="[5, 6]", classes=2, budget="", extra=(
        "  freeze: [featurs_dense]\n  lr_mult: {'hed': 0.1, 'features_*': 0.5}\n"
        "  init_from: {path: runs/x, new: [nope]}\n"))
    diags = errors(text)
    assert [d.message.split(":")[0] for d in diags] == ["train.freeze", "train.lr_mult", "train.init_from.new"]
    assert "did you mean 'features_dense'?" in diags[0].hint
    assert "did you mean 'head'?" in diags[1].hint
    line = text.splitlines()[diags[0].span.line - 1]
    assert line[diags[0].span.col - 1:].startswith("featurs_dense")
    check_text(text.replace("featurs_dense", "features_*").replace("'hed'", "head").replace("[nope]", "[head]"),
               "t.yaml")  # the corrected spec checks


def test_freezing_every_weight_and_transfer_in_a_gan_are_refused():
    assert "nothing would train" in errors(MODEL.format(name="t", ids="[5, 6]", classes=2, budget="",
                                                        extra="  freeze: ['*']\n"))[0].message
    gan = ("netc: 1\ninput: {z: [4]}\nmodels:\n  generator: {input: {z: [4]}, model: Dense(64) → Tanh}\n"
           "  discriminator: {input: {x: [64]}, model: Dense(1)}\ntrain:\n  freeze: [dense]\n")
    (d,) = errors(gan)
    assert "apply to supervised training, not to a GAN" in d.message and d.span.line == 7


# ---------------------------------------------------------------- training

@pytest.mark.usefixtures("one_thread")
def test_finetune_loads_matching_weights_freezes_them_and_trains_the_new_head(tmp_path, capsys):
    import torch

    from netc.cli import main
    from netc.runner.checkpoint import read_weights

    pre = write(tmp_path, "pre.yaml", name="pre", ids="[0, 1, 2, 3, 4]")
    assert main(["train", str(pre), "--out", str(tmp_path / "runs" / "pre")]) == 0
    source = read_weights(tmp_path / "runs" / "pre" / "best")
    # relative init_from: from the spec's folder, wherever netc runs
    fine = write(tmp_path, "fine.yaml", name="fine", ids="[5, 6, 7, 8, 9]", budget=", train_per_class: 8",
                 extra="  init_from: {path: runs/pre, new: [head]}\n  freeze: [features_*]\n"
                       "  lr_mult: {head: 2}\n")
    assert main(["train", str(fine), "--out", str(tmp_path / "runs" / "fine")]) == 0
    err = capsys.readouterr().err
    assert "loaded 2 node(s); fresh: head" in err  # features_dense and features_batchnorm
    tuned = read_weights(tmp_path / "runs" / "fine" / "last")
    for key in ("features_dense.weight", "features_dense.bias", "features_batchnorm.weight",
                "features_batchnorm.running_mean", "features_batchnorm.running_var"):
        assert torch.equal(tuned[key], source[key]), key  # frozen: weights and BatchNorm statistics
    assert not torch.equal(tuned["head.weight"], source["head.weight"])  # new head: fresh and trained
    # the per-class budget: 8 training samples of each of the 5 relabelled classes
    from netc.compiler.check import front_end_file
    from netc.runner.data import load_data

    ds = load_data(front_end_file(str(fine)).train, [("x", (64,), "float32")])
    assert torch.bincount(ds.train.y).tolist() == [8] * 5 and ds.class_names == ["5", "6", "7", "8", "9"]
    assert len(ds.test) > 100  # validation and test stay whole


@pytest.mark.usefixtures("one_thread")
def test_unmatched_nodes_are_refused_at_init_from_unless_allowed(tmp_path, capsys):
    from netc.cli import main

    pre = write(tmp_path, "pre.yaml", name="pre", ids="[0, 1, 2, 3, 4]")
    assert main(["train", str(pre), "--out", str(tmp_path / "pre")]) == 0
    capsys.readouterr()
    fine = write(tmp_path, "fine.yaml", name="fine", ids="[5, 6, 7]", classes=3, extra="  init_from: pre\n")
    assert main(["train", str(fine), "--out", str(tmp_path / "fine")]) == 1
    err = capsys.readouterr().err
    assert "fine.yaml:" in err and "init_from" in err.splitlines()[1]  # located at the key
    assert "head (weight is (5, 16) in the source, (3, 16) here)" in err and "new: [head]" in err
    allowed = write(tmp_path, "ok.yaml", name="ok", ids="[5, 6, 7]", classes=3,
                    extra="  init_from: {path: pre/best/model.safetensors, allow_missing: true}\n")
    assert main(["train", str(allowed), "--out", str(tmp_path / "ok")]) == 0
    assert "fresh: head" in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
def test_init_from_never_unpickles_and_says_where(tmp_path, capsys):
    import torch

    from netc.cli import main

    torch.save({"features_dense.weight": torch.zeros(16, 64)}, tmp_path / "weights.pt")  # a pickle
    fine = write(tmp_path, "fine.yaml", name="fine", ids="[5, 6]", classes=2, extra="  init_from: weights.pt\n")
    assert main(["train", str(fine), "--out", str(tmp_path / "fine")]) == 1
    err = capsys.readouterr().err
    assert "fine.yaml:" in err and "refuses to unpickle" in err and not (tmp_path / "fine" / "last").exists()
