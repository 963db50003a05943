"""The one front end: spec text → checked program + train config, every diagnostic located.

``netc check``, the Python API (``netc.load``), ``netc train``/``eval``/``predict``
and the language server all call :func:`front_end`, so each of them reports the
same mistakes with the same messages and spans. No torch here.

    checked = front_end(text, "spec.yaml")
    checked.program.main          # the first model, shapes inferred
    checked.train                 # the train: block as a TrainConfig (None without one)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netc.compiler.elaborate import Elaborator
from netc.compiler.ir import Program
from netc.compiler.resources import Estimate, Limits, check_resources
from netc.compiler.space import Space, check_space, read_space
from netc.compiler.train.causal import check_block, check_causal, check_vocab_size
from netc.compiler.train.config import TrainConfig, train_config, with_overrides
from netc.compiler.train.heads import check_output_activation
from netc.compiler.train.targets import check_gan, check_targets
from netc.compiler.train.transfer import check_transfer
from netc.dsl.spec import Spec, read_spec

MakeElaborator = Callable[[Spec, int], Elaborator]


@dataclass(frozen=True)
class Checked:
    """A spec that passed every check: its parsed form, its program and its train config."""

    spec: Spec
    program: Program
    train: TrainConfig | None  # None when the spec has no train: block
    resources: Estimate | None = None  # the memory it needs, as the resource check estimated it
    space: Space | None = None  # the tune: block's search space, corners checked (None without one)

    def train_config(self, sets: list[str] | None = None, device: str | None = None) -> TrainConfig:
        """The train config (defaults without a ``train:`` block) with ``--set``/``--device`` applied."""
        return with_overrides(self.train if self.train is not None else TrainConfig.from_dict({}), sets, device)


def front_end(text: str | bytes, file: str = "<string>", *, params: dict[str, object] | None = None,
              limits: Limits | None = None, training: bool = False, sets: list[str] | None = None,
              elaborator: MakeElaborator = Elaborator) -> Checked:
    """Parse, validate, elaborate and shape-check a spec, then its ``train:`` block and the resources it needs.

    ``params`` override the spec's ``params:`` defaults (``--param``). ``limits`` bound the
    expanded nodes, the parameters and the memory (``--max-nodes``/``--max-params``/``--max-memory``;
    the defaults otherwise). ``training`` says the program is about to be trained (``netc train``,
    whose ``--set`` items are ``sets``): memory is then estimated for training even without a
    ``train:`` block. ``elaborator`` builds the elaborator for the parsed spec (the language
    server passes one that records what hover needs; the program it builds is the same).
    """
    limits = limits or Limits()
    # 1. YAML with positions, the JSON Schema, chains → the Spec (every diagnostic of this stage at once)
    spec = read_spec(text, file, overrides=params)
    # 2. blocks expanded, names resolved, shapes inferred → the Program
    elab = elaborator(spec, limits.max_params)  # --max-params also bounds each op, refused while elaborating
    elab.max_nodes = limits.max_nodes  # the total expanded-node bound (--max-nodes)
    program = elab.program()
    # 3. the train: block, as deeply as `netc train` checks it (vocabulary names and arguments, monitors)
    train = train_config(program, root=spec.root) if program.train is not None else None
    check_output_activation(program, train, program.source)  # Softmax → cross_entropy and its kin
    check_targets(program, train, spec.root)  # a loss that cannot fit the output, or the embedded data's targets
    check_gan(program, train, spec.root)  # the generator makes what the discriminator takes
    check_causal(program, train, program.source)  # a next-token objective over non-causal attention
    check_block(program, train, program.source)  # language modelling: block = input length <= positions
    check_vocab_size(program, train, program.source)  # a bpe/word vocabulary inside the Embedding
    check_transfer(program, train, spec.root)  # freeze / lr_mult / init_from.new patterns name real nodes
    # 4. the whole program's parameters and memory against the limits (training at the batch size it will use)
    cfg = train
    if training:
        cfg = with_overrides(train if train is not None else TrainConfig.from_dict({}), sets)
    estimate = check_resources(program, cfg, limits, training=training or train is not None)
    # 5. the tune: block's search space; the model is elaborated at its corners, so no trial fails on a shape
    space = read_space(spec)
    if space is not None:
        def corner(s: Spec) -> Program:
            e = Elaborator(s, limits.max_params)  # a plain one: the editor's records stay those of the spec itself
            e.max_nodes = limits.max_nodes
            return e.program()
        check_space(spec, space, corner)
    return Checked(spec, program, train, estimate, space)
