"""The ``netc`` command line.

Exit codes (``netc.diagnostics.EXIT_*``): 0 success, 1 invalid spec / data / run failure, 2 command-line
misuse, 3 training diverged (NaN/Inf loss), 70 internal error (a bug), 130 interrupted. Torch is imported only by the
commands that need it, so ``netc check`` stays editor-fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from netc.diagnostics import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Diagnostic,
    MissingExtra,
    NetcError,
    UsageError,
    diagnostics_json,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports misuse as one clean line and exit code 2."""

    argv: list[str] = []  # the command line being parsed (main sets it), to suggest a flag of its subcommand

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error[cli]: {message}", file=sys.stderr)
        hint = _misuse_hint(self, message)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _misuse_hint(parser: argparse.ArgumentParser, message: str) -> str | None:
    """did you mean …? for a misspelt subcommand (``netc chek``), choice or flag (``--formt``)."""
    import re

    from netc.diagnostics import did_you_mean

    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if m:
        return did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
    m = re.search(r"unrecognized arguments: (.*)", message)
    if not m:
        return None
    flags = [a for a in m.group(1).split() if a.startswith("-")]
    subs = _subparsers(parser)
    cmd = next((a for a in _Parser.argv if a in subs), None)
    known = [o for a in (subs[cmd] if cmd else parser)._actions for o in a.option_strings]
    for f in flags:
        hint = did_you_mean(f.split("=", 1)[0], [o for o in known if o.startswith("--")] or known)
        if hint:
            return hint
    return None


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="netc", description="Check, compile and train neural-network spec files.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check", help="check syntax, schema, names and shapes (no torch)")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--format", choices=["text", "json"], default="text")
    _param_flag(c)
    _resource_flags(c)

    s = sub.add_parser("summary", help="layer table: output shapes, parameters, MACs, memory")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.add_argument("--batch-size", type=int, default=1, metavar="B")
    s.add_argument("--model", default=None, help="which model of a multi-model spec")
    _param_flag(s)
    _resource_flags(s)

    o = sub.add_parser("ops", help="list every op with its arguments (--training: the train: vocabulary)")
    o.add_argument("names", nargs="*", metavar="NAME",
                   help="show only these ops or training entries, e.g. Conv2D, adam, cosine, mse")
    o.add_argument("--format", choices=["text", "json"], default="text")
    o.add_argument("--training", action="store_true",
                   help="list losses, optimizers, schedules, metrics, data sources and augmentations instead")
    sc = sub.add_parser("schema", help="print the JSON Schema of spec files")
    sc.add_argument("-o", "--output", default=None, help="write to a file instead of stdout")

    cp = sub.add_parser("compile", help="emit standalone PyTorch source (or TorchScript / ONNX)")
    cp.add_argument("file", metavar="FILE")
    cp.add_argument("-o", "--output", default=None)
    cp.add_argument("--format", choices=["python", "torchscript", "onnx", "ir"], default="python")
    cp.add_argument("--model", default=None)
    opt = cp.add_mutually_exclusive_group()
    opt.add_argument("-O0", dest="opt", action="store_const", const=0)
    opt.add_argument("-O1", dest="opt", action="store_const", const=1)
    opt.add_argument("-O2", dest="opt", action="store_const", const=2)
    cp.add_argument("--passes", default=None, help="comma-separated pass names (overrides -O)")
    cp.add_argument("--explain", action="store_true", help="print the IR after each pass that changed it")
    cp.add_argument("--train-mode", action="store_true", help="compile the training graph (no inference passes)")
    _param_flag(cp)
    _resource_flags(cp)

    g = sub.add_parser("graph", help="draw the network: Mermaid, Graphviz DOT, SVG or PNG",
                       description="Draw the checked network as a diagram: one box per layer with its "
                                   "parameters, tensor shapes on the edges, block instances as clusters. "
                                   "Mermaid needs nothing installed (GitHub renders it); SVG and PNG need "
                                   "Graphviz's `dot`.",
                       epilog="examples:\n  netc graph examples/digits_resnet.yaml\n"
                              "  netc graph examples/digits_resnet.yaml --format svg -o resnet.svg",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("file", metavar="FILE")
    g.add_argument("--format", choices=["mermaid", "dot", "svg", "png"], default=None,
                   help="default: from the -o suffix (.mmd/.md, .dot/.gv, .svg, .png), else mermaid")
    g.add_argument("-o", "--output", default=None, help="write to a file instead of stdout (required for png)")
    _param_flag(g)

    from netc.runner.options import (  # one table: this parser and the DDP launcher
        TRAIN_OPTIONS,
        argparse_kwargs,
    )

    t = sub.add_parser("train", help="train a spec on its data")
    for o in TRAIN_OPTIONS:
        t.add_argument(*(o.flags or (o.dest,)), **argparse_kwargs(o))
    tu = sub.add_parser("tune", help="search a spec's tune: space with Optuna; every trial a run directory",
                        description="Search the spec's tune: block with Optuna (TPE, pruning from per-epoch "
                                    "values). Workers running the same command share the study: on one machine "
                                    "through its journal file, across machines through --storage URL. Ctrl-C "
                                    "stops; the same command resumes.")
    tu.add_argument("file", metavar="SPEC")
    tu.add_argument("--trials", type=int, default=None, metavar="N",
                    help="trials in the whole study, all workers together (default: the tune: block's trials)")
    tu.add_argument("--timeout", type=float, default=None, metavar="S", help="start no trial after S seconds")
    tu.add_argument("--study", default=None, metavar="NAME", help="study name (default: <spec name>_tune)")
    tu.add_argument("--storage", default=None, metavar="URL",
                    help="a database URL shared by workers on several machines (default: a journal file in "
                         "the study directory)")
    tu.add_argument("--out", default=None, metavar="DIR", help="study directory (default: runs/<study>)")
    tu.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a train: key in every trial, e.g. --set train.epochs=5")
    tu.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    _param_flag(tu)
    e = sub.add_parser("eval", help="evaluate a trained run or checkpoint")
    e.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--spec", default=None)
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    e.add_argument("--no-optimize", action="store_true", help="evaluate the training graph (no inference passes)")
    e.add_argument("--format", choices=["text", "json"], default="text", help="a table, or one JSON object")
    pr = sub.add_parser("predict", help="write predictions for a file of inputs")
    pr.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    pr.add_argument("inputs", nargs="?", default=None, metavar="INPUTS", help=".npy/.npz/.csv file")
    pr.add_argument("--spec", default=None)
    pr.add_argument("-o", "--output", default=None, help="predictions file (.csv or .npy)")
    pr.add_argument("-n", "--num-samples", type=int, default=None,
                    help="GAN: samples to generate; language model: tokens to generate (default 200)")
    pr.add_argument("--prompt", default=None, help="language model: text to continue; seq2seq: a source text")
    pr.add_argument("--temperature", type=float, default=1.0, help="language model: sampling temperature (0: greedy)")
    pr.add_argument("--top-k", type=int, default=None, help="language model: sample from the K most likely tokens")
    pr.add_argument("--seed", type=int, default=0, help="language model: seed of the sampling")
    pr.add_argument("--beam", type=int, default=1, help="seq2seq: beam width (1: greedy decoding)")
    pr.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    pr.add_argument("--no-optimize", action="store_true", help="predict with the training graph (no inference passes)")
    ex = sub.add_parser("export", help="a trained run as one file: ONNX, TorchScript, torch.export or Python source "
                                       "(trained, optimised weights; preprocessing inside)")
    ex.add_argument("run", metavar="RUN_DIR")
    ex.add_argument("--format", choices=["onnx", "torchscript", "torch.export", "python"], default="onnx")
    ex.add_argument("-o", "--output", default=None, metavar="FILE",
                    help="default: the run's name with .onnx, .pt, .pt2 or .py, in the working directory")
    ex.add_argument("--no-optimize", action="store_true", help="export the training graph (no inference passes)")
    ls = sub.add_parser("lsp", help="language server for editors (LSP over stdio): live diagnostics, hover, completion")
    ls.add_argument("--stdio", action="store_true", help="accepted for LSP clients that pass it; stdio is the transport")
    ls.add_argument("--debounce-ms", type=float, default=None, metavar="MS",
                    help="a fixed wait after each edit before checking (default: none while checks are fast, "
                         "150 ms for slow documents; or $NETC_LSP_DEBOUNCE_MS)")
    ls.add_argument("--log-file", default=None, help="write the server's log here instead of stderr")
    ls.add_argument("-v", "--verbose", action="store_true", help="log every check and message")
    pr = sub.add_parser("profile", help="per-layer measured time and share; -O2 variants and torch's "
                                        "optimisers timed; which variant the tuner keeps")
    pr.add_argument("target", metavar="SPEC_OR_RUN")
    pr.add_argument("--batch", type=int, default=1, metavar="B", help="batch size (default 1)")
    pr.add_argument("--threads", type=int, default=1, metavar="T", help="torch threads (default 1)")
    pr.add_argument("--rounds", type=int, default=20, metavar="R", help="forwards per median (default 20)")
    _param_flag(pr)
    co = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    co.add_argument("shell", choices=["bash", "zsh", "fish"])
    _document(sub)
    return p


# One example line or two per command, shown under its --help (`netc COMMAND --help`).
EXAMPLES: dict[str, list[str]] = {
    "check": ["netc check examples/*.yaml", "netc check spec.yaml --format json   # for editors and CI"],
    "summary": ["netc summary examples/cifar10_cnn.yaml", "netc summary specs/resnet18.yaml --param classes=10 "
                "--batch-size 32 --format json"],
    "ops": ["netc ops", "netc ops --format json", "netc ops --training   # losses, optimizers, schedules, metrics...",
            "netc ops Conv2D adam   # one op and one optimizer"],
    "schema": ["netc schema -o models/netc.schema.json"],
    "compile": ["netc compile examples/digits_cnn.yaml -o cnn.py", "netc compile spec.yaml --format onnx -o model.onnx"],
    "graph": ["netc graph examples/digits_resnet.yaml", "netc graph examples/digits_resnet.yaml -o resnet.svg"],
    "train": ["netc train examples/digits_cnn.yaml", "netc train spec.yaml --set train.epochs=3 --device auto",
              "netc train spec.yaml --resume runs/spec   # continue an interrupted run"],
    "eval": ["netc eval runs/digits_cnn", "netc eval runs/digits_cnn --split val --format json"],
    "predict": ["netc predict runs/digits_cnn inputs.npy -o preds.csv", "netc predict runs/digits_gan -n 64 -o x.npy",
                "netc predict runs/char_gpt --prompt 'The ' -n 200 --temperature 0.8 --top-k 20"],
    "export": ["netc export runs/digits_cnn --format onnx -o digits_cnn.onnx",
               "netc export runs/digits_cnn --format python -o digits_cnn.py   # + digits_cnn.safetensors"],
    "tune": ["netc tune examples/digits_cnn_tune.yaml --trials 20",
             "netc tune spec.yaml --trials 50 --storage postgresql://host/db   # one study, many machines"],
    "profile": ["netc profile specs/resnet18.yaml --param classes=10 --param size=64 --batch 16",
                "netc profile runs/digits_cnn --threads 2"],
    "lsp": ["netc lsp   # started by the editor: see docs/editors.md"],
    "completion": ["netc completion bash > ~/.local/share/bash-completion/completions/netc",
                   "netc completion zsh > \"${fpath[1]}/_netc\"",
                   "netc completion fish > ~/.config/fish/completions/netc.fish"],
}


def _document(sub: argparse._SubParsersAction) -> None:
    """Give every subcommand's --help its one-line help as a description and its examples."""
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, parser in sub.choices.items():
        if parser.description is None and helps.get(name):
            parser.description = str(helps[name])[:1].upper() + str(helps[name])[1:] + "."
        if parser.epilog is None and name in EXAMPLES:
            parser.epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name])
            parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _param_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                   help="override a value of the spec's params: mapping, e.g. --param classes=100")


def _resource_flags(p: argparse.ArgumentParser) -> None:
    """The resource policy's flags, from the table netc train's options use too: one policy for every command."""
    from netc.runner.options import RESOURCE_OPTIONS, argparse_kwargs

    for o in RESOURCE_OPTIONS:
        p.add_argument(*o.flags, **argparse_kwargs(o))


def _version() -> str:
    from netc import __version__

    return f"netc {__version__}"


def _print_diags(diags: list[Diagnostic], fmt: str = "text", source: str | None = None) -> None:
    if fmt == "json":
        print(diagnostics_json(diags))
        return
    for d in diags:
        print(d.render(source), file=sys.stderr)
    errors = sum(d.severity == "error" for d in diags)
    if errors > 1:
        print(f"{errors} errors", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from netc.compiler.check import check_file, parse_param_overrides
    from netc.compiler.resources import Limits

    overrides = parse_param_overrides(args.params)
    limits = Limits.of_options(args)
    all_diags: list[Diagnostic] = []
    status = EXIT_OK
    for f in args.files:
        try:
            prog = check_file(f, params=overrides, limits=limits)
            all_diags.extend(prog.extra.get("warnings", []))
            if args.format == "text":
                for w in prog.extra.get("warnings", []):
                    print(w.render(), file=sys.stderr)
                parts = [f"{g.name}: {g.params:,} params, output {g.output_type}" for g in prog.graphs.values()]
                print(f"{f}: ok ({'; '.join(parts) or 'blocks only'})")
        except NetcError as e:
            status = max(status, e.exit_code)  # 1 for a bad spec, 2 for a bad --param
            all_diags.extend(e.diagnostics)
            if args.format == "text":
                _print_diags(e.diagnostics, "text", e.source)
    if args.format == "json":
        print(diagnostics_json(all_diags))
    return status


def cmd_summary(args: argparse.Namespace) -> int:
    from netc.compiler.check import check_file
    from netc.compiler.select import select_models
    from netc.compiler.summary import summarize

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    from netc.compiler.check import parse_param_overrides
    from netc.compiler.resources import Limits

    prog = check_file(args.file, params=parse_param_overrides(args.params), limits=Limits.of_options(args))
    graphs = select_models(prog, args.model, blocks_only_ok=True)
    reports = [summarize(g, args.batch_size) for g in graphs]
    if args.format == "json":
        print(json.dumps(reports[0] if len(reports) == 1 else {r["name"]: r for r in reports}, indent=2))
    else:
        from netc.compiler.summary import render_text

        for r in reports:
            print(render_text(r))
    return EXIT_OK


def cmd_ops(args: argparse.Namespace) -> int:
    from netc.compiler.registry import REGISTRY

    if args.names:
        return _named_ops(args.names, args.format)
    if args.training:
        return _training_ops(args.format)
    ops = REGISTRY.all()
    if args.format == "json":
        print(json.dumps([_op_json(o) for o in ops], indent=2, default=list))
        return EXIT_OK
    cat = None
    for o in sorted(ops, key=lambda o: (o.category, o.name)):
        if o.category != cat:
            cat = o.category
            print(f"\n{cat}:")
        _print_op(o)
    return EXIT_OK


def _op_json(o: Any) -> dict[str, Any]:
    return {"name": o.name, "signature": o.signature(), "doc": o.doc, "category": o.category,
            "aliases": list(o.aliases),
            "args": [{"name": a.name, "kind": a.kind, "required": a.required, "doc": a.doc,
                      "default": None if a.required else a.default,
                      "choices": list(a.choices) if a.choices else None} for a in o.args]}


def _print_op(o: Any) -> None:
    alias = f"  (alias: {', '.join(o.aliases)})" if o.aliases else ""
    print(f"  {o.signature()}{alias}\n      {o.doc}")
    for a in o.args:
        print(f"      {a.name:<17} {a.kind:<10} {a.doc}")


def _print_entry(e: dict[str, Any]) -> None:
    print(f"  {e['signature']}\n      {e['doc']}")
    for a in e["args"] if e["table"] != "augment" else []:
        print(f"      {a['name']:<17} {a['kind']:<10} {a['doc']}")


def _named_ops(names: list[str], fmt: str) -> int:
    """``netc ops Conv2D adam``: the ops and training entries of those names (mse is a loss and a metric)."""
    from netc.compiler.registry import REGISTRY
    from netc.compiler.train.reference import vocabulary
    from netc.diagnostics import did_you_mean

    entries = vocabulary()
    found: list[tuple[str, Any]] = []
    for name in names:
        op = REGISTRY.get(name)
        hits = [e for e in entries if e["name"] == name]
        if op is None and not hits:
            hint = did_you_mean(name, [*REGISTRY.names(), *(str(e["name"]) for e in entries)])
            raise UsageError(f"netc ops: no op or training entry named '{name}'",
                             hint=hint or "netc ops lists every op; netc ops --training the train: vocabulary")
        found += [("op", op)] if op is not None else []
        found += [(f"train.{e['table']}" if e["table"] != "source" else "train.data (source)", e) for e in hits]
    if fmt == "json":
        print(json.dumps([_op_json(x) if kind == "op" else x for kind, x in found], indent=2, default=list))
        return EXIT_OK
    for kind, x in found:
        print(f"{kind}:")
        _print_op(x) if kind == "op" else _print_entry(x)
    return EXIT_OK


def _training_ops(fmt: str) -> int:
    """``netc ops --training``: the train: vocabulary, from the tables docs/training.md is generated from."""
    from netc.compiler.train.reference import vocabulary

    entries = vocabulary()
    if fmt == "json":
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    table = None
    for e in entries:
        if e["table"] != table:
            table = e["table"]
            print(f"\ntrain.{table}:" if table != "source" else "\ntrain.data (sources):")
        _print_entry(e)
    print("\nEvery key of train:, with defaults and examples: docs/training.md")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from netc.compiler.schema import schema_text

    text = schema_text()
    if args.output:
        from netc.dsl.files import check_output_path

        check_output_path(args.output)
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from netc.backend.compile_cmd import run_compile

    return run_compile(args)


def cmd_train(args: argparse.Namespace) -> int:
    from netc.runner.cli import run_train

    return run_train(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from netc.runner.tune import run_tune

    return run_tune(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from netc.runner.cli import run_eval

    return run_eval(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from netc.runner.cli import run_predict

    return run_predict(args)


def cmd_export(args: argparse.Namespace) -> int:
    from netc.runner.export import run_export

    return run_export(args)


def cmd_profile(args: argparse.Namespace) -> int:
    from netc.runner.cli import passive_omp_wait

    passive_omp_wait()  # before torch is imported
    from netc.runner.profile import run_profile

    return run_profile(args)


def cmd_graph(args: argparse.Namespace) -> int:
    from netc.compiler.check import parse_param_overrides, read_source
    from netc.compiler.diagram import SUFFIXES, diagram, render

    fmt = args.format or (SUFFIXES.get(Path(args.output).suffix.lower(), "mermaid") if args.output else "mermaid")
    if fmt == "png" and not args.output:
        raise UsageError("--format png writes a binary file: give -o FILE.png")
    if args.output:
        from netc.dsl.files import check_output_path

        check_output_path(args.output, (args.file,))
    data = render(diagram(read_source(args.file), args.file, parse_param_overrides(args.params)), fmt)
    if fmt == "mermaid" and args.output and Path(args.output).suffix.lower() == ".md":
        data = b"```mermaid\n" + data + b"```\n"  # a Markdown file renders the fenced diagram
    if not args.output:
        sys.stdout.write(data.decode("utf-8"))
        return EXIT_OK
    try:
        Path(args.output).write_bytes(data)
    except OSError as e:
        raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(_parser(), args.shell))
    return EXIT_OK


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A completion script for ``shell`` (bash, zsh, fish), generated from the parser: subcommands,
    their flags, the choices of flags and positionals, file names elsewhere."""
    subs = _subparsers(parser)

    def flags(p: argparse.ArgumentParser) -> list[argparse.Action]:
        return [a for a in p._actions if a.option_strings and a.help != argparse.SUPPRESS]

    def words(xs) -> str:
        return " ".join(str(x) for x in xs)

    if shell == "fish":
        out = ["# netc completion for fish: netc completion fish > ~/.config/fish/completions/netc.fish",
               "complete -c netc -f -n '__fish_use_subcommand' -l help -d 'show help'",
               "complete -c netc -f -n '__fish_use_subcommand' -l version -d 'show the version'"]
        helps = {a.dest: a.help for a in next(a for a in parser._actions
                                               if isinstance(a, argparse._SubParsersAction))._choices_actions}
        for name, p in subs.items():
            desc = str(helps.get(name) or "").replace("'", "")
            out.append(f"complete -c netc -f -n '__fish_use_subcommand' -a {name} -d '{desc}'")
            for a in p._actions:
                if not a.option_strings and a.choices:
                    out.append(f"complete -c netc -f -n '__fish_seen_subcommand_from {name}' -a '{words(a.choices)}'")
            for a in flags(p):
                opts = " ".join(f"-l {o[2:]}" if o.startswith("--") else f"-o {o[1:]}" if len(o) > 2
                                else f"-s {o[1:]}" for o in a.option_strings)
                takes = a.nargs != 0 and not isinstance(a, argparse._StoreConstAction | argparse._StoreTrueAction |
                                                        argparse._HelpAction | argparse._VersionAction)
                arg = f" -x -a '{words(a.choices)}'" if a.choices else (" -r" if takes else "")
                desc = str(a.help or "").replace("'", "").split(" (")[0][:60]
                out.append(f"complete -c netc -n '__fish_seen_subcommand_from {name}' {opts}{arg} -d '{desc}'")
        return "\n".join(out) + "\n"
    cases, values = [], []
    for name, p in subs.items():
        cases.append(f"    {name}) opts=\"{words(o for a in flags(p) for o in a.option_strings)}\"; "
                     f"pos=\"{words(c for a in p._actions if not a.option_strings and a.choices for c in a.choices)}\";;")
        for a in flags(p):
            if a.choices:
                for o in a.option_strings:
                    values.append(f"    \"{name} {o}\") COMPREPLY=($(compgen -W \"{words(a.choices)}\" -- \"$cur\")); "
                                  "return;;")
    script = "\n".join([
        "# netc completion for bash (and zsh through bashcompinit): netc completion bash",
        "_netc() {",
        "  local cur prev cmd opts pos",
        "  cur=\"${COMP_WORDS[COMP_CWORD]}\"; prev=\"${COMP_WORDS[COMP_CWORD-1]}\"; cmd=\"${COMP_WORDS[1]}\"",
        "  if [[ $COMP_CWORD -eq 1 ]]; then",
        f"    COMPREPLY=($(compgen -W \"{words(subs)} --help --version\" -- \"$cur\")); return",
        "  fi",
        "  case \"$cmd $prev\" in",
        *values,
        "  esac",
        "  case \"$cmd\" in",
        *cases,
        "    *) return;;",
        "  esac",
        "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$opts --help\" -- \"$cur\"))",
        "  elif [[ -n $pos ]]; then COMPREPLY=($(compgen -W \"$pos\" -- \"$cur\"))",
        "  else COMPREPLY=($(compgen -f -- \"$cur\")); fi",
        "}",
        "complete -o filenames -o bashdefault -F _netc netc",
    ]) + "\n"
    if shell == "zsh":
        script = ("#compdef netc\n# netc completion for zsh: netc completion zsh > \"${fpath[1]}/_netc\"\n"
                  "autoload -U +X bashcompinit && bashcompinit\n" + script)
    return script


def cmd_lsp(args: argparse.Namespace) -> int:
    from netc.lsp.server import serve  # lazy: pygls is imported only by `netc lsp`

    serve(args.debounce_ms, args.log_file, args.verbose)
    return EXIT_OK  # pragma: no cover - serve() ends the process


COMMANDS = {"check": cmd_check, "summary": cmd_summary, "ops": cmd_ops, "schema": cmd_schema,
            "compile": cmd_compile, "train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "lsp": cmd_lsp, "graph": cmd_graph, "completion": cmd_completion,
            "tune": cmd_tune, "profile": cmd_profile, "export": cmd_export}


def _run(args: argparse.Namespace) -> int:
    """One command; an optional extra it needs but cannot import is a MissingExtra (exit 2), not a bug."""
    try:
        return COMMANDS[args.cmd](args)
    except ModuleNotFoundError as e:
        missing = MissingExtra.of(f"netc {args.cmd}", e)
        if missing is None:
            raise
        raise missing from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``netc`` command."""
    parser = _parser()
    _Parser.argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not args.cmd:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return _run(args)
    except UsageError as e:
        print(f"netc: error[cli]: {e.diagnostics[0].message}", file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return EXIT_USAGE
    except NetcError as e:
        _print_diags(e.diagnostics, "text", e.source)
        return e.exit_code
    except KeyboardInterrupt:
        print("netc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug in netc: one clear line, the traceback only on request
        import os

        if os.environ.get("NETC_DEBUG"):
            raise
        print(f"netc: internal error: {type(e).__name__}: {e}\n  hint: this is a bug in netc; rerun with "
              f"NETC_DEBUG=1 for the traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
