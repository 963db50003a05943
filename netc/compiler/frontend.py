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

from netc.compiler.elaborate import DEFAULT_MAX_PARAMS, MAX_NODES, Elaborator
from netc.compiler.ir import Program
from netc.compiler.train.config import TrainConfig, train_config, with_overrides
from netc.dsl.spec import Spec, read_spec

MakeElaborator = Callable[[Spec, int], Elaborator]


@dataclass(frozen=True)
class Checked:
    """A spec that passed every check: its parsed form, its program and its train config."""

    spec: Spec
    program: Program
    train: TrainConfig | None  # None when the spec has no train: block

    def train_config(self, sets: list[str] | None = None, device: str | None = None) -> TrainConfig:
        """The train config (defaults without a ``train:`` block) with ``--set``/``--device`` applied."""
        return with_overrides(self.train if self.train is not None else TrainConfig.from_dict({}), sets, device)


def front_end(text: str | bytes, file: str = "<string>", *, params: dict[str, object] | None = None,
              max_params: int = DEFAULT_MAX_PARAMS, elaborator: MakeElaborator = Elaborator,
              max_nodes: int = MAX_NODES) -> Checked:
    """Parse, validate, elaborate and shape-check a spec, then its ``train:`` block; raises SpecError.

    ``params`` override the spec's ``params:`` defaults (``--param``). ``elaborator`` builds
    the elaborator for the parsed spec (the language server passes one that records what
    hover needs; the program it builds is the same).
    """
    # 1. YAML with positions, the JSON Schema, chains → the Spec (every diagnostic of this stage at once)
    spec = read_spec(text, file, overrides=params)
    # 2. blocks expanded, names resolved, shapes inferred → the Program
    elab = elaborator(spec, max_params)
    elab.max_nodes = max_nodes  # the total expanded-node bound (--max-nodes)
    program = elab.program()
    # 3. the train: block, as deeply as `netc train` checks it (vocabulary names and arguments, monitors)
    train = train_config(program, root=spec.root) if program.train is not None else None
    return Checked(spec, program, train)
