"""Plots a person would publish: whole-number epochs, titles naming run and split, a panel per metric."""

from __future__ import annotations

import pytest

from netc.runner import plots

HISTORY = [{"epoch": e, "train": {"loss": 1 / e, "accuracy": 0.5 + e / 10, "f1": 0.4 + e / 10},
            "val": {"loss": 1.2 / e, "accuracy": 0.45 + e / 10, "f1": 0.35 + e / 10}} for e in (1, 2, 3)]


@pytest.fixture
def figures(monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    return drawn


def test_metric_panels_pair_train_and_val_with_integer_epochs(figures):
    plots.metric_curves(HISTORY, "m.png", run="digits_cnn")
    (fig,) = figures
    fig.canvas.draw()
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["accuracy", "f1"]
    assert "digits_cnn" in fig._suptitle.get_text()
    for ax in axes:
        train, val = ax.get_lines()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]
        assert train.get_color() != val.get_color()  # a pair: related, not equal
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
        assert ticks == [1, 2, 3]  # no 1.5, 2.5


def test_confusion_matrix_names_its_split_and_counts(figures):
    plots.confusion([[5, 1], [2, 7]], ["cat", "dog"], "c.png", run="pets", split="test")
    title = figures[0].axes[0].get_title()
    assert title == "pets: confusion matrix, test split (15 samples, 12 correct)"


def test_loss_plot_has_a_title_and_whole_epochs(figures):
    plots.loss_curves(HISTORY, "l.png", run="r")
    ax = figures[0].axes[0]
    figures[0].canvas.draw()
    assert ax.get_title() == "r: loss (train and validation)" and ax.get_ylabel() == "loss"
    assert [t for t in ax.get_xticks() if 1 <= t <= 3] == [1, 2, 3]
