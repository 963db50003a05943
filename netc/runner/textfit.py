"""Training on text sources: the language-model, sequence-to-sequence and text-classification runs.

``netc train`` calls :func:`fit_text` when ``train.data`` names a text source: the source's task picks
the objective (``language.Language``, ``seq2seq.Seq2Seq``, or ``supervised.Supervised`` over token ids).
The tokenizer, trained on the training split, is saved in the run as ``tokenizer.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from netc.runner.config import TrainConfig
from netc.runner.engine import FitResult, resolve_device, train
from netc.runner.sources import SOURCES, Inputs, infer_source
from netc.runner.text import FILE, check_ids, classification_data


def text_source(cfg: TrainConfig) -> bool:
    """Whether ``train.data`` names a source of text (tokenized by netc.runner.text)."""
    name = cfg.data.source or (infer_source(cfg.data.path) if cfg.data.path else "digits")
    return SOURCES[name].text


def fit_text(model: torch.nn.Module, inputs: Inputs, cfg: TrainConfig, run_dir: str | Path,
             resume: str | Path | None = None, *, on_start: Callable[[], None] | None = None,
             progress: bool = True) -> FitResult:
    """Train ``model`` on a text source with the objective its task calls for."""
    run_dir = Path(run_dir)
    resume_dir = Path(resume) if resume is not None else None
    if cfg.text_task == "language":
        from netc.runner.language import Language

        return train(Language(model, inputs, run_dir, resume_dir), cfg, run_dir, resume, progress=progress,
                     on_start=on_start)
    if cfg.text_task == "seq2seq":
        from netc.runner.seq2seq import Seq2Seq

        return train(Seq2Seq(model, inputs, run_dir, resume_dir), cfg, run_dir, resume, progress=progress,
                     on_start=on_start)
    from netc.runner.loop import fit

    ds, tok = classification_data(cfg, inputs, resolve_device(cfg.device),
                                  resume_dir / FILE if resume_dir is not None else None)
    check_ids(model, tok)

    def start() -> None:
        tok.save(run_dir / FILE)
        if on_start is not None:
            on_start()

    return fit(model, inputs, cfg, run_dir, resume, data=ds, on_start=start, progress=progress)


# ---------------------------------------------------------------- predict

def text_run(target: str) -> tuple[Path, str] | None:
    """(run directory, task) when ``target`` is (inside) a run trained on a text source, else None."""
    from netc.runner.rundir import RunDir

    rd = RunDir.around(target)
    if rd is None or not (rd.root / FILE).is_file():
        return None
    saved = rd.read("config")
    task = (saved.get("text") or {}).get("task") or "classification"
    return rd.root, task


def _texts(args) -> list[str]:
    """The texts to predict for: ``--prompt``, or one per line of a .txt file, or the ``text`` column of a
    table (CSV, JSON Lines or Parquet: the training file's format, read by the same reader)."""
    from netc.diagnostics import UsageError
    from netc.runner import datafiles, tables

    if args.prompt is not None:
        return [args.prompt]
    if args.inputs is None:
        raise UsageError("netc predict on a text run needs --prompt TEXT or a file of texts",
                         hint="e.g. --prompt 'two hundred and six', or texts.txt (one per line) or texts.jsonl")
    p = datafiles.regular(Path(args.inputs), "file of texts")
    if p.name.lower().endswith(tables.SUFFIXES):
        table, rows = tables.read_table(p, datafiles.DEFAULT_MAX_BYTES)
        (at,) = tables.column_indices(p, table, ["text"], 'name the column of texts "text"')
        return [row[at] for row in rows]
    body = datafiles.read_bytes(p, datafiles.DEFAULT_MAX_BYTES, "file of texts").decode("utf-8", "replace")
    return [ln for ln in body.splitlines() if ln.strip()]


def _emit(rows: list[dict], output: str | None) -> None:
    """JSON Lines to ``output`` (or stdout)."""
    import json
    import sys

    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if output:
        from netc.runner.checkpoint import atomic_write

        atomic_write(Path(output), text)
        print(f"wrote {len(rows)} predictions to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def predict_text(run_dir: Path, task: str, args, load_run) -> int:
    """``netc predict`` for text runs: generate (language), decode (seq2seq) or classify texts."""
    import sys

    import numpy as np

    from netc.diagnostics import EXIT_OK, UsageError
    from netc.runner.text import TextTokenizer, _pad

    model, inputs, cfg, _ = load_run(str(run_dir), args.spec, None, args.device, optimize=False)
    tok = TextTokenizer.load(run_dir / FILE)
    device = next(model.parameters()).device
    model.eval()
    if task == "language":
        from netc.runner.generate import sample
        from netc.runner.rundir import RunDir

        if args.prompt is None:
            raise UsageError("a language-model run continues a prompt", hint="e.g. --prompt 'The ' -n 200")
        block = int(RunDir(run_dir).read("config")["text"]["block"])
        prompt = tok.encode(args.prompt) or [0]
        new = sample(model, prompt, args.num_samples or 200, block, temperature=args.temperature,
                     top_k=args.top_k, seed=args.seed, vocab=tok.vocab_size)
        text = args.prompt + tok.decode(new)
        if args.output:
            from netc.runner.checkpoint import atomic_write

            atomic_write(Path(args.output), text + "\n")
            print(f"wrote {len(new)} generated tokens to {args.output}", file=sys.stderr)
        else:
            print(text)
        return EXIT_OK
    texts = _texts(args)
    src = torch.from_numpy(_pad(tok.encode_batch(texts), int(inputs[0][1][0]))).to(device)
    if task == "seq2seq":
        from netc.runner.seq2seq import beam, greedy

        length = int(inputs[1][1][0])
        got = greedy(model, src, length) if args.beam <= 1 else beam(model, src, length, args.beam)
        _emit([{"source": t, "prediction": tok.decode(g)} for t, g in zip(texts, got)], args.output)
        return EXIT_OK
    from netc.runner.rundir import RunDir

    names = (RunDir(run_dir).read("config").get("preprocess") or {}).get("class_names") or []
    with torch.inference_mode():
        probs = torch.softmax(model(src).float(), -1).cpu().numpy()
    rows = []
    for t, p in zip(texts, probs):
        k = int(np.argmax(p))
        rows.append({"text": t, "pred": names[k] if k < len(names) else k,
                     "probs": {(names[i] if i < len(names) else str(i)): round(float(v), 6) for i, v in enumerate(p)}})
    _emit(rows, args.output)
    return EXIT_OK


# ---------------------------------------------------------------- eval

def evaluate_text(model: torch.nn.Module, inputs: Inputs, cfg: TrainConfig, run_dir: Path, task: str,
                  split: str = "test") -> dict:
    """Loss and metrics of a text run on one split, with the run's own tokenizer (and, on test, baselines)."""
    import contextlib

    from netc.diagnostics import DataError

    device = resolve_device(cfg.device)
    model.to(device).eval()
    saved = run_dir / FILE
    amp = contextlib.nullcontext()

    def missing(have) -> DataError:
        return DataError(f"there is no {split!r} split in this run", hint=f"available: {', '.join(have)}")

    if task == "language":
        from netc.runner.language import baselines, lm_record, lm_stats
        from netc.runner.text import language_data

        d = language_data(cfg, inputs, device, saved)
        blocks = {"train": d.train, "val": d.val, "test": d.test}.get(split)
        if blocks is None:
            raise missing([k for k in ("train", "val", "test") if getattr(d, k) is not None])
        result = {"split": split, "samples": len(blocks),
                  **lm_record(lm_stats(model, blocks, cfg.eval_batch_size, amp), d.chars_per_token[split],
                              cfg.metric_names("language"))}
        return {**result, **(baselines(d) if split == "test" else {})}
    if task == "seq2seq":
        from netc.runner.seq2seq import pair_record, pair_stats
        from netc.runner.text import pair_data

        p = pair_data(cfg, inputs, device, saved)
        if split not in p.src:
            raise missing(list(p.src))
        stats = pair_stats(model, p.src[split], p.tgt[split], cfg.eval_batch_size, amp)
        return {"split": split, "samples": len(p.src[split]), **pair_record(stats, cfg.metric_names("seq2seq"))}
    from netc.runner.loop import evaluate

    ds, _ = classification_data(cfg, inputs, device, saved)
    return evaluate(model, inputs, cfg, split, data=ds)
