"""Habits users bring from Keras and PyTorch, and the hint that says what netc writes instead.

The spelling neighbour is the wrong hint for a habit: ``Conv2D(32, 3, activation=relu)`` is not a
near miss of ``dilation`` but Keras' way of writing ``Conv2D(32, 3) → ReLU``, and ``Linear(784, 128)``
is PyTorch's input size, not a bias flag. The elaborator asks here first (only once a mistake is
found, so checking stays as fast) and falls back to "did you mean" when no habit matches.
"""

from __future__ import annotations

from netc.compiler.registry import REGISTRY, OpDef
from netc.diagnostics import show

# Keras' activation names (activation='relu' / Activation('relu')) → the netc op.
ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "gelu": "GELU",
               "elu": "ELU", "selu": "SELU", "swish": "SiLU", "silu": "SiLU", "leaky_relu": "LeakyReLU",
               "log_softmax": "LogSoftmax", "softplus": "Softplus", "mish": "Mish", "hard_sigmoid": "Hardsigmoid"}

# Argument names of Keras/PyTorch layers → netc's, used when the op has the netc argument.
ARG_NAMES = {"pool_size": "kernel", "kernel_size": "kernel", "strides": "stride", "alpha": "slope",
             "negative_slope": "slope", "axis": "dim", "use_bias": "bias", "p": "rate", "input_dim": "vocab",
             "num_embeddings": "vocab", "output_dim": "dim", "embedding_dim": "dim", "out_features": "units",
             "hidden_size": "units", "num_layers": "layers", "out_channels": "filters", "num_heads": "heads",
             "epsilon": "eps"}

# Arguments that give the input size, which netc infers from the op before (or the spec's input:).
INPUT_ARGS = frozenset({"input_shape", "batch_input_shape", "input_dim", "in_features", "in_channels",
                        "input_size", "num_features", "normalized_shape"})

# Keras/PyTorch layer names netc writes otherwise (beyond a spelling neighbour such as MaxPooling2D).
OPS = {"SimpleRNN": "RNN", "CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU", "Conv2DTranspose": "ConvTranspose2D",
       "Bidirectional": "LSTM(units, bidirectional=true)"}


def activation_op(word: object) -> str | None:
    """The netc op an activation word of Keras names (``relu`` → ``ReLU``), if netc has it."""
    if not isinstance(word, str):
        return None
    name = ACTIVATIONS.get(word.lower())
    return name if name is not None and REGISTRY.get(name, plugins=False) is not None else None


def as_own_op(op: OpDef, act: str | None, kept: str = "...") -> str:
    """The hint for an activation written inside a layer (Keras' ``activation=``)."""
    return f"netc writes an activation as its own op after the layer: {op.name}({kept}) → {act or 'ReLU'}"


def unknown_arg(op: OpDef, name: str, value: object, kept: str) -> str | None:
    """A hint for ``op(name=value)`` when ``name`` is a Keras/PyTorch habit, else None."""
    if name == "activation":
        return as_own_op(op, activation_op(value), kept)
    target = ARG_NAMES.get(name)
    if target is not None and op.arg(target) is not None:
        return f"netc calls it '{target}': {op.name}({kept + ', ' if kept else ''}{target}={show(value)})"
    if name in INPUT_ARGS:
        return (f"netc infers the input size from the op before (or the spec's input:), as Keras does after "
                f"the first layer: remove {name}")
    return None


def unknown_op(name: str, first_arg: object) -> str | None:
    """A hint for an unknown op ``name`` that another framework has, else None."""
    if name in ("Activation", "activations.get"):
        return f"netc writes each activation as its own op: → {activation_op(first_arg) or 'ReLU'}"
    if name in ("Input", "InputLayer", "Flatten_input"):
        return ("the input is declared once, under input: (e.g. input: [1, 28, 28]); the model chain starts "
                "from it")
    target = OPS.get(name)
    if target is not None and REGISTRY.get(target.split("(")[0], plugins=False) is not None and target != name:
        return f"netc writes it as an argument: {target}" if "(" in target else f"netc calls it {target}"
    return None


def input_size_first(op: OpDef, args: tuple, in_shape: tuple) -> str | None:
    """PyTorch's ``Linear(784, 128)``/``BatchNorm2d(32)``: one positional argument more than netc needs, the
    first of them the input size netc infers."""
    axis = op.input_width_axis
    first = args[0] if args else None
    if axis is None or not isinstance(first, int) or isinstance(first, bool) or len(in_shape) <= abs(axis):
        return None
    if in_shape[axis] != first or len(args) <= sum(a.required for a in op.args):
        return None
    rest = ", ".join(show(a) for a in args[1:])
    return (f"netc infers the input size ({first}) from the op before, as Keras does (PyTorch asks for it): "
            f"leave it out, {op.name}({rest})" if rest else
            f"netc infers the input size ({first}) from the op before, as Keras does (PyTorch asks for it): "
            f"leave it out, {op.name}")


def channels_last(shape: tuple) -> tuple | None:
    """(C, H, W) when an image shape (N, H, W, C) looks channels-last (C of 1, 3 or 4, H and W larger)."""
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    h, w, c = shape[1], shape[2], shape[3]
    return (c, h, w) if c in (1, 3, 4) and h > 4 and w > 4 else None
