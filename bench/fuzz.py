"""Fuzz netc: the front end in-process, and the real command line in fresh processes.

  python bench/fuzz.py [--cases 10000] [--cli 500] [--jobs 2] [--seed 0]

In-process: mutated examples, generated chains, hostile arguments and the attack classes of
issue 21 (expansion bombs, numeric extremes, special-file imports) through the front end.
Through the CLI (``python -m netc check/summary/compile/schema/train`` subprocesses, at most
``--jobs`` at a time, each killed after 10 s; ``netc train`` pairs after 180 s): the same documents,
hostile file names (quotes, newlines, U+2028, non-UTF-8 bytes, code that would create a file if it
ever ran), special files as specs, imports and outputs (FIFOs, /dev/zero, symlink loops, a 20 GB
sparse file, directories), numeric extremes in flags, and two ``netc train`` writing one ``--out``.

Every case must end in a clean result, located diagnostics (file:line:col) or a named usage error
(exit 2): never a traceback, an internal error (exit 70), a hang or an unlocated error. Prints
counts by outcome; exits 1 if any case failed. Each failing case is saved to bench/fuzz_corpus/
(a document, or a CLI case as JSON) and replayed first on every later run, tests/test_fuzz.py included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASE_SECONDS = 5  # an in-process case that takes longer is a hang
CLI_SECONDS = 10  # a CLI case (a fresh process, imports included) that takes longer is a hang
TRAIN_SECONDS = 180  # a pair of `netc train` processes on one --out (torch import and one short epoch each)
CORPUS_DIR = ROOT / "bench" / "fuzz_corpus"  # every case that ever failed, replayed first

OPS = ["Dense", "Conv2D", "Conv1D", "MaxPool", "AvgPool", "BatchNorm", "LayerNorm", "ReLU", "Flatten",
       "Dropout", "LSTM", "GRU", "RNN", "Embedding", "MultiHeadAttention", "Reshape", "Permute", "Add",
       "Concat", "GlobalAvgPool", "TransformerEncoder", "PositionalEncoding", "ConvTranspose2D", "Softmax",
       "SeqPool", "Res", "Nope", "dense", "x", "in"]
HOSTILE = ["0", "-1", "-999999", "10**12", "1000000000000", "99999999999999999999999", "1e308", "-1e-308",
           "nan", "inf", "true", "none", "'s'", "[]", "[0, 0]", "[-1, -1]", "[1, 2, 3, 4, 5]", "same", "valid",
           "c", "c * 0", "c // 0", "1 / 0", "((1))", "[[1]]", "x", "padding=same", "k=1", "3.5", "2"]


def seeds() -> list[tuple[str, str]]:
    """The texts to mutate: every example and spec (and the golden error cases)."""
    files = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("specs/*.yaml"),
                    *ROOT.glob("tests/golden/diagnostics/*.yaml")])
    return [(str(p), p.read_text(encoding="utf-8")) for p in files]


def mutate(text: str, rng: random.Random) -> str | bytes:
    """One random mutation of a spec text."""
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(9)
    if kind == 0 and lines:  # delete a line
        del lines[rng.randrange(len(lines))]
    elif kind == 1 and lines:  # duplicate a line
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif kind == 2 and len(lines) > 1:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:  # truncate at any byte
        data = text.encode("utf-8")
        return data[: rng.randrange(len(data) + 1)]
    elif kind == 4:  # insert random bytes
        data = bytearray(text.encode("utf-8"))
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        return bytes(data)
    elif kind == 5:  # replace a number with a hostile value
        import re

        nums = list(re.finditer(r"(?<![A-Za-z_])\d+(\.\d+)?", text))
        if nums:
            m = rng.choice(nums)
            return text[: m.start()] + rng.choice(HOSTILE) + text[m.end():]
    elif kind == 6:  # replace an op name
        import re

        names = list(re.finditer(r"\b[A-Z][A-Za-z0-9]+\b", text))
        if names:
            m = rng.choice(names)
            return text[: m.start()] + rng.choice(OPS) + text[m.end():]
    elif kind == 7:  # random chain appended as a model
        return text + "\nmodel: " + random_chain(rng) + "\n"
    else:  # insert a random character of the chain alphabet
        alphabet = "()[],=*→->: \n\t'\"#&*!|>-{}%@`"
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(alphabet) + text[at:]
    return "".join(lines)


def random_chain(rng: random.Random) -> str:
    """A chain of random ops with random (often hostile) arguments."""
    steps = []
    for _ in range(rng.randrange(1, 7)):
        op = rng.choice(OPS)
        if rng.random() < 0.7:
            args = [rng.choice(HOSTILE) for _ in range(rng.randrange(0, 4))]
            op += "(" + ", ".join(args) + ")"
        if rng.random() < 0.1:
            op += f" * {rng.choice(['2', '0', '100', 'x'])}"
        steps.append(op)
    return rng.choice([" → ", " -> ", " "]).join(steps)


# Every document that once crashed, hung or ran for minutes (issue 21's independent attack): run first, always.
_HEAD = "netc: 1\nname: m\ninput: [8]\n"
CORPUS: list[tuple[str, str]] = [
    ("repeat-20000", _HEAD + "model: Dense(8) * 20000\n"),
    ("repeat-1e9", _HEAD + "model: Dense(8) * 999999999\n"),
    ("repeat-5000-digits", _HEAD + f"model: Dense(8) * {'9' * 5000}\n"),
    ("sum-1000-terms", _HEAD + f"model: Dense({' + '.join(['1'] * 1000)})\n"),
    ("brackets-1000-deep", _HEAD + f"model: Reshape({'[' * 1000}8{']' * 1000})\n"),
    ("int-5000-digits", _HEAD + f"model: Dense({'9' * 5000})\n"),
    ("int-4300-digits-yaml", _HEAD + f"params: {{a: {'9' * 4300}}}\nmodel: Dense(a)\n"),
    ("hex-4000-digits", _HEAD + f"params: {{a: 0x{'f' * 4000}}}\nmodel: Dense(a)\n"),
    ("product-overflow", _HEAD + f"model: Dense({' * '.join(['9' * 90] * 50)})\n"),
    ("block-bomb", _HEAD + "blocks:\n  A: {out: ReLU * 100}\n  B: {out: A * 100}\n  C: {out: B * 100}\nmodel: C\n"),
    ("alias-bomb", _HEAD + "blocks:\n  R:\n    a: in\n    b: a\n    out: b\nmodel: R * 60000\n"),
    ("import-nul", _HEAD + 'imports: {lib: "a\\0b.yaml"}\nmodel: Dense(8)\n'),
    ("import-dev-zero", _HEAD + "imports: {lib: /dev/zero}\nmodel: Dense(8)\n"),
]


def attack(rng: random.Random) -> str:
    """One document of the classes the first fuzzer never produced: expansion bombs and numeric extremes."""
    kind = rng.randrange(6)
    digits = rng.choice([90, 101, 4299, 4300, 4301, 5000])
    if kind == 0:  # repetition, possibly huge or with a huge count
        count = rng.choice(["20000", "100001", "999999999", "9" * digits])
        return _HEAD + f"model: {rng.choice(OPS)}(8) * {count}\n"
    if kind == 1:  # long arithmetic chains
        terms = rng.choice([50, 101, 1000, 5000])
        return _HEAD + f"model: Dense({rng.choice([' + ', ' - ', ' * ', ' // '] ).join(['1'] * terms)})\n"
    if kind == 2:  # deep brackets
        depth = rng.choice([50, 101, 1000, 10000])
        o, c = rng.choice([("(", ")"), ("[", "]")])
        return _HEAD + f"model: Reshape({o * depth}8{c * depth})\n"
    if kind == 3:  # long integers in YAML and in chains
        lit = rng.choice(["", "0x", "-"]) + ("f" if rng.random() < 0.3 else "9") * digits
        return _HEAD + rng.choice([f"params: {{a: {lit}}}\nmodel: Dense(a)\n", f"model: Dense({lit.lstrip('0x')})\n"])
    if kind == 4:  # nested block bombs
        n = rng.choice([10, 100, 1000])
        return _HEAD + f"blocks:\n  A: {{out: ReLU * {n}}}\n  B: {{out: A * {n}}}\n  C: {{out: B * {n}}}\nmodel: C\n"
    return _HEAD + "imports: {lib: " + rng.choice(['"a\\0b.yaml"', "/dev/zero", "/dev/null", "/proc/self/mem",
                                                    ".", "/"]) + "}\nmodel: Dense(8)\n"


def saved_documents() -> list[tuple[str, bytes]]:
    """Documents that failed in an earlier run (bench/fuzz_corpus/*.yaml), by name."""
    return [(f"saved:{p.name}", p.read_bytes()) for p in sorted(CORPUS_DIR.glob("*.yaml"))]


def cases(n: int, seed: int) -> Iterator[tuple[str, str | bytes]]:
    """``n`` fuzz cases: (name, document); the regression corpus (built in, then saved) first."""
    rng = random.Random(seed)
    base = seeds()
    corpus = [(f"corpus:{name}", doc) for name, doc in CORPUS] + saved_documents()
    for i in range(n):
        if i < len(corpus):
            yield corpus[i]
            continue
        r = rng.random()
        if r < 0.05:
            yield f"attack#{i}", attack(rng)
            continue
        if r < 0.75:
            name, text = rng.choice(base)
            doc = mutate(text, rng)
            for _ in range(rng.randrange(3)):  # sometimes stack mutations
                doc = mutate(doc.decode("utf-8", "replace") if isinstance(doc, bytes) else doc, rng)
            yield f"{Path(name).name}#mut{i}", doc
        elif r < 0.9:
            shape = rng.choice(["[1, 8, 8]", "[64]", "[8, 8]", "[3, 32, 32]", "{tokens: {shape: [T], dtype: int64}}",
                                "[0]", "[-3]", "[1000000000, 1000000000]"])
            yield f"chain#{i}", f"netc: 1\ninput: {shape}\nmodel: {random_chain(rng)}\n"
        else:
            yield f"bytes#{i}", bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def run_case(doc: str | bytes, name: str = "<fuzz>") -> str:
    """Outcome of checking one document: 'ok', 'diagnostics', 'unlocated', 'traceback:...' or 'hang'."""
    from netc.compiler.check import check_text
    from netc.diagnostics import NetcError

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        check_text(doc, name)
        return "ok"
    except Hang:
        return "hang"
    except NetcError as e:
        for d in e.diagnostics:
            if d.span is None or d.span.line < 1 or d.span.col < 1:
                return f"unlocated: {d.kind}: {d.message}"
            str(e)  # rendering must not crash either
        return "diagnostics"
    except Exception as e:  # the outcome fuzzing hunts for
        return f"traceback: {type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------------------- through the command line

# A CLI case is data (so a failing one can be saved and replayed): the files to create in a fresh
# folder, then one command line (or two run at once). A file is {"text": str} | {"hex": bytes as hex} |
# {"fifo": 1} | {"symlink": target} | {"sparse": size} | {"dir": 1}; a file name given in hex (names that
# are not UTF-8) carries "hexname". "{name}" in a command line stands for the case's hostile name.
VALID = "netc: 1\nname: m\ninput: [8]\nmodel: Dense(8) → ReLU → Dense(2)\n"
TINY_TRAIN = ("netc: 1\nname: tiny\ninput: [64]\nmodel: Dense(16) → ReLU → Dense(10)\n"
              "train:\n  data: {source: digits, limit: 300}\n  epochs: 1\n  batch_size: 64\n")
PWNED = "PWNED"  # a file the payloads below create if any text of a case ever runs as code
PAYLOAD = "__import__('pathlib').Path('PWNED').touch()"
NAME_PIECES = ['"""', "'''", '"', "'", "\n", "\r", "\u2028", "\x85", "\t", "\\", "#", " ", "é", "→", "-", "--",
               "$(touch PWNED)", "`touch PWNED`", ";", "|", "*", "?", "[", "{}", "%s", "..", ".yaml",
               PAYLOAD, "\n" + PAYLOAD + "\n", '"""\n' + PAYLOAD + '\n"""', "\n        " + PAYLOAD + "\n"]
SPECIAL_PATHS = ["/dev/zero", "/dev/null", "/dev/urandom", "/dev/full", "/proc/self/mem", "/proc/self/fd/0",
                 "/", ".", "fifo", "loop1", "sparse.yaml", "folder", "dangling", "missing.yaml", "empty.yaml"]
SPECIAL_FILES = {"fifo": {"fifo": 1}, "loop1": {"symlink": "loop2"}, "loop2": {"symlink": "loop1"},
                 "sparse.yaml": {"sparse": 20 * 10**9}, "folder": {"dir": 1}, "dangling": {"symlink": "nowhere"},
                 "empty.yaml": {"text": ""}, "s.yaml": {"text": VALID}}
# Limits a generated document is checked under: lowered, default-sized or malformed (never raised: a raised
# limit is the user's permission to spend more, so a bomb under --max-nodes 10**30 may rightly take long;
# huge values meet only a small spec, in the numeric class)
FLAG_VALUES = {"--max-memory": ["1", "1KB", "8GB", "0", "-1", "lots", "1.5GiB"],
               "--max-params": ["1", "0", "-5", "4_000_000_000", "x"],
               "--max-nodes": ["1", "2", "0", "100000", "-7"]}
OK_OUTCOMES = ("ok", "diagnostics", "usage")


def _doc_file(doc: str | bytes) -> dict:
    return {"hex": doc.hex()} if isinstance(doc, bytes) else {"text": doc}


def _hostile_name(rng: random.Random) -> bytes:
    name = "".join(rng.choice(NAME_PIECES) for _ in range(rng.randrange(1, 5)))
    raw = name.replace("/", "_").encode("utf-8", "surrogateescape").replace(b"\0", b"0")
    if rng.random() < 0.2:  # not UTF-8 at all
        raw += bytes([rng.choice([0x80, 0xff, 0xc3, 0xed])])
    if rng.random() < 0.1:  # as long as a name can be
        raw = (raw + b"x" * 255)[:240]
    return (raw or b"x")[:240] + rng.choice([b".yaml", b"", b".yml"])


def _flags(rng: random.Random) -> list[str]:
    if rng.random() > 0.15:
        return []
    flag = rng.choice(list(FLAG_VALUES))
    return [flag, rng.choice(FLAG_VALUES[flag])]


def _import_files() -> dict:
    files = dict(SPECIAL_FILES)
    for k in range(24):  # a chain deeper than the import bound
        files[f"deep{k}.yaml"] = {"text": f"netc: 1\nimports: {{n: deep{k + 1}.yaml}}\nblocks:\n  B{k}: n.B{k + 1}\n"}
    files["deep24.yaml"] = {"text": "netc: 1\nblocks:\n  B24: Dense(4)\n"}
    files["wide.yaml"] = {"text": "netc: 1\nimports:\n" + "".join(f"  a{k}: s.yaml\n" for k in range(300))}
    return files


def saved_cli_cases() -> list[dict]:
    """CLI cases that failed in an earlier run (bench/fuzz_corpus/*.json)."""
    return [{**json.loads(p.read_text()), "name": f"saved:{p.name}"} for p in sorted(CORPUS_DIR.glob("*.json"))]


def cli_cases(n: int, seed: int, *, train: bool = True) -> Iterator[dict]:
    """``n`` CLI cases: saved failures first, then the classes in turn (generated documents most often)."""
    rng = random.Random(seed + 1)
    docs = cases(10 * n + 100, seed + 2)
    made = 0
    for case in saved_cli_cases()[:n]:
        made += 1
        yield case
    i = 0
    while made < n:
        i += 1
        r = rng.random()
        if train and i % 100 == 50:  # concurrent writers: two `netc train` on one --out
            argv = ["train", "t.yaml", "--out", "run", "--device", "cpu"] + (["--force"] if rng.random() < 0.5 else [])
            case = {"name": f"cli-train-pair#{i}", "files": {"t.yaml": {"text": TINY_TRAIN}},
                    "argv": [argv, argv], "timeout": TRAIN_SECONDS}
        elif r < 0.55:  # a generated document through check, summary or compile
            name, doc = next(docs)
            cmd = rng.choices(["check", "summary", "compile"], [6, 3, 1])[0]
            extra = {"check": [], "summary": rng.choice([[], ["--format", "json"], ["--batch-size", "1000000000"]]),
                     "compile": rng.choice([["--format", "ir"], [], ["-o", "out.py"], ["-O0"]])}[cmd]
            case = {"name": f"cli-doc:{name}", "files": {"s.yaml": _doc_file(doc)},
                    "argv": [[cmd, "s.yaml", *extra, *_flags(rng)]]}
        elif r < 0.70:  # a hostile file name, as input and as output
            raw = _hostile_name(rng)
            argv = rng.choice([["check", "{name}"], ["summary", "{name}"], ["compile", "{name}"],
                               ["compile", "s.yaml", "-o", "{name}.py"], ["graph", "{name}"]])
            files = {"s.yaml": {"text": VALID}}
            if argv[1] == "{name}":
                files[raw.hex()] = {"text": VALID, "hexname": 1}
            case = {"name": f"cli-name#{i}", "files": files, "argv": [argv], "name_hex": raw.hex()}
        elif r < 0.80:  # special files as the spec
            case = {"name": f"cli-special-spec#{i}", "files": dict(SPECIAL_FILES),
                    "argv": [[rng.choice(["check", "summary", "compile", "graph"]), rng.choice(SPECIAL_PATHS)]]}
        elif r < 0.88:  # special files and bombs as imports
            target = rng.choice(SPECIAL_PATHS + ["deep0.yaml", "wide.yaml", "s.yaml", "top.yaml", "a\0b.yaml"])
            files = _import_files()
            files["top.yaml"] = {"text": f"netc: 1\nname: m\nimports: {{lib: {json.dumps(target)}}}\n"
                                         f"input: [8]\nmodel: Dense(8)\n"}
            case = {"name": f"cli-special-import#{i}", "files": files,
                    "argv": [[rng.choice(["check", "summary", "compile"]), "top.yaml"]]}
        elif r < 0.95:  # special files as outputs
            out = rng.choice(SPECIAL_PATHS + ["s.yaml", "no/such/dir/x.py", "folder/", "loop1"])
            argv = rng.choice([["compile", "s.yaml", "-o", out], ["compile", "s.yaml", "--format", "ir", "-o", out],
                               ["schema", "-o", out], ["graph", "s.yaml", "-o", out]])
            case = {"name": f"cli-special-output#{i}", "files": dict(SPECIAL_FILES), "argv": [argv]}
        else:  # numeric extremes in flags and --param
            big = rng.choice(["9" * 5000, "9" * 30, "1e999", "99999999999999999999TB", "-1", "0", "nan", "0x" + "f" * 100,
                              "'x'" * 1000])
            argv = rng.choice([["check", "p.yaml", "--param", f"n={big}"], ["summary", "p.yaml", "--batch-size", big],
                               ["check", "p.yaml", "--max-nodes", big], ["check", "p.yaml", "--max-memory", big],
                               ["compile", "p.yaml", "--param", f"n={big}", "--format", "ir"]])
            case = {"name": f"cli-numeric#{i}", "argv": [argv],
                    "files": {"p.yaml": {"text": "netc: 1\nname: m\nparams: {n: 8}\ninput: [8]\nmodel: Dense(n)\n"}}}
        made += 1
        yield case


def _materialise(case: dict, where: Path) -> None:
    """Create the case's files in ``where``."""
    for name, f in case["files"].items():
        path = where / (os.fsdecode(bytes.fromhex(name)) if f.get("hexname") else name)
        if "text" in f:
            path.write_text(f["text"], encoding="utf-8")
        elif "hex" in f:
            path.write_bytes(bytes.fromhex(f["hex"]))
        elif "fifo" in f:
            os.mkfifo(path)
        elif "symlink" in f:
            os.symlink(f["symlink"], path)
        elif "sparse" in f:
            with open(path, "wb") as fh:
                fh.truncate(f["sparse"])
        elif "dir" in f:
            path.mkdir()


def _argv(args: list[str], case: dict) -> list[str | bytes]:
    """The command line with ``{name}`` replaced by the case's hostile name (bytes)."""
    name = bytes.fromhex(case.get("name_hex", ""))
    return [a.replace("{name}", "").encode().join([b"", name]) if a.startswith("{name}") else a for a in args]


LOCATED = re.compile(r"^\S.*:\d+:\d+: error\[", re.MULTILINE)  # file:line:col: error[kind]
NAMED = re.compile(r"^netc( \w+)?: error\[\w+\]", re.MULTILINE)  # a usage error, named by its flag or path


def classify(rc: int | None, err: str) -> str:
    """The outcome of one process: ok, diagnostics, usage, traceback, internal, hang, unlocated or crash."""
    if rc is None:
        return "hang"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if rc == 70 or "internal error" in err:
        return "internal"
    if rc == 0:
        return "ok"
    if rc == 1:
        return "diagnostics" if LOCATED.search(err) else "unlocated"
    if rc == 2:
        return "usage" if NAMED.search(err) or LOCATED.search(err) else "unlocated"
    return f"crash(rc={rc})"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NETC_DEBUG"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_cli_case(case: dict, tmp: Path) -> tuple[str, str]:
    """Run one CLI case in a fresh folder under ``tmp``: (outcome, detail)."""
    where = Path(tempfile.mkdtemp(dir=tmp))
    try:
        _materialise(case, where)
        deadline = time.monotonic() + case.get("timeout", CLI_SECONDS)
        procs = [subprocess.Popen([sys.executable, "-m", "netc", *_argv(a, case)], cwd=where, env=_env(),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True) for a in case["argv"]]
        results: list[tuple[int | None, str]] = []
        for p in procs:
            try:
                _, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
                results.append((p.returncode, err.decode("utf-8", "replace")))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
                results.append((None, ""))
        if (where / PWNED).exists():
            return "executed", "a payload in the case ran as code"
        outcomes = [classify(rc, err) for rc, err in results]
        for o, (_, err) in zip(outcomes, results):
            if o not in OK_OUTCOMES:
                return o, err[-800:]
        if len(procs) == 2:  # concurrent writers: one wins, the other is refused by name; the run is whole
            return _check_pair(where, results)
        argv = case["argv"][0]
        if argv[0] == "compile" and "-o" in argv and outcomes[0] == "ok":
            out = where / os.fsdecode(_argv([argv[argv.index("-o") + 1]], case)[0])
            if out.suffix == ".py" and out.is_file():
                import ast

                ast.parse(out.read_text(encoding="utf-8"))  # what netc compile wrote is Python
        return outcomes[0], ""
    except SyntaxError as e:
        return "bad-source", str(e)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _check_pair(where: Path, results: list[tuple[int | None, str]]) -> tuple[str, str]:
    codes = sorted(rc for rc, _ in results if rc is not None)
    if not codes or codes[0] != 0:
        return "pair-no-winner", f"exit codes {codes}: " + " | ".join(err[-300:] for _, err in results)
    run = where / "run"
    missing = [f for f in ("spec.yaml", "run.json") if not (run / f).is_file()]
    if missing:
        return "pair-broken-run", f"the run directory lacks {missing}"
    json.loads((run / "run.json").read_text())
    return "ok", ""


def save_failure(case: dict | None, doc: str | bytes | None, outcome: str) -> Path:
    """Keep a failing case in the regression corpus (bench/fuzz_corpus/): replayed first from now on."""
    CORPUS_DIR.mkdir(exist_ok=True)
    if case is not None:
        key = hashlib.sha1(json.dumps(case, sort_keys=True).encode()).hexdigest()[:10]
        path = CORPUS_DIR / f"cli-{key}.json"
        path.write_text(json.dumps({**case, "outcome": outcome}, indent=1, sort_keys=True))
    else:
        raw = doc.encode("utf-8", "surrogateescape") if isinstance(doc, str) else doc or b""
        path = CORPUS_DIR / f"doc-{hashlib.sha1(raw).hexdigest()[:10]}.yaml"
        path.write_bytes(raw)
    return path


def run_cli(n: int, seed: int, jobs: int = 2, *, train: bool = True,
            save: bool = True) -> tuple[Counter[str], list[tuple[str, str, str]]]:
    """``n`` CLI cases, at most ``jobs`` (≤ 2) processes at a time: counts by outcome and the failures."""
    counts: Counter[str] = Counter()
    bad: list[tuple[str, str, str]] = []
    todo = list(cli_cases(n, seed, train=train))
    with tempfile.TemporaryDirectory(prefix="netc-fuzz-") as tmp:
        def one(case: dict) -> tuple[dict, str, str]:
            return (case, *run_cli_case(case, Path(tmp)))

        with ThreadPoolExecutor(max_workers=max(1, min(jobs, 2))) as pool:
            results = list(pool.map(one, [c for c in todo if len(c["argv"]) == 1]))
        results += [one(c) for c in todo if len(c["argv"]) > 1]  # two processes each: alone
    for case, outcome, detail in results:
        counts[outcome] += 1
        if outcome not in OK_OUTCOMES:
            bad.append((case["name"], outcome, detail))
            if save and not case["name"].startswith("saved:"):
                save_failure(case, None, outcome)
    return counts, bad


def main() -> int:
    ap = argparse.ArgumentParser(description="Fuzz netc in-process and through its command line.")
    ap.add_argument("--cases", type=int, default=10_000, help="in-process cases")
    ap.add_argument("--cli", type=int, default=0, help="CLI cases, each in fresh processes")
    ap.add_argument("--jobs", type=int, default=2, help="CLI processes at a time (at most 2)")
    ap.add_argument("--no-train", action="store_true", help="skip the concurrent `netc train` pairs")
    ap.add_argument("--no-save", action="store_true", help="do not add failures to bench/fuzz_corpus/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=5, help="print the first N bad cases")
    args = ap.parse_args()
    counts: Counter[str] = Counter()
    bad: list[tuple[str, str, str | bytes]] = []
    t0 = time.perf_counter()
    for name, doc in cases(args.cases, args.seed):
        out = run_case(doc, name)
        key = out.split(":", 1)[0]
        counts[key] += 1
        if key not in ("ok", "diagnostics"):
            bad.append((name, out, doc))
            if not args.no_save and not name.startswith(("corpus:", "saved:")):
                save_failure(None, doc, out)
    print(f"in-process: {args.cases:,} cases in {time.perf_counter() - t0:.1f} s (seed {args.seed})")
    for k in ("ok", "diagnostics", "unlocated", "traceback", "hang"):
        print(f"  {k:<12} {counts.get(k, 0):>7,}")
    for name, out, doc in bad[: args.show]:
        print(f"\n--- {name}: {out}\n{doc!r}"[:1500])
    cli_bad: list[tuple[str, str, str]] = []
    if args.cli:
        t0 = time.perf_counter()
        cli_counts, cli_bad = run_cli(args.cli, args.seed, args.jobs, train=not args.no_train,
                                      save=not args.no_save)
        print(f"\nCLI: {args.cli:,} cases in {time.perf_counter() - t0:.1f} s ({max(1, min(args.jobs, 2))} "
              f"processes at a time; {CLI_SECONDS} s per case, {TRAIN_SECONDS} s per train pair)")
        shown = ("ok", "diagnostics", "usage", "unlocated", "traceback", "internal", "hang")
        for k in (*shown, *sorted(set(cli_counts) - set(shown))):
            print(f"  {k:<12} {cli_counts.get(k, 0):>7,}")
        for name, out, detail in cli_bad[: args.show]:
            print(f"\n--- {name}: {out}\n{detail}"[:1500])
    return 1 if bad or cli_bad else 0


if __name__ == "__main__":
    sys.exit(main())
