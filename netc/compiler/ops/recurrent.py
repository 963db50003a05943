"""Recurrent layers: RNN, LSTM, GRU (batch first; stacked, bidirectional; padded steps skipped with ids=)."""

from __future__ import annotations

from netc.compiler.opdef import (
    INIT,
    A,
    Arg,
    L,
    Shape,
    concrete,
    fmt_shape,
    op,
    pad_args,
    padding_ids,
)
from netc.diagnostics import ShapeError

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _infer(name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        s = ins[0]
        if len(ins) > 1:
            padding_ids(name, ins[1], s)
        if len(s) != 3:
            hint = None
            if len(s) == 2:
                hint = "declare the input as a sequence (T, features), or add Reshape([T, F]) before it"
            elif len(s) == 4:
                hint = "reshape images to rows-as-time-steps, e.g. Reshape([28, 28]), or use Conv2D"
            raise ShapeError(f"{name}({a.units}) expects a sequence (N, T, features), got {fmt_shape(s)}", hint=hint)
        if not isinstance(s[2], int):
            raise ShapeError(f"{name} needs a known feature size, got {fmt_shape(s)}")
        if a.dropout and a.layers == 1:
            raise ShapeError(f"{name} dropout applies between stacked layers and needs layers ≥ 2",
                             hint="set layers=2 or more, or add a Dropout op after it")
        h = a.units * (2 if a.bidirectional else 1)
        return (s[0], s[1], h) if a.return_sequences else (s[0], h)
    return infer


def _params(name: str):
    def params(a: A, ins: list[Shape]) -> int:
        g, h, d = GATES[name], a.units, 2 if a.bidirectional else 1
        total, fan_in = 0, ins[0][2]
        for _ in range(a.layers):
            total += d * (g * h * (fan_in + h) + 2 * g * h)
            fan_in = h * d
        return total
    return params


def _macs(name: str):
    def macs(a: A, ins: list[Shape], out: Shape) -> int:
        g, h, d = GATES[name], a.units, 2 if a.bidirectional else 1
        total, fan_in = 0, ins[0][2]
        for _ in range(a.layers):
            total += d * g * h * (fan_in + h)
            fan_in = h * d
        return total * concrete(ins[0][1])
    return macs


def _states(name: str):
    def states(a: A, ins: list[Shape]) -> int:  # every layer's gates and hidden state at every step
        g, h, d = GATES[name], a.units, 2 if a.bidirectional else 1
        return a.layers * d * (g + 1) * h * concrete(ins[0][1])
    return states


def _lower(name: str):
    def lower(a: A, ins: list[Shape], out: Shape):
        kw = {"batch_first": True}
        if a.layers != 1:
            kw["num_layers"] = a.layers
        if a.dropout:
            kw["dropout"] = a.dropout
        if a.bidirectional:
            kw["bidirectional"] = True
        if len(ins) > 1:  # padded steps skipped: the packed sequence of each sample's real steps
            fwd = f"packed_rnn({{m}}, {{x}}, {{x1}}, {a.pad_id})[{0 if a.return_sequences else 1}]"
            helpers = ("packed_rnn",)
        elif a.return_sequences:
            fwd, helpers = "{m}({x})[0]", ()
        elif a.bidirectional:
            fwd, helpers = "last_bidirectional({m}({x})[0])", ("last_bidirectional",)
        else:
            fwd, helpers = "{m}({x})[0][:, -1]", ()
        return L(f"nn.{name}", ins[0][2], a.units, forward=fwd, helpers=helpers, **kw)
    return lower


for _name, _doc in [("RNN", "Elman RNN with tanh"), ("LSTM", "Long short-term memory"),
                    ("GRU", "Gated recurrent unit")]:
    op(_name, f"{_doc} over (N, T, F): the whole sequence (N, T, H) or the last state (N, H).",
       [Arg("units", "int", doc="hidden size H", min=1),
        Arg("layers", "int", 1, doc="stacked layers", min=1),
        Arg("bidirectional", "bool", False, doc="also run backwards; output size doubles"),
        Arg("return_sequences", "bool", False, doc="return every step (N, T, H) instead of the last state (N, H)"),
        Arg("dropout", "float", 0.0, doc="dropout between stacked layers", min=0.0, max=1.0),
        *pad_args(effect="at the end are skipped (each sample runs over its real steps only; the last state is "
                         "that of its last real step; padded steps output zeros)"), INIT],
       infer=_infer(_name), lower=_lower(_name), params=_params(_name), macs=_macs(_name), scratch=_states(_name),
       category="sequence", dropout_arg="dropout", sequence_arg="return_sequences", input_width_axis=-1, init_arg="init",
       pad_id_arg="pad_id",
       example=f"{_name}(64, layers=2, return_sequences=true) → {_name}(64) → Dense(10)")
