"""Element-wise activations and Softmax."""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, fmt_shape, op
from netc.diagnostics import ShapeError


def _same(a: A, ins: list[Shape]) -> Shape:
    return ins[0]


for _name, _torch, _inplace, _doc in [
    ("ReLU", "nn.ReLU", "relu", "max(x, 0)"),
    ("SiLU", "nn.SiLU", "silu", "x * sigmoid(x) (swish)"),
    ("Sigmoid", "nn.Sigmoid", "sigmoid", "1 / (1 + exp(-x))"),
    ("Tanh", "nn.Tanh", "tanh", "hyperbolic tangent"),
]:
    op(_name, f"Element-wise {_doc}.", [], infer=_same,
       lower=lambda a, ins, out, _t=_torch: L(_t), category="activation", inplace_fn=_inplace, keeps_layout=True)

op("LeakyReLU", "Element-wise max(x, slope * x).",
   [Arg("slope", "float", 0.01, doc="slope for negative inputs", min=0.0)],
   infer=_same, lower=lambda a, ins, out: L("nn.LeakyReLU", *(() if a.slope == 0.01 else (a.slope,))),
   category="activation", inplace_fn="leaky_relu", keeps_layout=True,
   example="Conv2D(64, 4, stride=2, padding=1) → LeakyReLU(0.2)")
op("GELU", "Gaussian error linear unit.",
   [Arg("approximate", "str", "none", doc="'tanh' for the tanh approximation", choices=("none", "tanh"))],
   infer=_same,
   lower=lambda a, ins, out: L("nn.GELU", **({} if a.approximate == "none" else {"approximate": "tanh"})),
   category="activation", keeps_layout=True)


def _softmax_infer(a: A, ins: list[Shape], name: str = "Softmax") -> Shape:
    (s,) = ins
    if not -len(s) <= a.dim < len(s) or a.dim in (0, -len(s)):
        raise ShapeError(f"{name}(dim={a.dim}) is out of range for {fmt_shape(s)}",
                         hint="dim counts from the batch axis 0; use -1 for the last axis")
    return s


op("Softmax", "Normalise to probabilities along `dim` (use raw logits with cross_entropy instead).",
   [Arg("dim", "int", -1, doc="axis to normalise (0 is the batch axis)")],
   infer=_softmax_infer, lower=lambda a, ins, out: L("nn.Softmax", dim=a.dim), category="activation")
op("LogSoftmax", "Log-probabilities along `dim`: log(softmax(x)), computed stably; the output for loss: nll.",
   [Arg("dim", "int", -1, doc="axis to normalise (0 is the batch axis)")],
   infer=lambda a, ins: _softmax_infer(a, ins, "LogSoftmax"),
   lower=lambda a, ins, out: L("nn.LogSoftmax", dim=a.dim), category="activation", example="Dense(10) → LogSoftmax")
