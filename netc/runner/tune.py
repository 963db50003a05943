"""``netc tune``: a spec's search space explored by Optuna, every trial an ordinary run directory.

The study lives in its own directory (``runs/<study>/`` by default)::

    study.journal      Optuna's embedded storage (a journal file; --storage URL puts it in a database)
    trial_0000/ ...    one run directory per trial: spec.yaml (a plain spec), metrics, checkpoints
    trials.csv         every trial: number, state, value, epochs, seconds, parameters
    best.yaml          the best trial's spec, no search syntax left: `netc train best.yaml` reproduces it
    history.png        the value of each trial and the best so far
    importance.png     how much each searched value mattered (fANOVA)

Workers are processes running the same command: on one machine they share the journal file (a
file lock makes them take exactly N trials together); across machines they share a database URL,
Optuna's own distributed mode. A study stopped by Ctrl-C resumes when the command runs again.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netc.diagnostics import EXIT_INTERRUPTED, EXIT_OK, UsageError, show

if TYPE_CHECKING:
    from netc.compiler.space import Dim


@dataclass(frozen=True)
class StudyDir:
    """The files of a study directory, named in one place."""

    root: Path

    @property
    def journal(self) -> Path:
        """Optuna's embedded storage, shared by the workers on this machine."""
        return self.root / "study.journal"

    @property
    def ask_lock(self) -> Path:
        """Held while a worker counts the trials and starts one: N trials in all, never N + 1."""
        return self.root / ".ask.lock"

    @property
    def trials_csv(self) -> Path:
        return self.root / "trials.csv"

    @property
    def best(self) -> Path:
        """The best trial as a plain spec."""
        return self.root / "best.yaml"

    def plot(self, name: str) -> Path:
        return self.root / f"{name}.png"

    def trial(self, number: int) -> Path:
        """Trial ``number``'s run directory."""
        return self.root / f"trial_{number:04d}"


# ---------------------------------------------------------------- the study

def monitor_of(cfg: Any) -> tuple[str, str]:
    """The value a trial is judged by and its direction: the engine's monitor (the best checkpoint's)."""
    es = cfg.early_stopping
    if es is not None:
        return es.monitor, cfg.monitor_mode()
    return ("val.loss" if cfg.split.val > 0 else "train.loss"), "min"


def _storage(url: str | None, sdir: StudyDir) -> Any:
    """The embedded journal file in the study directory, or the database at ``url`` (many machines)."""
    import optuna

    if url is None:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        sdir.root.mkdir(parents=True, exist_ok=True)
        path = str(sdir.journal)
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    if "://" not in url:
        raise UsageError(f"--storage {url}: expected a database URL",
                         hint="e.g. --storage postgresql://user:pass@host/db, or sqlite:///study.db; "
                              "leave it out for the embedded journal file in the study directory")
    try:
        return optuna.storages.RDBStorage(url)
    except ModuleNotFoundError:
        raise
    except Exception as e:  # a bad URL, an unreachable server, a missing driver
        raise UsageError(f"--storage {url}: cannot open the database: {type(e).__name__}: {e}"[:400],
                         hint="check the URL and that the database's Python driver is installed "
                              "(psycopg2 for PostgreSQL, pymysql for MySQL)") from None


def _pruner(name: str, epochs: int) -> Any:
    import optuna

    if name == "hyperband":  # brackets of 1 .. epochs epochs
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    if name == "median":  # after 3 finished trials, from epoch 3 on: below the median of earlier trials stops
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    return optuna.pruners.NopPruner()


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: running trials count as bad guesses, so concurrent workers do not all try the same spot
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _suggest(trial: Any, d: Dim) -> Any:
    if d.kind == "choice":
        return trial.suggest_categorical(d.name, list(d.choices))
    if d.kind == "int":
        return trial.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
    return trial.suggest_float(d.name, float(d.low), float(d.high), step=d.step, log=d.kind == "loguniform")


@contextlib.contextmanager
def _exclusive(path: Path | None) -> Iterator[None]:
    """An advisory lock on ``path`` (None: no lock, e.g. a database shared across machines)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks on this platform
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _counted(study: Any) -> int:
    """Trials that count towards --trials: all but those a Ctrl-C interrupted (they are run again)."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if not (t.state.name == "FAIL" and t.user_attrs.get("interrupted")))


# ---------------------------------------------------------------- netc tune

def run_tune(args: argparse.Namespace) -> int:
    """``netc tune SPEC --trials N [--timeout S] [--study NAME] [--storage URL] [--out DIR]``."""
    from netc.runner.cli import passive_omp_wait

    passive_omp_wait()  # before torch is imported
    import optuna  # the [tune] extra: a missing one is exit 2 naming it
    import torch  # noqa: F401  the [train] extra, asked for before any work

    from netc.runner.cli import _checked
    from netc.runner.gan import is_gan

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # 1. the spec and its search space, checked as `netc check` checks them (corners included)
    checked = _checked(args.file, args.params)
    space = checked.space
    if space is None:
        raise UsageError(f"{args.file} has no tune: block, so there is nothing to search",
                         hint="add e.g. `tune: {params: {width: choice(16, 32, 64)}}` (see docs/tuning.md)")
    if is_gan(checked.program.graphs):
        raise UsageError("netc tune searches supervised specs; a GAN has no held-out value to compare trials by")
    cfg = checked.train_config(args.sets, args.device)
    monitor, mode = monitor_of(cfg)
    n_trials = args.trials or space.trials
    if not n_trials or n_trials < 1:
        raise UsageError("how many trials? give --trials N (or trials: N in the tune: block)",
                         hint=f"e.g. netc tune {args.file} --trials 20")
    # 2. the study: its directory, storage (embedded journal or a database), sampler and pruner
    name = args.study or (checked.program.name if checked.program.name.endswith("tune")
                          else f"{checked.program.name}_tune")
    sdir = StudyDir(Path(args.out or Path("runs") / name))
    storage = _storage(args.storage, sdir)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize" if mode == "min" else "maximize",
                                pruner=_pruner(space.pruner, cfg.epochs), load_if_exists=True)
    known = study.user_attrs.get("monitor")
    if known is not None and known != monitor:
        raise UsageError(f"study {name} compares trials by {known}, this spec by {monitor}",
                         hint="pick another --study NAME, or monitor the same value")
    if known is None:
        study.set_user_attr("monitor", monitor)
    print(f"study {name}: {n_trials} trials, {monitor} ({'lower' if mode == 'min' else 'higher'} is better), "
          f"{space.sampler} sampler, {space.pruner} pruner; trials in {sdir.root}", file=sys.stderr)
    # 3. trials until the study holds N of them (or --timeout passes); each one an ordinary run
    lock = sdir.ask_lock if args.storage is None else None
    deadline = time.monotonic() + args.timeout if args.timeout else math.inf
    seeded = False
    while time.monotonic() < deadline:
        try:
            trial = _next_trial(study, space, checked, lock, n_trials, seeded)
        except KeyboardInterrupt:  # between trials: nothing was started
            print("stopped; run the same command to resume the study", file=sys.stderr)
            return EXIT_INTERRUPTED
        if trial is None:
            break
        seeded = True
        interrupted = _run_trial(args, checked, space, study, trial, sdir, monitor)
        if interrupted:
            print(f"stopped: trial {trial.number} was interrupted; run the same command to resume the study "
                  f"({_counted(study)} of {n_trials} trials done)", file=sys.stderr)
            _results(study, sdir, monitor, quiet=True)
            return EXIT_INTERRUPTED
    # 4. results: the table, best.yaml, plots
    return _results(study, sdir, monitor)


def _next_trial(study: Any, space: Any, checked: Any, lock: Path | None, n_trials: int, seeded: bool) -> Any:
    """The next trial, or None once the study holds N (asked under the lock: workers never take N + 1)."""
    with _exclusive(lock):
        done = _counted(study)
        if done >= n_trials:
            return None
        if done == 0 and not study.get_trials(deepcopy=False):  # the spec's own values are tried first
            study.enqueue_trial(space.defaults(checked.spec), skip_if_exists=True)
        if not seeded:  # each worker its own stream: seed + the trials already in the study when it joined
            study.sampler = _sampler(space.sampler, space.seed + done)
        return study.ask()


def _run_trial(args: argparse.Namespace, checked: Any, space: Any, study: Any, trial: Any, sdir: StudyDir,
               monitor: str) -> bool:
    """Train one trial and tell the study how it went; True when Ctrl-C interrupted it."""
    import optuna

    from netc.runner.engine import TrainingDiverged, TrainingInterrupted

    t0 = time.perf_counter()
    try:
        values = {d.name: _suggest(trial, d) for d in space.dims}
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        print(f"trial {trial.number}: {shown}", file=sys.stderr)
        text = trial_spec(checked, space, values, args.sets, sdir.trial(trial.number),
                          [f"trial {trial.number} of study {study.study_name}"])
        trial.set_user_attr("spec", text)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        value = _train(args, text, trial, sdir.trial(trial.number), monitor)
    except optuna.TrialPruned as p:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        print(f"trial {trial.number}: pruned {p} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        return False
    except TrainingDiverged as e:  # e.g. a learning rate too high: a result of the search, not a reason to stop it
        trial.set_user_attr("error", e.diagnostics[0].message)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        print(f"trial {trial.number}: failed: {e.diagnostics[0].message}", file=sys.stderr)
        return False
    except (TrainingInterrupted, KeyboardInterrupt):
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return True
    except BaseException as e:
        with contextlib.suppress(Exception):
            trial.set_user_attr("error", str(e)[:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    if value is None or not math.isfinite(value):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        print(f"trial {trial.number}: no finite {monitor}", file=sys.stderr)
        return False
    study.tell(trial, value)
    print(f"trial {trial.number}: {monitor} {value:.4g} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return False


def trial_spec(checked: Any, space: Any, values: dict[str, Any], sets: list[str] | None, run_dir: Path,
               header: list[str]) -> str:
    """The plain spec of one trial: the sampled values and the command's --param/--set baked in."""
    from netc.compiler.space import plain_spec, train_with
    from netc.compiler.train.config import TrainConfig, absolute_paths, spec_folder

    spec = checked.spec
    params, train_values = space.split(values)
    # the trial's spec lives in its run directory: paths relative to the original spec become absolute
    train = train_with(absolute_paths(spec.train, spec_folder(spec.file)), train_values)
    if sets:  # --set items become part of the trial's spec, so best.yaml alone reproduces the trial
        before = TrainConfig.from_dict(train).to_dict()
        after = TrainConfig.from_dict(train).apply_overrides(sets).to_dict()
        train = train_with(train, _changed(before, after))
    cli_params = {k: v for k, v in spec.params.items() if v != _declared(spec).get(k, v)}  # --param values
    return plain_spec(spec, {**cli_params, **params}, train, run_dir, header)


def _changed(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of the leaves that differ (``{"data.limit": 400}``)."""
    out: dict[str, Any] = {}
    for k, v in after.items():
        if isinstance(v, dict) and isinstance(before.get(k), dict):
            out.update(_changed(before[k], v, f"{prefix}{k}."))
        elif before.get(k) != v:
            out[prefix + k] = v
    return out


def _declared(spec: Any) -> dict[str, Any]:
    from netc.dsl.yamlload import to_python

    node = spec.root.get("params")
    return to_python(node) if node is not None else {}


def _train(args: argparse.Namespace, text: str, trial: Any, run_dir: Path, monitor: str) -> float | None:
    """Train the trial's spec in ``run_dir``, reporting every epoch's value to the pruner; the best value."""
    import optuna

    from netc.compiler.frontend import front_end
    from netc.runner.checkpoint import atomic_write
    from netc.runner.cli import _build, _supervised_graph, inputs_of
    from netc.runner.engine import monitor_value
    from netc.runner.loop import fit, seed_everything
    from netc.runner.rundir import RunDir

    rd = RunDir(run_dir)
    checked = front_end(text, str(rd.spec))
    program = checked.program
    graph = _supervised_graph(program)
    cfg = checked.train_config(None, args.device)

    def on_start() -> None:
        atomic_write(rd.spec, text)
        atomic_write(rd.run_json, json.dumps({"spec": str(args.file), "model": graph.name, "params": [],
                                              "study": trial.study.study_name, "trial": trial.number}, indent=2))

    def on_epoch(record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        trial.report(monitor_value(record, monitor), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"at epoch {epoch}")

    with rd.lock():
        seed_everything(cfg.seed)  # the same initial weights as `netc train` of the same spec
        model = _build(program)
        result = fit(model, inputs_of(graph), cfg, run_dir, on_start=on_start, on_epoch=on_epoch, progress=False)
    return result.best_value


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else show(v)


# ---------------------------------------------------------------- results

def _results(study: Any, sdir: StudyDir, monitor: str, quiet: bool = False) -> int:
    """The table of trials (stdout and trials.csv), best.yaml and the plots."""
    from netc.runner.checkpoint import atomic_write

    trials = study.get_trials(deepcopy=False)
    names = list(dict.fromkeys(k for t in trials for k in t.params))
    rows = []
    for t in trials:
        secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start \
            else None
        value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                     if t.intermediate_values else None)
        rows.append({"trial": t.number, "state": t.state.name.lower(), monitor: value,
                     "epochs": max(t.intermediate_values) if t.intermediate_values else 0,
                     "seconds": None if secs is None else round(secs, 1),
                     **{n: t.params.get(n) for n in names}})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["trial", "state", monitor, "epochs", "seconds", *names], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(sdir.trials_csv, buf.getvalue())
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not quiet:
        print(format_table(rows, ["trial", "state", monitor, "epochs", "seconds", *names]))
    if not complete:
        print(f"no trial finished yet; trials are listed in {sdir.trials_csv}", file=sys.stderr)
        return EXIT_OK
    best = study.best_trial
    text = best.user_attrs.get("spec", "")
    head = (f"# best trial {best.number} of study {study.study_name}: {monitor} {best.value:.6g}\n"
            f"# reproduce it with: netc train {sdir.best}\n")
    atomic_write(sdir.best, head + "\n".join(line for line in text.splitlines() if not line.startswith("# trial "))
                 + "\n")
    _plots(study, sdir, monitor)
    pruned = sum(t.state.name == "PRUNED" for t in trials)
    print(f"best trial {best.number}: {monitor} {best.value:.4g} ({', '.join(f'{k}={_fmt(v)}' for k, v in best.params.items())}); "
          f"{len(complete)} complete, {pruned} pruned of {len(trials)}\n"
          f"wrote {sdir.best} (reproduce it with: netc train {sdir.best}), {sdir.trials_csv}, "
          f"{sdir.plot('history')}, {sdir.plot('importance')}", file=sys.stderr)
    return EXIT_OK


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as an aligned plain-text table."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else show(v)


def _plots(study: Any, sdir: StudyDir, monitor: str) -> None:
    """history.png (each trial's value, the best so far) and importance.png (fANOVA importance)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    minimize = study.direction.name == "MINIMIZE"
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.scatter([t.number for t in done], [t.value for t in done], s=18, label="complete")
    pruned = [t for t in trials if t.state.name == "PRUNED" and t.intermediate_values]
    if pruned:
        ax.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                   marker="x", color="grey", s=18, label="pruned (last epoch)")
    best, xs, ys = None, [], []
    for t in sorted(done, key=lambda t: t.number):
        if best is None or (t.value < best if minimize else t.value > best):
            best = t.value
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(monitor)
    ax.set_title(f"optimisation history: {study.study_name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(sdir.plot("history"))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    try:
        import optuna

        importance = optuna.importance.get_param_importances(study)
    except Exception as e:  # fewer than two finished trials, or no parameter varied
        importance = {}
        ax.text(0.5, 0.5, f"not enough finished trials yet\n({type(e).__name__})", ha="center", va="center")
        ax.set_axis_off()
    if importance:
        names = list(importance)[::-1]
        ax.barh(names, [importance[n] for n in names])
        ax.set_xlabel(f"importance for {monitor} (fANOVA)")
    ax.set_title(f"parameter importance: {study.study_name}")
    fig.tight_layout()
    fig.savefig(sdir.plot("importance"))
    plt.close(fig)


__all__ = ["StudyDir", "format_table", "monitor_of", "run_tune", "trial_spec"]
