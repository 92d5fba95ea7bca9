"""Classification metrics and evaluation plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from karyoflow.evaluate import (
    classification_report,
    confusion_matrix,
    plot_confusion_matrix,
    plot_grid_comparison,
    plot_training_curves,
    top_k_accuracy,
)
from karyoflow.labels import LABELS, label_index

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def idx(*labels: str) -> list[int]:
    return [label_index(lab) for lab in labels]


# --- classification_report --------------------------------------------------------------


def test_classification_report_by_hand():
    # true:      1  1  1  4  5  X  Y
    # predicted: 1  1  2  5  5  7  21
    y_true = idx("1", "1", "1", "4", "5", "X", "Y")
    y_pred = idx("1", "1", "2", "5", "5", "7", "21")
    r = classification_report(y_true, y_pred)
    assert r["n"] == 7
    assert r["accuracy"] == pytest.approx(3 / 7)
    # Denver: 1/2 both A, 4/5 both B, X/7 both C, Y/21 both G -> all groups right
    assert r["denver_accuracy"] == r["group_accuracy"] == 1.0
    one = r["per_class"]["1"]
    assert one == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": 0.8, "support": 3}
    five = r["per_class"]["5"]
    assert (five["precision"], five["recall"], five["f1"]) == (0.5, 1.0, pytest.approx(2 / 3))
    for lab in ("2", "4", "7", "21", "X", "Y"):
        assert r["per_class"][lab]["f1"] == 0.0
    assert r["per_class"]["22"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # macro over the 8 classes present in y_true or y_pred: (0.8 + 2/3) / 8
    assert r["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 8)
    # weighted by support: (3 * 0.8 + 1 * 2/3) / 7
    assert r["weighted_f1"] == pytest.approx((3 * 0.8 + 2 / 3) / 7)
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (24, 24) and cm.sum() == 7
    assert cm[0, 0] == 2 and cm[0, 1] == 1 and cm[label_index("Y"), label_index("21")] == 1
    assert r["labels"] == list(LABELS)
    json.dumps(r)  # plain Python types only


def test_classification_report_denver_errors_and_small_num_classes():
    r = classification_report(idx("1", "X"), idx("4", "X"))
    assert r["denver_accuracy"] == 0.5
    small = classification_report([0, 1, 2, 2], [0, 2, 2, 2], num_classes=3)
    assert list(small["per_class"]) == ["0", "1", "2"]
    assert small["denver_accuracy"] is None
    assert small["per_class"]["2"]["precision"] == pytest.approx(2 / 3)


def test_classification_report_errors():
    empty = classification_report([], [])
    assert empty["n"] == 0 and np.isnan(empty["accuracy"]) and np.isnan(empty["macro_f1"])
    assert np.isnan(empty["denver_accuracy"]) and np.sum(empty["confusion_matrix"]) == 0
    with pytest.raises(ValueError, match="differ"):
        classification_report([0, 1], [0])
    with pytest.raises(ValueError, match="outside"):
        classification_report([0, 24], [0, 1])


def test_confusion_matrix_rows_are_true():
    cm = confusion_matrix([0, 0, 1, 2], [1, 1, 1, 0], num_classes=3)
    assert cm.tolist() == [[0, 2, 0], [0, 1, 0], [1, 0, 0]]


def test_top_k_accuracy():
    proba = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.2, 0.6]])
    y = [2, 1, 2]
    assert top_k_accuracy(y, proba, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(y, proba, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(y, proba, 3) == 1.0
    # ties count in favour of the true class
    assert top_k_accuracy([1], [[0.4, 0.4, 0.2]], 1) == 1.0
    with pytest.raises(ValueError, match="k must"):
        top_k_accuracy(y, proba, 0)


def test_top_k_matches_argmax_for_k1():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(24), size=200)
    y = rng.integers(0, 24, size=200)
    assert top_k_accuracy(y, proba, 1) == pytest.approx(np.mean(proba.argmax(1) == y))


# --- plots --------------------------------------------------------------------------------


def _twice(tmp_path, name, draw):
    first, second = tmp_path / "a" / name, tmp_path / "b" / name
    assert draw(first) == first
    draw(second)
    data = first.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert data == second.read_bytes(), "PNG bytes differ between identical calls"
    return data


def test_plot_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 24, 300)
    pred = np.where(rng.random(300) < 0.8, y, rng.integers(0, 24, 300))
    cm = classification_report(y, pred)["confusion_matrix"]
    norm = _twice(tmp_path, "cm.png", lambda p: plot_confusion_matrix(cm, LABELS, p, title="t"))
    raw = _twice(
        tmp_path, "raw.png", lambda p: plot_confusion_matrix(cm, LABELS, p, normalise=False)
    )
    assert norm != raw
    _twice(tmp_path, "small.png", lambda p: plot_confusion_matrix([[3, 0], [1, 0]], ["4", "5"], p))
    with pytest.raises(ValueError, match="labels"):
        plot_confusion_matrix(cm, LABELS[:5], tmp_path / "bad.png")


def test_plot_training_curves(tmp_path):
    history = {
        "loss": [2.0, 1.2, 0.8, 0.6],
        "accuracy": [0.3, 0.55, 0.7, 0.8],
        "val_loss": [2.1, 1.4, 1.0, 0.9],
        "val_accuracy": [0.25, 0.5, 0.62, 0.7],
    }
    _twice(tmp_path, "h.png", lambda p: plot_training_curves(history, p, title="cnn / adam"))
    _twice(tmp_path, "only.png", lambda p: plot_training_curves({"val_loss": [1, 0.5]}, p))
    with pytest.raises(ValueError, match="empty"):
        plot_training_curves({}, tmp_path / "x.png")


def test_plot_grid_comparison(tmp_path):
    rows = []
    for model in ("simple_cnn", "resnet18", "vgg"):
        for opt in ("adam", "sgd"):
            for lr in (1e-2, 1e-3):
                for seed in (0, 1):
                    acc = 0.6 + 0.1 * (model == "resnet18") + 0.05 * (opt == "adam") + seed / 100
                    rows.append((model, opt, lr, seed, acc, acc - 0.02))
    table = pd.DataFrame(
        rows,
        columns=["model", "optimizer", "learning_rate", "seed", "val_accuracy", "test_accuracy"],
    )
    both = _twice(tmp_path, "g.png", lambda p: plot_grid_comparison(table, p, title="grid"))
    val_only = table.drop(columns="test_accuracy")
    one = _twice(tmp_path, "g1.png", lambda p: plot_grid_comparison(val_only, p))
    assert both != one
    with pytest.raises(ValueError, match="lacks"):
        plot_grid_comparison(table.drop(columns="optimizer"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="none of the metric"):
        plot_grid_comparison(
            table.drop(columns=["val_accuracy", "test_accuracy"]), tmp_path / "y.png"
        )
