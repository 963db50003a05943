"""Fuzz the front end: mutated examples, generated chains, hostile arguments.

  python bench/fuzz.py [--cases 10000] [--seed 0]

Every case must end in a clean result or in located diagnostics (file:line:col), never in
a traceback or a hang. Prints counts by outcome; exits 1 if any case crashed or hung.
tests/test_fuzz.py runs a few hundred of the same cases in CI.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASE_SECONDS = 5  # a case that takes longer is a hang

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


def cases(n: int, seed: int) -> Iterator[tuple[str, str | bytes]]:
    """``n`` fuzz cases: (name, document); the regression corpus first."""
    rng = random.Random(seed)
    base = seeds()
    for i in range(n):
        if i < len(CORPUS):
            yield f"corpus:{CORPUS[i][0]}", CORPUS[i][1]
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
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
    dt = time.perf_counter() - t0
    print(f"{args.cases:,} cases in {dt:.1f} s (seed {args.seed})")
    for k in ("ok", "diagnostics", "unlocated", "traceback", "hang"):
        print(f"  {k:<12} {counts.get(k, 0):>7,}")
    for name, out, doc in bad[: args.show]:
        print(f"\n--- {name}: {out}\n{doc!r}"[:1500])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
