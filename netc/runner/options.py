"""The options of ``netc train``, declared once as data (no torch, no argparse).

``netc.cli`` builds the ``train`` subcommand from ``TRAIN_OPTIONS``; the DDP launcher
(``distributed.worker_args``) reads the same table to rebuild each worker's command
line without the launcher flags, so nothing in the runner imports the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LAUNCH_FLAGS = ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint", "max_restarts")  # torchrun's, not train's


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags (none for a positional), its argparse keywords, its kind."""

    dest: str
    flags: tuple[str, ...] = ()  # e.g. ("--set",); empty: a positional argument named ``dest``
    kind: str = "value"  # value | flag (store_true) | append
    kwargs: dict[str, Any] = field(default_factory=dict)  # help, metavar, type, choices, default


def size(text: str) -> int:
    """A byte count such as 24GB or 16GiB (argparse reports a ValueError as an invalid size)."""
    from netc.compiler.resources import parse_size

    return parse_size(text)


def count(text: str) -> int:
    """A positive integer (underscores allowed: 4_000_000_000)."""
    n = int(text.replace("_", "").replace(",", ""))
    if n < 1:
        raise ValueError(text)
    return n


# The resource policy's flags, the same on check, summary, compile and train (netc.compiler.resources.Limits)
RESOURCE_OPTIONS: tuple[Option, ...] = (
    Option("max_memory", ("--max-memory",), kwargs={
        "type": size, "metavar": "SIZE",
        "help": "refuse models that need more memory than SIZE, e.g. 16GB (default: the memory available now)"}),
    Option("max_params", ("--max-params",), kwargs={
        "type": count, "metavar": "N", "help": "refuse models with more than N parameters (default 4,000,000,000)"}),
    Option("max_nodes", ("--max-nodes",), kwargs={
        "type": count, "metavar": "N", "help": "refuse specs that expand to more than N nodes (default 100,000)"}),
)


TRAIN_OPTIONS: tuple[Option, ...] = (
    Option("file", kwargs={"metavar": "FILE"}),
    Option("sets", ("--set",), "append", {"metavar": "KEY=VALUE",
                                          "help": "override a train setting, e.g. --set train.epochs=3"}),
    Option("out", ("--out",), kwargs={"help": "run directory (default runs/<name>)"}),
    Option("resume", ("--resume",), kwargs={"metavar": "RUN_DIR"}),
    Option("device", ("--device",), kwargs={"choices": ["auto", "cpu", "cuda"]}),
    Option("force", ("--force",), "flag", {"help": "overwrite an existing run directory"}),
    Option("nproc_per_node", ("--nproc-per-node",), kwargs={
        "type": int, "metavar": "N",
        "help": "train data-parallel in N processes per machine (one per GPU), through torchrun"}),
    Option("nnodes", ("--nnodes",), kwargs={"type": int, "help": "machines taking part (with --nproc-per-node)"}),
    Option("node_rank", ("--node-rank",), kwargs={
        "type": int, "help": "this machine's rank, 0..nnodes-1 (fixed ranks; omit for elastic rendezvous)"}),
    Option("rdzv_endpoint", ("--rdzv-endpoint",), kwargs={
        "metavar": "HOST:PORT", "help": "rendezvous address every machine reaches (multi-machine runs)"}),
    Option("max_restarts", ("--max-restarts",), kwargs={
        "type": int, "metavar": "K",
        "help": "restart failed workers up to K times; they resume from the run's last checkpoint"}),
    Option("params", ("--param",), "append", {
        "metavar": "NAME=VALUE", "help": "override a value of the spec's params: mapping, e.g. --param classes=100"}),
    *RESOURCE_OPTIONS,
)


def argparse_kwargs(o: Option) -> dict[str, Any]:
    """The ``add_argument`` keywords of ``o`` (defaults: None, False for a flag, [] for a list)."""
    if not o.flags:
        return dict(o.kwargs)
    action = {"flag": {"action": "store_true"}, "append": {"action": "append", "default": []}}.get(o.kind, {})
    return {"dest": o.dest, "default": None, **action, **o.kwargs}


def worker_argv(values: dict[str, Any]) -> list[str]:
    """The ``netc train`` command line of parsed ``values``, without the launcher flags."""
    out: list[str] = []
    for o in TRAIN_OPTIONS:
        if o.dest in LAUNCH_FLAGS:
            continue
        value = values.get(o.dest, argparse_kwargs(o).get("default"))
        if not o.flags:
            out.append(str(value))
        elif o.kind == "flag":
            out += [o.flags[0]] if value else []
        elif o.kind == "append":
            for v in value or []:
                out += [o.flags[0], str(v)]
        elif value is not None:
            out += [o.flags[0], str(value)]
    return out
