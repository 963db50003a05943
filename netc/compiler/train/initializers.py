"""The weight initialisers an op's ``init=`` (and the spec-wide ``train.init``) may name.

Each entry says which ``torch.nn.init`` function it calls and with what arguments; the
emitted source (``netc compile``) prints that call for every node that names one, and
``netc.build`` runs the same source, so both initialise alike. Only the weight tensors
of a layer are initialised (every matrix or kernel whose name contains ``weight``: ``weight``,
an LSTM's ``weight_ih_l0``…); biases keep torch's default. Randomness comes from
torch's global generator, which ``netc train`` seeds with ``train.seed`` before building.
No torch import here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Initializer:
    """A named scheme: the ``torch.nn.init`` function and its keyword arguments."""

    name: str
    doc: str
    fn: str  # a function of torch.nn.init, e.g. "kaiming_normal_"
    kwargs: tuple[tuple[str, object], ...] = ()
    aliases: tuple[str, ...] = ()

    def call(self, target: str) -> str:
        """Python source initialising the weights of the layer ``target`` (used by emitted models)."""
        args = "".join(f", {k}=" + (f'"{v}"' if isinstance(v, str) else repr(v)) for k, v in self.kwargs)
        return f"init_weights({target}, nn.init.{self.fn}{args})"


INITIALIZERS: dict[str, Initializer] = {i.name: i for i in [
    Initializer("he", "He (Kaiming) normal: N(0, 2 / fan_in), for ReLU networks (Keras he_normal)",
                "kaiming_normal_", (("nonlinearity", "relu"),), aliases=("kaiming", "he_normal")),
    Initializer("he_uniform", "He (Kaiming) uniform: U(±sqrt(6 / fan_in))", "kaiming_uniform_",
                (("nonlinearity", "relu"),), aliases=("kaiming_uniform",)),
    Initializer("xavier", "Glorot (Xavier) uniform: U(±sqrt(6 / (fan_in + fan_out))), Keras' default",
                "xavier_uniform_", aliases=("glorot", "glorot_uniform", "xavier_uniform")),
    Initializer("xavier_normal", "Glorot (Xavier) normal: N(0, 2 / (fan_in + fan_out))", "xavier_normal_",
                aliases=("glorot_normal",)),
    Initializer("lecun", "LeCun normal: N(0, 1 / fan_in), for SELU and linear layers", "kaiming_normal_",
                (("nonlinearity", "linear"),), aliases=("lecun_normal",)),
    Initializer("normal", "N(0, 0.02²), as in GPT-2 and DCGAN", "normal_", (("std", 0.02),)),
    Initializer("uniform", "U(-0.05, 0.05), Keras' RandomUniform default", "uniform_", (("a", -0.05), ("b", 0.05))),
    Initializer("orthogonal", "a (semi-)orthogonal matrix (Saxe et al.), common for recurrent weights",
                "orthogonal_"),
    Initializer("zeros", "all zeros", "zeros_"),
    Initializer("ones", "all ones", "ones_"),
]}

ALIASES: dict[str, str] = {a: i.name for i in INITIALIZERS.values() for a in i.aliases}
NAMES: tuple[str, ...] = (*INITIALIZERS, *ALIASES)  # every word init= accepts


def initializer(name: str) -> Initializer:
    """The entry for a name or an alias (``kaiming`` → ``he``)."""
    return INITIALIZERS[ALIASES.get(name, name)]
