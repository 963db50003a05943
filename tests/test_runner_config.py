"""The ``train:`` block: typed defaults, refusals by name, --set overrides, the JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from netc.diagnostics import NetcError, Span, SpecError, UsageError
from netc.runner.config import DataConfig, EarlyStoppingConfig, TrainConfig, json_schema
from netc.runner.metrics import METRICS
from netc.runner.objectives import LOSSES, OPTIMIZERS, SCHEDULES
from netc.runner.sources import SOURCES

DESIGN_EXAMPLE = {
    "data": "digits",
    "split": {"val": 0.1, "test": 0.2, "seed": 0},
    "loss": "cross_entropy",
    "optimizer": "adam(lr=1e-3, weight_decay=1e-4)",
    "schedule": "cosine(warmup=1)",
    "epochs": 20,
    "batch_size": 64,
    "metrics": ["accuracy", "f1", "auc_roc"],
    "early_stopping": {"monitor": "val.loss", "patience": 3},
}


def test_design_example_parses_with_typed_fields():
    cfg = TrainConfig.from_dict(DESIGN_EXAMPLE)
    assert cfg.data == DataConfig(source="digits")
    assert cfg.split.val == 0.1 and isinstance(cfg.split.val, float)
    assert cfg.early_stopping == EarlyStoppingConfig(monitor="val.loss", patience=3)
    assert cfg.metrics == ["accuracy", "f1", "auc_roc"]
    assert cfg.task == "classification"
    assert cfg.monitor_mode() == "min"


def test_defaults_from_empty_block_and_round_trip():
    cfg = TrainConfig.from_dict({})
    assert cfg == TrainConfig()
    assert cfg.epochs == 10 and cfg.optimizer == "adam(lr=1e-3)" and cfg.early_stopping is None
    full = TrainConfig.from_dict(DESIGN_EXAMPLE)
    assert TrainConfig.from_dict(full.to_dict()) == full
    assert json.loads(json.dumps(full.to_dict())) == full.to_dict()


def test_ints_accepted_for_floats_and_converted():
    cfg = TrainConfig.from_dict({"split": {"val": 0, "test": 0}, "clip_grad_norm": 1})
    assert cfg.split.val == 0.0 and isinstance(cfg.split.val, float)
    assert cfg.clip_grad_norm == 1.0 and isinstance(cfg.clip_grad_norm, float)


def test_shorthands():
    assert TrainConfig.from_dict({"data": "sunspots"}).data.source == "sunspots"
    assert TrainConfig.from_dict({"data": "data/x.npz"}).data == DataConfig(source=None, path="data/x.npz")
    assert TrainConfig.from_dict({"early_stopping": True}).early_stopping == EarlyStoppingConfig()
    assert TrainConfig.from_dict({"early_stopping": False}).early_stopping is None


@pytest.mark.parametrize("block, where, hint", [
    ({"epoch": 3}, "train: unknown key 'epoch'", "did you mean 'epochs'?"),
    ({"split": {"sed": 1}}, "train.split: unknown key 'sed'", "did you mean 'seed'?"),
    ({"data": {"sorce": "digits"}}, "train.data: unknown key 'sorce'", "did you mean 'source'?"),
    ({"early_stopping": {"patiense": 2}}, "unknown key 'patiense'", "did you mean 'patience'?"),
    ({"optimizer": "adm(lr=1e-3)"}, "unknown optimizer 'adm'", "did you mean 'adam'?"),
    ({"optimizer": "adam(lrr=1e-3)"}, "adam has no argument 'lrr'", "did you mean 'lr'?"),
    ({"loss": "cross_entropy(label_smothing=0.1)"}, "no argument 'label_smothing'",
     "did you mean 'label_smoothing'?"),
    ({"loss": "crossentropy"}, "unknown loss 'crossentropy'", "did you mean 'cross_entropy'?"),
    ({"schedule": "cosin(warmup=1)"}, "unknown schedule 'cosin'", "did you mean 'cosine'?"),
    ({"metrics": ["acc"]}, "unknown metric 'acc'", "did you mean 'accuracy'?"),
    ({"device": "gpu"}, "train.device: unknown value 'gpu'", "choose one of: auto, cpu, cuda"),
    ({"early_stopping": {"monitor": "val.acc"}, "metrics": ["accuracy"]}, "'val.acc' is not a logged value",
     "did you mean 'val.accuracy'?"),
])
def test_unknown_names_refused_with_did_you_mean(block, where, hint):
    with pytest.raises(SpecError) as e:
        TrainConfig.from_dict(block)
    assert where in str(e.value)
    assert hint in e.value.hint


@pytest.mark.parametrize("block, message", [
    ({"epochs": "3"}, "train.epochs must be an integer, got str '3'"),
    ({"epochs": 2.5}, "train.epochs must be an integer"),
    ({"epochs": True}, "train.epochs must be an integer"),
    ({"compile": 1}, "train.compile must be true or false"),
    ({"epochs": 0}, "train.epochs must be >= 1, got 0"),
    ({"split": {"val": 1.0}}, "train.split.val must be >= 0.0 and < 1.0"),
    ({"split": {"val": 0.5, "test": 0.5}}, "val + test must leave training data"),
    ({"split": 0.1}, "train.split must be a mapping"),
    ({"metrics": "accuracy"}, "train.metrics must be a list of names"),
    ({"optimizer": "adam(lr=fast)"}, "adam(lr=...) expects a number, got 'fast'"),
    ({"schedule": "step(step_size=1.5)"}, "step(step_size=...) expects an integer"),
    ({"optimizer": "adam(lr="}, "cannot parse"),
    ({"optimizer": None}, "train.optimizer cannot be null"),
    ({"schedule": "onecycle(0.1, 0.3, 25, 1e4, 7)"}, "takes at most 4 positional argument(s)"),
    ({"loss": "mse", "metrics": ["accuracy"]}, "'accuracy' is a classification metric but this run is regression"),
    ({"data": {"source": "csv"}}, "source 'csv' reads files and needs a path"),
    ({"data": {"source": "digits", "path": "x"}}, "source 'digits' is embedded and takes no path"),
    ({"data": {"source": "digits", "window": 4}}, "window only applies to time series"),
    ({"split": {"val": 0}, "early_stopping": True}, "'val.loss' needs a validation split"),
])
def test_wrong_values_refused_by_name(block, message):
    with pytest.raises(SpecError) as e:
        TrainConfig.from_dict(block)
    assert message in str(e.value)


def test_errors_carry_spans_when_given():
    span = Span("spec.yaml", 12, 11, 12, 14)
    with pytest.raises(SpecError) as e:
        TrainConfig.from_dict({"epochs": "ten"}, spans={"train.epochs": span})
    assert e.value.span == span
    parent = Span("spec.yaml", 10, 3, 10, 8)
    with pytest.raises(SpecError) as e:
        TrainConfig.from_dict({"split": {"val": 2.0}}, spans={"train.split": parent})
    assert e.value.span == parent  # nearest enclosing key with a known span


def test_call_arguments_positional_and_defaults():
    from netc.runner.objectives import resolve_optimizer, resolve_schedule

    b = resolve_optimizer("sgd(0.1, momentum=0.9, nesterov=true)")
    assert b.name == "sgd" and b.kwargs["lr"] == 0.1 and b.kwargs["nesterov"] is True
    assert b.kwargs["weight_decay"] == 0.0
    assert resolve_schedule("cosine").kwargs == {"warmup": 0.0, "min_lr": 0.0}
    assert resolve_schedule("onecycle(max_lr=none)").kwargs["max_lr"] is None


# ---------------------------------------------------------------- --set

def test_overrides_apply_typed_values():
    cfg = TrainConfig.from_dict(DESIGN_EXAMPLE)
    new = cfg.apply_overrides(["train.epochs=3", "train.optimizer=sgd(lr=0.1)", "train.split.seed=1",
                               "train.clip_grad_norm=0.5", "train.compile=true", "train.schedule=none",
                               "train.metrics=[accuracy, f1]", "train.data=sunspots", "loss=mse",
                               "train.metrics=rmse,mae"])
    assert new.epochs == 3 and new.optimizer == "sgd(lr=0.1)" and new.split.seed == 1
    assert new.clip_grad_norm == 0.5 and new.compile is True and new.schedule is None
    assert new.data.source == "sunspots" and new.loss == "mse" and new.metrics == ["rmse", "mae"]
    assert cfg.epochs == 20  # the original is untouched


def test_override_fills_a_null_section():
    cfg = TrainConfig.from_dict({})
    new = cfg.apply_overrides(["train.early_stopping.patience=5", "train.split.val=0.2"])
    assert new.early_stopping == EarlyStoppingConfig(patience=5)
    assert new.split.val == 0.2


def test_override_int_where_float_expected():
    assert TrainConfig().apply_overrides(["train.split.val=0"]).split.val == 0.0


@pytest.mark.parametrize("item, message, hint", [
    ("train.epoch=3", "train has no key 'epoch'", "did you mean 'epochs'?"),
    ("train.split.sed=1", "train.split has no key 'sed'", "did you mean 'seed'?"),
    ("train.epochs=3.5", "train.epochs expects an integer, got '3.5'", "--set train.epochs=3"),
    ("train.epochs=many", "train.epochs expects an integer", None),
    ("train.compile=yes", "train.compile expects true or false", None),
    ("train.split.val=high", "train.split.val expects a number", None),
    ("train.epochs.x=1", "train.epochs is an integer, it has no key 'x'", None),
    ("train.epochs", "expected key=value", None),
    ("train.optimizer=sgdd(lr=0.1)", "unknown optimizer 'sgdd'", "did you mean 'sgd'?"),
    ("train.epochs=none", "train.epochs cannot be null", None),
    ("train.split=3", "train.split is a mapping; set one of its keys", None),
    ("train.epochs=0", "train.epochs must be >= 1", None),
])
def test_bad_overrides_refused_by_name(item, message, hint):
    with pytest.raises(UsageError) as e:
        TrainConfig().apply_overrides([item])
    assert message in e.value.diagnostics[0].message
    if hint:
        assert hint in e.value.hint


# ---------------------------------------------------------------- JSON Schema

def _all_properties(schema, path="train"):
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}.{name}", prop
        for alt in prop.get("anyOf", []):
            if alt.get("type") == "object":
                yield from _all_properties(alt, f"{path}.{name}")
        if prop.get("type") == "object":
            yield from _all_properties(prop, f"{path}.{name}")


def test_schema_is_valid_draft07_and_2020_12():
    s = json_schema()
    jsonschema.Draft7Validator.check_schema(s)
    jsonschema.Draft202012Validator.check_schema(s)
    json.dumps(s)


def test_schema_describes_every_property():
    props = list(_all_properties(json_schema()))
    assert len(props) > 30
    for path, prop in props:
        assert prop.get("description"), path


def test_schema_enums_come_from_the_tables():
    p = json_schema()["properties"]
    assert p["loss"]["anyOf"][0]["enum"] == sorted(LOSSES)
    assert p["optimizer"]["anyOf"][0]["enum"] == sorted(OPTIMIZERS)
    assert p["schedule"]["anyOf"][0]["enum"] == sorted(SCHEDULES)
    assert p["metrics"]["items"]["anyOf"][0]["enum"] == sorted(METRICS)  # [1]: a name from a plugin
    data_obj = next(a for a in p["data"]["anyOf"] if a.get("type") == "object")
    assert [v for v in data_obj["properties"]["source"]["enum"] if v] == list(SOURCES)


@pytest.mark.parametrize("block", [
    DESIGN_EXAMPLE,
    {"data": {"source": "csv", "path": "a.csv", "label": "y"}, "loss": "huber(delta=2.0)", "metrics": ["rmse"]},
    {"data": "data/train.npz", "early_stopping": True, "schedule": None, "precision": "bf16"},
])
def test_schema_accepts_what_from_dict_accepts(block):
    TrainConfig.from_dict(block)
    assert list(jsonschema.Draft7Validator(json_schema()).iter_errors(block)) == []


@pytest.mark.parametrize("block", [
    {"epoch": 3}, {"optimizer": "adm(lr=1)"}, {"epochs": 0},
    {"device": "gpu"}, {"split": {"val": 1.5}}, {"data": {"source": "parquet"}}, {"init": "hee"},
])
def test_schema_refuses_what_from_dict_refuses(block):
    with pytest.raises(NetcError):
        TrainConfig.from_dict(block)
    assert list(jsonschema.Draft7Validator(json_schema()).iter_errors(block)) != []


@pytest.mark.parametrize("block, message", [({"loss": "foo"}, "unknown loss 'foo'"),
                                            ({"metrics": ["acc"]}, "did you mean 'accuracy'")])
def test_loss_and_metric_names_may_come_from_plugins(block, message):
    """The committed schema cannot list the losses and metrics of installed packages: any name passes it, and
    the config (which looks in the netc.losses / netc.metrics entry points) refuses an unknown one with a hint."""
    assert list(jsonschema.Draft7Validator(json_schema()).iter_errors(block)) == []
    with pytest.raises(NetcError, match=message):
        TrainConfig.from_dict(block)


def test_config_and_schema_import_neither_torch_nor_numpy():
    code = ("import sys; from netc.runner.config import TrainConfig, json_schema; "
            "TrainConfig.from_dict({'optimizer': 'sgd(lr=0.1)', 'metrics': ['f1']}); json_schema(); "
            "import netc.runner; netc.runner.TrainConfig; "
            "print(sorted(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("raw, want", [("3", 3), ("0.5", 0.5), ("1e-3", 0.001), ("true", True), ("False", False),
                                       ("none", None), ("~", None), ("yes", "yes"), ("'3'", "3"), ("same", "same")])
def test_set_and_param_type_values_alike(raw, want):
    from netc.compiler.check import parse_param_overrides
    from netc.dsl.scalars import typed_scalar

    assert typed_scalar(raw) == want and type(typed_scalar(raw)) is type(want)
    assert parse_param_overrides([f"k={raw}"]) == {"k": want}
    if isinstance(want, float):
        assert TrainConfig().apply_overrides([f"train.clip_grad_norm={raw}"]).clip_grad_norm == want
