"""The text classifier against its baseline in one run: examples/pydoc_topics_lstm.yaml trained by `netc train`
for several seeds, and bag-of-words logistic regression (scikit-learn, from the [test] extra) on the very
split the spec declares.

    python bench/text_baselines.py                    # baseline + netc seeds 0-4 (~1-2 min per seed, 2 cores)
    python bench/text_baselines.py --seeds 0          # one seed
    python bench/text_baselines.py --seeds none       # the baseline alone
    python bench/text_baselines.py --spec my.yaml     # a variant of the example

The seed moves the model's initialisation, dropout and batch order, never the split: every row is
scored on the same test paragraphs as the baseline. The language model's unigram and bigram baselines
are computed by the run itself (results.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from netc.compiler.frontend import front_end
from netc.runner.text import _split_ids
from netc.runner.textread import pydoc_topics

SPEC = Path(__file__).resolve().parent.parent / "examples" / "pydoc_topics_lstm.yaml"


def baseline(spec: Path) -> tuple[float, int]:
    """Bag-of-words logistic regression's test accuracy on the spec's split, and the test size."""
    cfg = front_end(spec.read_text(encoding="utf-8"), str(spec)).train_config()
    raw = pydoc_topics(cfg.data, [])
    parts = _split_ids(len(raw.x), cfg, raw.origin)  # the split netc's classifier trains and tests on
    texts, labels = np.array(raw.x, dtype=object), np.array(raw.y)
    vec = CountVectorizer()
    xtr = vec.fit_transform(texts[parts["train"]])  # vocabulary from the training split only
    clf = LogisticRegression(max_iter=2000).fit(xtr, labels[parts["train"]])
    acc = float((clf.predict(vec.transform(texts[parts["test"]])) == labels[parts["test"]]).mean())
    return acc, len(parts["test"])


def netc_accuracy(spec: Path, seed: int, root: Path) -> tuple[float, int]:
    """Test accuracy and epochs run of `netc train SPEC --set train.seed=SEED`."""
    out = root / f"seed{seed}"
    done = subprocess.run([sys.executable, "-m", "netc", "train", str(spec), "--out", str(out),
                           "--set", f"train.seed={seed}", "--set", "train.plots=false"], check=False, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"netc train {spec} failed (exit {done.returncode}):\n{done.stderr}")
    results = json.loads((out / "results.json").read_text())
    return results["test"]["accuracy"], results["epochs_run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated train.seed values, or 'none'")
    ap.add_argument("--spec", type=Path, default=SPEC, help="a variant of the example (same data source)")
    args = ap.parse_args()
    seeds = [] if args.seeds == "none" else [int(s) for s in args.seeds.split(",")]
    base, n_test = baseline(args.spec)
    print(f"pydoc_topics, {n_test} test paragraphs: bag-of-words logistic regression test accuracy {base:.4f}")
    if not seeds:
        return
    accs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            acc, epochs = netc_accuracy(args.spec, seed, Path(tmp))
            accs.append(acc)
            print(f"  {args.spec.name} seed {seed}: test accuracy {acc:.4f} ({epochs} epochs), "
                  f"{acc - base:+.4f} against the baseline", flush=True)
    print(f"netc: mean {statistics.mean(accs):.4f}, median {statistics.median(accs):.4f}, "
          f"min {min(accs):.4f} over {len(accs)} seeds; above the baseline on {sum(a > base for a in accs)} "
          f"of {len(accs)}")


if __name__ == "__main__":
    main()
