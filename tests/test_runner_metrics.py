"""Every metric against scikit-learn on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from netc.runner.data import Dataset, Split
from netc.runner.loop import to_outputs
from netc.runner.metrics import (
    METRICS,
    Outputs,
    binary_auc,
    compute,
    confusion_matrix,
    mode_of,
    report,
)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _classification(n=200, c=4, seed=0, miss_class=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    probs = _softmax(logits)
    pred = probs.argmax(axis=1)
    if miss_class is not None:  # a class nobody predicts: precision undefined -> 0 (zero_division=0)
        pred = np.where(pred == miss_class, (miss_class + 1) % c, pred)
    return Outputs("classification", y, pred, probs, c)


SK_CLASSIFICATION = {
    "accuracy": lambda o: skm.accuracy_score(o.y, o.pred),
    "precision": lambda o: skm.precision_score(o.y, o.pred, average="macro", zero_division=0),
    "recall": lambda o: skm.recall_score(o.y, o.pred, average="macro", zero_division=0),
    "f1": lambda o: skm.f1_score(o.y, o.pred, average="macro", zero_division=0),
    "auc_roc": lambda o: (skm.roc_auc_score(o.y, o.probs[:, 1]) if o.num_classes == 2 else
                          skm.roc_auc_score(o.y, o.probs, multi_class="ovr", average="macro")),
}
SK_REGRESSION = {
    "mse": skm.mean_squared_error,
    "mae": skm.mean_absolute_error,
    "rmse": skm.root_mean_squared_error,
    "r2": skm.r2_score,
}


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class _Table(torch.nn.Module):
    """A bigram table as a model: logits of the next token = a row per current token (fixed, seeded)."""

    def __init__(self, vocab=7, seed=0):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed)))

    def forward(self, ids, tgt=None):  # seq2seq: the target prefix alone picks the logits
        return self.logits[ids if tgt is None else tgt]


def _language_case(chars_per_token=1.7):
    """lm_stats over random blocks against the same numbers counted in numpy float64."""
    from contextlib import nullcontext

    from netc.runner.language import lm_record, lm_stats

    model, vocab = _Table(), 7
    blocks = torch.randint(0, vocab, (9, 13), generator=torch.Generator().manual_seed(1))
    got = lm_record(lm_stats(model, blocks, 4, nullcontext()), chars_per_token,
                    ["perplexity", "bits_per_char", "next_token_accuracy"])
    z = model.logits.detach().double().numpy()[blocks[:, :-1].numpy()]
    y = blocks[:, 1:].numpy()
    nll = -np.take_along_axis(_log_softmax(z), y[..., None], -1).mean()
    want = {"perplexity": np.exp(nll), "bits_per_char": nll / np.log(2) / chars_per_token,
            "next_token_accuracy": (z.argmax(-1) == y).mean()}
    return got, want, nll


def _seq2seq_case():
    """pair_stats with padded targets against numpy: pads are not tokens; an exact match is a whole target."""
    from contextlib import nullcontext

    from netc.runner.metrics import METRICS as M
    from netc.runner.seq2seq import PAD, pair_stats

    model = _Table(vocab=6, seed=3)
    tgt = torch.randint(1, 6, (5, 8), generator=torch.Generator().manual_seed(2))
    tgt[1, 5:] = PAD
    tgt[3, 3:] = PAD
    src = torch.zeros(5, 4, dtype=torch.long)
    s = pair_stats(model, src, tgt, 2, nullcontext(), decode=False)
    z = model.logits.detach().double().numpy()[tgt[:, :-1].numpy()]
    y = tgt[:, 1:].numpy()
    keep = y != PAD
    want = {"token_accuracy": (z.argmax(-1) == y)[keep].mean()}
    return {n: M[n].fn(s) for n in want}, want


LANGUAGE = {  # language and sequence-to-sequence metrics, each against a numpy count
    "perplexity": lambda: _language_case(),
    "bits_per_char": lambda: _language_case(),
    "next_token_accuracy": lambda: _language_case(),
    "token_accuracy": lambda: _seq2seq_case(),
    "exact_match": None,  # test_exact_match_counts_whole_targets
}


def test_every_metric_is_compared():
    assert set(SK_CLASSIFICATION) | set(SK_REGRESSION) | set(LANGUAGE) == set(METRICS)


@pytest.mark.parametrize("name", [n for n, f in LANGUAGE.items() if f is not None])
def test_language_metric_matches_numpy(name):
    got, want = LANGUAGE[name]()[:2]
    assert got[name] == pytest.approx(want[name], rel=1e-6)  # float32 logits


def test_language_loss_is_the_mean_token_cross_entropy():
    got, _, nll = _language_case()
    assert got["loss"] == pytest.approx(nll, rel=1e-6)


def test_exact_match_counts_whole_targets():
    """Greedy decoding of a model that always says token 2 matches exactly the targets [2, 2, ..., EOS]."""
    from contextlib import nullcontext

    from netc.runner.seq2seq import BOS, EOS, PAD, pair_stats

    class Says2(torch.nn.Module):
        def forward(self, src, tgt):
            out = torch.full((*tgt.shape, 6), -9.0)
            out[..., 2] = 0.0
            n = tgt.shape[1]
            if n > 2:  # after two 2s, end the sequence
                out[:, 2:, EOS] = 1.0
            return out

    tgt = torch.tensor([[BOS, 2, 2, EOS, PAD], [BOS, 2, 3, EOS, PAD], [BOS, 2, 2, EOS, PAD]])
    s = pair_stats(Says2(), torch.zeros(3, 2, dtype=torch.long), tgt, 2, nullcontext())
    assert METRICS["exact_match"].fn(s) == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", list(SK_CLASSIFICATION))
@pytest.mark.parametrize("case", ["multiclass", "binary", "unpredicted_class"])
def test_classification_metric_matches_sklearn(name, case):
    o = {"multiclass": lambda: _classification(c=5),
         "binary": lambda: _classification(c=2, seed=1),
         "unpredicted_class": lambda: _classification(c=4, seed=2, miss_class=2)}[case]()
    assert METRICS[name].fn(o) == pytest.approx(SK_CLASSIFICATION[name](o), abs=1e-12)


@pytest.mark.parametrize("name", list(SK_REGRESSION))
@pytest.mark.parametrize("k", [1, 3])
def test_regression_metric_matches_sklearn(name, k):
    rng = np.random.default_rng(k)
    y = rng.normal(size=(50, k)) * 3 + 1
    pred = y + rng.normal(size=(50, k))
    o = Outputs("regression", y, pred)
    ref = SK_REGRESSION[name](y, pred) if k > 1 else SK_REGRESSION[name](y[:, 0], pred[:, 0])
    assert METRICS[name].fn(o) == pytest.approx(ref, rel=1e-12)


def test_r2_of_constant_target_follows_sklearn():
    y = np.ones((5, 1))
    assert METRICS["r2"].fn(Outputs("regression", y, y.copy())) == skm.r2_score(y, y.copy())
    assert METRICS["r2"].fn(Outputs("regression", y, y + 1)) == skm.r2_score(y, y + 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0])), min_size=2,
                max_size=40))
def test_binary_auc_with_ties_matches_sklearn(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs])
    if len(set(y)) < 2:
        assert np.isnan(binary_auc(y == 1, s))
        return
    assert binary_auc(y == 1, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=60))
def test_macro_scores_and_confusion_match_sklearn(c, pairs):
    y = np.array([a % c for a, _ in pairs])
    pred = np.array([b % c for _, b in pairs])
    o = Outputs("classification", y, pred, np.eye(c)[pred], c)
    assert np.array_equal(confusion_matrix(y, pred, c), skm.confusion_matrix(y, pred, labels=range(c)))
    for name in ("accuracy", "precision", "recall", "f1"):
        assert METRICS[name].fn(o) == pytest.approx(SK_CLASSIFICATION[name](o), abs=1e-12)


def test_report_per_class_matches_sklearn():
    o = _classification(c=3, seed=3)
    rep = report(o, ["a", "b", "c"])
    p, r, f, s = skm.precision_recall_fscore_support(o.y, o.pred, labels=[0, 1, 2], zero_division=0)
    for i, name in enumerate("abc"):
        row = rep["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    assert rep["confusion_matrix"] == skm.confusion_matrix(o.y, o.pred).tolist()
    assert report(Outputs("regression", np.zeros((2, 1)), np.zeros((2, 1))), None) == {}


def test_modes():
    assert {n: mode_of(n) for n in METRICS} == {
        "accuracy": "max", "precision": "max", "recall": "max", "f1": "max", "auc_roc": "max",
        "mse": "min", "mae": "min", "rmse": "min", "r2": "max",
        "perplexity": "min", "bits_per_char": "min", "next_token_accuracy": "max", "token_accuracy": "max",
        "exact_match": "max"}
    assert mode_of("loss") == "min"


def _ds(task, **kw):
    empty = Split((torch.zeros(1, 1),), torch.zeros(1))
    return Dataset(train=empty, val=None, test=None, task=task, **kw)


def test_outputs_from_logits_softmax_and_sigmoid():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    o = to_outputs(_ds("classification", num_classes=3), logits, torch.tensor([0, 2]))
    assert o.pred.tolist() == [0, 1] and o.probs.shape == (2, 3)
    assert np.allclose(o.probs.sum(axis=1), 1)
    b = to_outputs(_ds("classification", num_classes=2, binary=True), torch.tensor([[2.0], [-1.0]]),
                   torch.tensor([[1.0], [0.0]]))
    assert b.pred.tolist() == [1, 0] and b.y.tolist() == [1, 0]
    assert np.allclose(b.probs[:, 1], 1 / (1 + np.exp(-np.array([2.0, -1.0]))))
    seq = to_outputs(_ds("classification", num_classes=3), torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long))
    assert seq.probs.shape == (8, 3) and seq.y.shape == (8,)


def test_regression_outputs_in_original_units():
    ds = _ds("regression", target_scale=(np.array([[10.0]]), np.array([[2.0]])))
    o = to_outputs(ds, torch.tensor([[0.0], [1.0]]), torch.tensor([[0.5], [1.0]]))
    assert o.pred[:, 0].tolist() == [10.0, 12.0] and o.y[:, 0].tolist() == [11.0, 12.0]
    assert compute(o, ["mae"]) == {"mae": 0.5}
