"""docs/training.md, rendered from the tables that validate the ``train:`` block.

Every key (``TrainConfig`` and its parts, with their ``opt(...)`` meanings), every data
source, loss, optimizer, schedule, metric and augmentation comes from the same declaration
``netc check`` validates against, so the page cannot drift: ``tests/test_training_reference.py``
compares docs/training.md with :func:`render`. Regenerate with::

    python -m netc.compiler.train.reference > docs/training.md

No torch here (``netc ops --training`` prints the same vocabulary).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from netc.compiler.train import config as cfg
from netc.compiler.train.initializers import INITIALIZERS
from netc.compiler.train.metrics import DEFAULT_METRICS, METRICS
from netc.compiler.train.objectives import LOSSES, OPTIMIZERS, SCHEDULES
from netc.compiler.train.registry import Entry
from netc.compiler.train.sources import SOURCES
from netc.diagnostics import REQUIRED, show

COMMAND = "python -m netc.compiler.train.reference > docs/training.md"

# One complete, checked example per section (tests/test_docs.py runs each through the front end).
_HEAD = "netc: 1\n"
EXAMPLES: dict[str, str] = {
    "keys": _HEAD + """name: digits_mlp
input: [1, 8, 8]
model: Flatten → Dense(64) → ReLU → Dropout(0.2) → Dense(10)
train:
  data: digits
  split: {val: 0.1, test: 0.2, seed: 0}
  loss: cross_entropy(label_smoothing=0.05)
  optimizer: adamw(lr=3e-3, weight_decay=1e-4)
  schedule: cosine(warmup=1)
  epochs: 20
  batch_size: 64
  metrics: [accuracy, f1]
  early_stopping: {monitor: val.loss, patience: 3}
""",
    "sources": _HEAD + """name: sunspots_forecast
input: [12, 1]                   # 12 past years, one value each
model: LSTM(32) → Dense(1)
train:
  data: {source: sunspots, window: 12, horizon: 1}
  normalize: standard
  split: {val: 0.1, test: 0.2}
  epochs: 30
""",
    "files": _HEAD + """name: tabular
input: [4]                       # four numeric feature columns
model: Dense(16) → ReLU → Dense(3)
train:
  data: {source: csv, path: data/iris.csv, label: species}
  loss: cross_entropy
""",
    "losses": _HEAD + """name: digits_regression_of_ids
input: [1, 8, 8]
model: Flatten → Dense(32) → ReLU → Dense(1)
train:
  data: {source: npz, path: data/values.npz}
  loss: huber(delta=0.5)
  metrics: [rmse, r2]
""",
    "optimizers": _HEAD + """input: [1, 8, 8]
model: Flatten → Dense(10)
train:
  optimizer: sgd(lr=0.1, momentum=0.9, nesterov=true)
""",
    "schedules": _HEAD + """input: [1, 8, 8]
model: Flatten → Dense(10)
train:
  optimizer: sgd(lr=0.05, momentum=0.9)
  schedule: onecycle(max_lr=0.5, pct_start=0.2)
  epochs: 10
""",
    "metrics": _HEAD + """input: [1, 8, 8]
model: Flatten → Dense(10)
train:
  metrics: [accuracy, precision, recall, auc_roc]
  early_stopping: {monitor: val.auc_roc, patience: 5}
""",
    "targets": _HEAD + """name: keras_mnist_mlp           # Keras' mnist_mlp, written the netc way
input: [64]
model: Dense(512) → ReLU → Dropout(0.2) → Dense(512) → ReLU → Dropout(0.2) → Dense(10)
train:
  data: {path: data/digits_onehot.npz}   # x (N, 64); y (N, 10) one-hot rows, as to_categorical makes them
  loss: cross_entropy(balanced=true)     # the softmax is inside the loss: the model ends in logits
  optimizer: rmsprop(lr=1e-3)
  metrics: [accuracy, f1]
""",
    "init": _HEAD + """input: [1, 8, 8]
model: Conv2D(16, 3, padding=same, init=he) → ReLU → Flatten → Dense(10, init=xavier)
train:
  init: he                       # every other layer with weights; the two above name their own
  seed: 1                        # the same seed, the same initial weights
""",
    "augment": _HEAD + """input: [1, 8, 8]
model: Conv2D(16, 3, padding=same) → ReLU → Flatten → Dense(10)
train:
  augment: {crop: 1, noise: 0.05}
""",
}


@dataclass(frozen=True)
class Section:
    """One table of the vocabulary: its title, what a spec writes, its entries."""

    title: str
    key: str  # the train: key that names these (for the intro line)
    table: Mapping[str, Entry]
    example: str  # key of EXAMPLES


def _type_text(hint: object) -> str:
    """``int``, ``number or null``, ``list of strings``, ``mapping`` … as a spec writer reads them."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_type_text(a) for a in inner)
        return text + " or null" if len(inner) < len(args) else text
    origin = typing.get_origin(hint)
    if origin is list:
        return f"list of {_type_text(args[0])}s"
    if origin is dict:
        return f"mapping of {_type_text(args[0])} to {_type_text(args[1])}"
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return {int: "integer", float: "number", bool: "boolean", str: "string", list: "list"}.get(hint, str(hint))  # type: ignore[call-overload]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _keys_table(cls: type, prefix: str) -> list[str]:
    """The rows of one config dataclass, nested ones after it (``train.data.path`` …)."""
    hints = typing.get_type_hints(cls)
    rows = [f"### `{prefix}`", "", (cls.__doc__ or "").strip().splitlines()[0], "",
            "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    nested = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        sub = next((a for a in inner if dataclasses.is_dataclass(a)), None)
        default = f"`{show(f.default)}`" if f.default is not dataclasses.MISSING else "(mapping below)"
        extra = []
        if f.metadata.get("choices"):
            extra.append("one of " + ", ".join(f"`{c}`" for c in f.metadata["choices"]))
        if f.metadata.get("minimum") is not None:
            extra.append(f"≥ {show(f.metadata['minimum'])}")
        if f.metadata.get("below") is not None:
            extra.append(f"< {show(f.metadata['below'])}")
        if f.metadata.get("maximum") is not None:
            extra.append(f"≤ {show(f.metadata['maximum'])}")
        meaning = f.metadata.get("doc", "") + (f" ({'; '.join(extra)})" if extra else "")
        if sub is not None:
            meaning += f"; see [`{prefix}.{f.name}`](#{_anchor(prefix + '.' + f.name)})"
            nested.append((sub, f"{prefix}.{f.name}"))
        rows.append(f"| `{f.name}` | {_type_text(hint)} | {default} | {_cell(meaning)} |")
    rows.append("")
    for sub, path in nested:
        rows += _keys_table(sub, path)
    return rows


def _anchor(title: str) -> str:
    """GitHub's heading anchor of ``### `train.data` ``."""
    return "".join(ch for ch in title.lower() if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def _call(entry: Entry) -> str:
    parts = [k if p.default is REQUIRED else f"{k}={show(p.default)}" for k, p in entry.params.items()]
    return f"{entry.name}({', '.join(parts)})" if parts else entry.name


def _entries(section: Section) -> list[str]:
    rows = []
    for name in sorted(section.table):
        e = section.table[name]
        extra = []
        task = getattr(e, "task", None)
        if task is not None:
            extra.append(f"task: {task}")
        if getattr(e, "interval", None) is not None:
            extra.append("steps every batch" if e.interval == "step" else "steps every epoch")  # type: ignore[attr-defined]
        if getattr(e, "needs_metric", False):
            extra.append("watches its monitor, by default val.loss")
        rows += [f"#### `{_call(e)}`", "", e.doc + (f" ({'; '.join(extra)})" if extra else "") + ".", ""]
        if e.params:
            rows += ["| argument | type | default | meaning |", "| --- | --- | --- | --- |"]
            for k, p in e.params.items():
                rows.append(f"| `{k}` | {_type_text(p.kind)}{' or null' if p.optional else ''} | "
                            f"`{show(p.default)}` | {_cell(p.doc)} |")
            rows.append("")
    return rows


def _example(key: str) -> list[str]:
    return ["Example (checked by the test suite):", "", "```yaml", EXAMPLES[key].rstrip("\n"), "```", ""]


def _sources() -> list[str]:
    data_hints = typing.get_type_hints(cfg.DataConfig)
    rows = ["## Data sources", "",
            "`train.data` names one (`data: digits`), gives a path whose source is inferred (`data: "
            "data/train.npz`: .npz, .csv, IDX files, CIFAR-10 batches, else class folders), or is a mapping "
            "of the keys above. Embedded sources are real data shipped in the package: no download.", ""]
    for name, s in SOURCES.items():
        # The keys of train.data that only this source reads are those whose meaning starts "<source>:".
        scopes = {name, "series"} if s.series else {name}
        own = [f.name for f in dataclasses.fields(cfg.DataConfig)
               if f.metadata.get("doc", "").split(":", 1)[0] in scopes and f.name in data_hints]
        keys = (["path"] if s.needs_path else []) + own
        rows += [f"### `{name}`", "", s.doc + ".", "",
                 f"- task: {s.task}" + (f", {s.classes} classes" if s.classes else "")
                 + (f"; samples of shape {show(list(s.sample))}" if getattr(s, "sample", None) else ""),
                 f"- files: {s.layout}" if s.layout else "- files: none",
                 f"- default `normalize`: `{s.normalize}`",
                 "- keys: " + (", ".join(f"`{k}`" for k in keys) if keys else "none beyond the common ones"),
                 f"- e.g. `data: {{source: {name}" + (f", path: {s.example}" if s.example else "") + "}`", ""]
    rows += _example("sources") + _example("files")
    return rows


def _metrics() -> list[str]:
    rows = ["## Metrics", "", "`train.metrics` lists them; each is logged for every split (`val.accuracy`) and "
            "can be watched by `early_stopping`. Defaults: "
            + "; ".join(f"{t}: {', '.join(m)}" for t, m in DEFAULT_METRICS.items()) + ".", "",
            "| metric | task | better | meaning |", "| --- | --- | --- | --- |"]
    for name in sorted(METRICS):
        m = METRICS[name]
        rows.append(f"| `{name}` | {m.task} | {'higher' if m.mode == 'max' else 'lower'} | {_cell(m.doc)} |")
    return rows + [""] + _example("metrics")


def _targets() -> list[str]:
    return ["## Targets", "",
            "Class targets may be class ids (`y` of shape (N,), or (N, T) per step), one-hot rows (N, C) as Keras' "
            "`to_categorical` makes them (float or integer; read as the class ids they encode), or probability "
            "rows (N, C) that sum to 1 (soft labels, distillation). A CSV gives several target columns with "
            "`data.labels`. The model ends in logits: `cross_entropy`, `focal` and `bce` apply the softmax or "
            "sigmoid themselves, and `netc check` refuses a Softmax (or Sigmoid) before them. Keras' "
            "`categorical_crossentropy` on a softmax output is `cross_entropy` on the logits; PyTorch's "
            "`NLLLoss` after `LogSoftmax` is `nll` after the `LogSoftmax` op. Class weights: `weight=[...]` "
            "(one per class) or `balanced=true`.", ""] + _example("targets")


def _plugins() -> list[str]:
    return ["## Losses and metrics from installed packages", "",
            "A spec never carries code. A package adds losses through the `netc.losses` entry-point group and "
            "metrics through `netc.metrics` (as ops come through `netc.ops`): the entry point names a module "
            "with `LOSSES: list[LossEntry]` (from `netc.compiler.train.objectives`, each with `build(ctx, "
            "**arguments)` returning `loss(outputs, targets)`) or `METRICS: list[Metric]` (from "
            "`netc.compiler.train.metrics`, each with `fn(outputs) -> float`). Once the package is installed its "
            "names are used like the built-in ones (`loss: focal(gamma=2)`, `metrics: [accuracy, top3]`) and "
            "checked the same way by `netc check`.", "",
            "```toml", "[project.entry-points.\"netc.losses\"]", "my_losses = \"my_package.losses\"", "```", ""]


def _initializers() -> list[str]:
    rows = ["## Weight initialisers", "",
            "A layer with weights (Dense, Conv1D/2D, ConvTranspose2D, Embedding, RNN/LSTM/GRU, MultiHeadAttention, "
            "the Transformer encoder and decoder layers) takes `init=` (`Dense(64, init=he)`); `train.init` sets "
            "it for every such layer that names none. The scheme applies to the layer's weight matrices and "
            "kernels (biases and LayerNorm scales keep torch's default) right after torch builds the layer: "
            "`netc compile` prints the call and `netc.build` runs the same source. Random schemes draw from "
            "torch's generator, which `netc train` seeds with `train.seed`. Without either, torch's own "
            "initialisation stays.", "",
            "| init | also | torch call | meaning |", "| --- | --- | --- | --- |"]
    for name, i in INITIALIZERS.items():
        also = ", ".join(f"`{a}`" for a in i.aliases)
        rows.append(f"| `{name}` | {also} | `{_cell(i.call('layer'))}` | {_cell(i.doc)} |")
    return rows + [""] + _example("init")


def _augment() -> list[str]:
    rows = ["## Augmentations", "", "`train.augment` changes training batches only (validation and test data "
            "stay as they are); every augmentation is off by default.", "",
            "| augmentation | type | default | meaning |", "| --- | --- | --- | --- |"]
    hints = typing.get_type_hints(cfg.AugmentConfig)
    for f in dataclasses.fields(cfg.AugmentConfig):
        rows.append(f"| `{f.name}` | {_type_text(hints[f.name])} | `{show(f.default)}` | "
                    f"{_cell(f.metadata.get('doc', ''))} |")
    return rows + [""] + _example("augment")


def vocabulary() -> list[dict[str, object]]:
    """Every named entry of the training vocabulary as plain data (``netc ops --training``)."""
    out: list[dict[str, object]] = []
    for s in SECTIONS:
        for name in sorted(s.table):
            e = s.table[name]
            out.append({"table": s.key, "name": name, "signature": _call(e), "doc": e.doc,
                        "args": [{"name": k, "kind": _type_text(p.kind), "default": None if p.default is REQUIRED
                                  else p.default, "doc": p.doc} for k, p in e.params.items()]})
    for name in sorted(METRICS):
        m = METRICS[name]
        out.append({"table": "metric", "name": name, "signature": name, "doc": f"{m.doc} ({m.task}, "
                    f"{'higher' if m.mode == 'max' else 'lower'} is better)", "args": []})
    for name, src in SOURCES.items():
        out.append({"table": "source", "name": name, "signature": name, "doc": src.doc, "args": []})
    for name, i in INITIALIZERS.items():
        out.append({"table": "init", "name": name, "signature": f"init={name}", "doc": i.doc + (
            f" (also {', '.join(i.aliases)})" if i.aliases else ""), "args": []})
    hints = typing.get_type_hints(cfg.AugmentConfig)
    for f in dataclasses.fields(cfg.AugmentConfig):
        out.append({"table": "augment", "name": f.name, "signature": f"augment: {{{f.name}: {show(f.default)}}}",
                    "doc": f.metadata.get("doc", ""), "args": [{"name": f.name, "kind": _type_text(hints[f.name]),
                                                                "default": f.default, "doc": ""}]})
    return out


SECTIONS = [
    Section("Losses", "loss", LOSSES, "losses"),
    Section("Optimizers", "optimizer", OPTIMIZERS, "optimizers"),
    Section("Learning-rate schedules", "schedule", SCHEDULES, "schedules"),
]


def _checks() -> list[str]:
    """What the front end refuses in a train: block before any data is read (compiler/train/heads.py, targets.py)."""
    fixed = [f"`{n}` ({s.classes} classes)" if s.classes else f"`{n}` (real values)" for n, s in SOURCES.items()
             if s.classes or (s.task == "regression" and s.series)]
    return ["## Checked before training", "",
            "`netc check`, the editor and `netc train` check the `train:` block against the model without reading "
            "data; each mistake below is a located error with its fix:", "",
            "- an activation the loss applies itself: Softmax or LogSoftmax before `cross_entropy`, Sigmoid before "
            "`bce` (and `nll` without a LogSoftmax);",
            "- a loss the output cannot fit: `cross_entropy` over one class (an (N, 1) head), `bce` without one "
            "logit per sample;",
            "- for sources whose targets are fixed, " + ", ".join(fixed) + ": fewer class scores than classes "
            "(or than `data.classes` keeps), a class loss on real values, a regression loss on class ids with "
            "several outputs, a forecast that is not `horizon` values, an input whose size differs from the "
            "source's samples;",
            "- a GAN (models `generator` and `discriminator`) whose generator makes another shape than the "
            "discriminator takes (reported at the generator's last op), whose discriminator does not output one "
            "logit, or whose loss is neither `bce` nor `mse`;",
            "- `freeze`, `lr_mult` and `init_from.new` patterns that match no node.", ""]


def render() -> str:
    """docs/training.md as it should read now."""
    out = ["# Training: the `train:` block", "",
           f"<!-- Generated from netc's registries; do not edit. Regenerate with: {COMMAND} -->", "",
           "Everything `netc train` reads from a spec's `train:` block: its keys, the data sources, losses, "
           "optimizers, schedules, metrics and augmentations, with every argument and default. The page is "
           "generated from the same tables that `netc check` validates against (`netc ops --training` prints "
           "them in the terminal), so it lists exactly what is accepted. Regenerate it with", "",
           f"    {COMMAND}", "",
           "A call such as `adam(lr=1e-3)` may also be written as a bare name (`adam`) for its defaults. "
           "`netc train SPEC --set train.epochs=3` overrides any key below from the command line.", "",
           "## Keys", ""]
    out += _example("keys")
    out += _keys_table(cfg.TrainConfig, "train")
    out += _sources()
    out += _targets()
    for s in SECTIONS:
        out += [f"## {s.title}", "", f"`train.{s.key}` is one call string.", ""]
        out += _entries(s) + _example(s.example)
    out += _metrics()
    out += _plugins()
    out += _initializers()
    out += _augment()
    out += _checks()
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
