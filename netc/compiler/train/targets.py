"""Static checks of the model's output against its loss and the targets the data will give.

Without reading data, ``netc check`` knows the loss (named, or the default for the source), the
model's output shape and, for an embedded source, what its targets are: digits gives one class id
of 10 per sample, sunspots and co2 give ``horizon`` real values per window. What the runner would
refuse at step 1 (or train silently wrong) is reported here, at the model's output op or at
``train.loss``. A file source's targets are only known once it is read, so only what the loss alone
decides is checked for it (one logit for bce, more than one class for cross_entropy). A GAN's
generator must make what its discriminator takes. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from netc.compiler.ir import Graph, Node, Program
from netc.compiler.opdef import fmt_shape
from netc.compiler.train.config import TrainConfig, train_spans
from netc.compiler.train.objectives import LOSSES
from netc.compiler.train.registry import resolve
from netc.compiler.train.sources import SOURCES
from netc.diagnostics import Diagnostic, Span, SpecError, show

GAN_MODELS = frozenset({"generator", "discriminator"})
GAN_LOSSES = {"bce": "non-saturating", "mse": "least squares"}  # what netc.runner.gan trains with


def gan_loss_refusal(loss: str) -> tuple[str, str]:
    """Message and hint for a loss a GAN does not train with (netc check and the runner alike)."""
    kinds = " or ".join(f"{name} ({kind})" for name, kind in GAN_LOSSES.items())
    return f"loss: {loss}: a GAN trains with {kinds}", "set loss: bce, or leave it out (bce is the default)"


@dataclass(frozen=True)
class Targets:
    """What a source's targets are when the source fixes them."""

    source: str
    task: str  # "classification" (class ids) or "regression" (real values)
    classes: int | None = None  # classification: how many classes (ids 0 .. classes-1)
    values: int | None = None  # regression: values per sample (a series: its horizon)


def known_targets(train: TrainConfig) -> Targets | None:
    """The targets of ``train.data`` when its source fixes them (embedded data, fixed formats), else None."""
    data = train.data
    if data.source is None and data.path is not None:
        return None  # the source is inferred from the files: decided when they are read
    name = data.source or "digits"
    src = SOURCES.get(name)
    if src is None or src.task not in ("classification", "regression"):
        return None
    if src.task == "regression":
        return Targets(name, "regression", values=data.horizon if src.series else None)
    subset = getattr(data, "classes", None)  # data.classes: a relabelled subset of the classes
    return Targets(name, "classification", classes=len(subset) if subset else src.classes)


def _input_fits(graph: Graph, train: TrainConfig) -> Diagnostic | None:
    """A declared input that the source's fixed-size samples cannot be reshaped to (the counts differ)."""
    data = train.data
    src = SOURCES.get(data.source or "digits") if data.source is not None or data.path is None else None
    sample = getattr(src, "sample", None)
    if sample is None or len(graph.inputs) != 1:
        return None
    declared = graph.inputs[0].type.shape[1:]
    if not all(isinstance(d, int) for d in declared) or math.prod(declared) == math.prod(sample):
        return None
    return Diagnostic("train", f"the {src.name} samples have shape {show(list(sample))} ({math.prod(sample)} "
                               f"values) but the input is declared {show(list(declared))} "
                               f"({math.prod(declared)} values)", graph.inputs[0].span,
                      f"declare the input as {show(list(sample))}, as the data are")


def _output(graph: Graph) -> Node | None:
    return next((n for n in graph.nodes if n.name == graph.outputs[0]), None) if graph.outputs else None


def check_targets(program: Program, train: TrainConfig | None, root: Any = None) -> None:
    """Refuse a loss that cannot fit the model's output, or the targets the embedded data will give."""
    if train is None or len(program.graphs) != 1 or train.text_task is not None:
        return  # a GAN: check_gan; several other models: netc train refuses them (which one would train?)
    node = _output(program.main)
    if node is None:
        return
    shape = node.type.shape[1:]
    if not all(isinstance(d, int) for d in shape):
        return  # a symbolic axis: what the output holds per sample is known only at run time
    targets = known_targets(train)
    diags: list[Diagnostic] = []
    bad_input = _input_fits(program.main, train)
    if bad_input is not None:
        diags.append(bad_input)
    # 1. the loss: named, or the runner's default for the data (mse for real values, cross_entropy otherwise)
    named = train.loss is not None
    used = resolve(train.loss, LOSSES, "loss", where="train.loss").name if train.loss is not None else (
        "mse" if targets is not None and targets.task == "regression" else "cross_entropy")
    task = LOSSES[used].task
    spans = train_spans(program.source, program.file, root) if named else {}
    at_loss: Span | None = spans.get("train.loss") or node.span
    how = f"loss: {used}" if named else f"{used}, the default loss for " + (
        targets.source if targets is not None else "class outputs")
    per, out = math.prod(shape), fmt_shape(node.type.shape)
    src = targets.source if targets is not None else ""

    def report(message: str, span: Span | None, hint: str) -> None:
        diags.append(Diagnostic("train", message, span, hint))

    # 2. what the loss needs from the output and the targets
    if task == "classification":
        classes = shape[-1] if shape else 1
        if targets is not None and targets.task == "regression":
            report(f"{how} needs class ids, but the {src} targets are real values (a forecasting series)",
                   at_loss, "use a regression loss: mse (the default for series), mae or huber")
        elif classes == 1:
            report(f"{how} over one class: the model outputs {out}, one logit per sample, so the loss is always 0 "
                   f"and nothing trains", node.span,
                   "end the model with Dense(number of classes); for a yes/no label use loss: bce with Dense(1), "
                   "for a number loss: mse")
        elif targets is not None and targets.classes is not None and len(shape) != 1:
            report(f"the {src} targets are one class id per sample, but the model outputs {out}: several class "
                   f"scores per sample", node.span,
                   f"end the model with one score per class, e.g. Flatten → Dense({targets.classes})")
        elif targets is not None and targets.classes is not None and classes < targets.classes:
            report(f"{src} has {targets.classes} classes (ids 0-{targets.classes - 1}) but the model outputs "
                   f"{out}: scores for {classes}", node.span, f"end the model with Dense({targets.classes})")
    elif task == "binary":
        if targets is not None and (targets.task == "regression" or (targets.classes or 2) > 2):
            what = "real values" if targets.task == "regression" else f"class ids of {targets.classes} classes"
            report(f"{how} needs 0/1 labels, but the {src} targets are {what}", at_loss,
                   "use mse for real values" if targets.task == "regression" else
                   f"use cross_entropy with Dense({targets.classes}) for {targets.classes} classes")
        elif per != 1:
            report(f"{how} needs one logit per sample, the model outputs {out}", node.span,
                   "end the model with Dense(1), or use loss: cross_entropy with Dense(number of classes)")
    elif task == "regression" and targets is not None:
        if targets.task == "classification" and per != 1:
            report(f"{how} compares each output with its target, but the {src} targets are one class id per sample "
                   f"and the model outputs {out}: {per} values", node.span,
                   f"for the {targets.classes} {src} classes use loss: cross_entropy (the default for class data) "
                   f"with Dense({targets.classes})" if targets.classes else "use loss: cross_entropy")
        elif targets.values is not None and per != targets.values:
            report(f"each {src} window predicts {targets.values} value{'s' * (targets.values != 1)} "
                   f"(train.data.horizon) but the model outputs {out}: {per}", node.span,
                   f"end the model with Dense({targets.values}), or set train.data.horizon to {per}")
    if diags:
        raise SpecError("train", diagnostics=diags, source=program.source)


def check_gan(program: Program, train: TrainConfig | None, root: Any = None) -> None:
    """Refuse a GAN whose generator makes another shape than its discriminator takes (located at the
    generator's last op), a discriminator without one logit per sample or that cannot take the data, a loss
    the GAN objective does not train with."""
    if set(program.graphs) != GAN_MODELS:
        return
    gen, disc = program.graphs["generator"], program.graphs["discriminator"]
    g_out, d_out = _output(gen), _output(disc)
    diags: list[Diagnostic] = []
    bad_input = _input_fits(disc, train) if train is not None else None
    if bad_input is not None:
        diags.append(bad_input)
    loss = resolve(train.loss, LOSSES, "loss", where="train.loss").name if train and train.loss else None
    if loss is not None and loss not in GAN_LOSSES:
        span = train_spans(program.source, program.file, root).get("train.loss")
        message, hint = gan_loss_refusal(loss)
        diags.append(Diagnostic("train", message, span, hint))
    if g_out is not None and len(disc.inputs) == 1:
        fake, real = g_out.type.shape[1:], disc.inputs[0].type.shape[1:]
        if fake != real and all(isinstance(d, int) for d in (*fake, *real)):
            pf, pr = math.prod(fake), math.prod(real)
            hint = (f"end the generator with Reshape({show(list(real))})" if pf == pr else
                    f"it makes {pf} values per sample and the discriminator takes {pr}: change its last layers "
                    f"(e.g. … → Dense({pr}) → Tanh → Reshape({show(list(real))}))")
            diags.append(Diagnostic("train", f"the generator makes samples of shape {fmt_shape(g_out.type.shape)} "
                                             f"but the discriminator takes {fmt_shape(disc.inputs[0].type.shape)}",
                                    g_out.span, hint))
    if d_out is not None:
        shape = d_out.type.shape[1:]
        if all(isinstance(d, int) for d in shape) and math.prod(shape) != 1:
            diags.append(Diagnostic("train", f"the discriminator must output one real/fake logit per sample, it "
                                             f"outputs {fmt_shape(d_out.type.shape)}", d_out.span,
                                    "end the discriminator with Dense(1) (after Flatten)"))
    if diags:
        raise SpecError("train", diagnostics=diags, source=program.source)
