"""Baselines for the text examples, on the very splits netc trains on: bag-of-words logistic regression
for examples/pydoc_topics_lstm.yaml (scikit-learn, from the [test] extra).

    python bench/text_baselines.py

The language model's unigram and bigram baselines are computed by the run itself (results.json).
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from netc.runner.config import TrainConfig
from netc.runner.text import _split_ids
from netc.runner.textread import pydoc_topics


def main() -> None:
    cfg = TrainConfig.from_dict({"data": "pydoc_topics", "split": {"val": 0.1, "test": 0.2, "seed": 0}})
    raw = pydoc_topics(cfg.data, [])
    parts = _split_ids(len(raw.x), cfg, raw.origin)  # the split netc's classifier trains and tests on
    texts, labels = np.array(raw.x, dtype=object), np.array(raw.y)
    vec = CountVectorizer()
    xtr = vec.fit_transform(texts[parts["train"]])  # vocabulary from the training split only
    clf = LogisticRegression(max_iter=2000).fit(xtr, labels[parts["train"]])
    acc = float((clf.predict(vec.transform(texts[parts["test"]])) == labels[parts["test"]]).mean())
    print(f"pydoc_topics: {len(texts)} paragraphs, test {len(parts['test'])}; bag-of-words logistic regression "
          f"test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
