"""Chromosome-level classification metrics (numpy only, no scikit-learn).

Labels are model indices ``0..num_classes-1``; with the default ``num_classes=24`` they
map onto :data:`karyoflow.labels.LABELS` (``"1"``..``"22"``, ``"X"``, ``"Y"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from karyoflow.labels import LABELS, denver_group

__all__ = [
    "GROUPS",
    "classification_report",
    "confusion_matrix",
    "denver_indices",
    "top_k_accuracy",
]

#: Denver groups in order; :func:`denver_indices` maps a label index to a position here.
GROUPS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G")

_GROUP_OF_INDEX = np.array([GROUPS.index(denver_group(lab)) for lab in LABELS], dtype=np.int64)


def _as_labels(values: ArrayLike, num_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    integer = np.issubdtype(arr.dtype, np.integer)
    if arr.size and not integer and not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"{name} must hold integer class indices")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{name} holds indices outside 0..{num_classes - 1}")
    return arr


def denver_indices(labels_idx: ArrayLike) -> np.ndarray:
    """Denver group positions (0 = A .. 6 = G) of 24-class label indices.

    Examples
    --------
    >>> denver_indices([0, 3, 20, 22, 23]).tolist()  # 1, 4, 21, X, Y
    [0, 1, 6, 2, 6]
    """
    return _GROUP_OF_INDEX[_as_labels(labels_idx, len(LABELS), "labels_idx")]


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int = 24) -> np.ndarray:
    """Confusion counts, rows = true class, columns = predicted class.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1], [0, 1, 1], num_classes=2).tolist()
    [[1, 1], [0, 1]]
    """
    t = _as_labels(y_true, num_classes, "y_true")
    p = _as_labels(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_report(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int = 24
) -> dict[str, Any]:
    """Top-1 accuracy, per-class precision/recall/F1, macro/weighted F1 and Denver accuracy.

    Parameters
    ----------
    y_true, y_pred : array_like of int
        True and predicted class indices, shape ``(n,)``.
    num_classes : int, optional
        Number of classes. With 24 the per-class keys are the canonical labels
        (``"1"``..``"22"``, ``"X"``, ``"Y"``) and the Denver-group accuracy is computed;
        otherwise the keys are the indices as strings and ``denver_accuracy`` is ``None``.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``per_class`` (label -> ``precision``, ``recall``, ``f1``,
        ``support``), ``macro_f1`` (mean over the classes present in ``y_true`` or
        ``y_pred``, as scikit-learn does by default), ``weighted_f1`` (weighted by
        support), ``labels`` (class names in matrix order), ``confusion_matrix`` (list of
        lists of int, rows = true) and ``denver_accuracy`` (true and predicted class both
        mapped through :func:`karyoflow.labels.denver_group`; ``group_accuracy`` is an
        alias). A class never predicted has precision 0; a class never true has recall 0.
        Empty inputs give NaN accuracies and F1s (zero counts). All values are plain
        Python types (JSON-serialisable).

    Raises
    ------
    ValueError
        For mismatched inputs or out-of-range indices.

    Examples
    --------
    True 1, 1, 4, 5 predicted 1, 2, 5, 5 (chromosome 2 is in group A like 1; 4 and 5 are
    both group B):

    >>> r = classification_report([0, 0, 3, 4], [0, 1, 4, 4])
    >>> r["accuracy"], r["denver_accuracy"]
    (0.5, 1.0)
    >>> r["per_class"]["5"]
    {'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    >>> round(r["macro_f1"], 4), round(r["weighted_f1"], 4)
    (0.3333, 0.5)
    """
    t = _as_labels(y_true, num_classes, "y_true")
    p = _as_labels(y_pred, num_classes, "y_pred")
    cm = confusion_matrix(t, p, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted.astype(np.float64))
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    names = list(LABELS) if num_classes == len(LABELS) else [str(i) for i in range(num_classes)]
    present = (support + predicted) > 0
    nan = float("nan")
    denver = None
    if num_classes == len(LABELS):
        denver = float(np.mean(_GROUP_OF_INDEX[t] == _GROUP_OF_INDEX[p])) if t.size else nan
    return {
        "n": int(t.size),
        "accuracy": float(np.mean(t == p)) if t.size else nan,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "macro_f1": float(f1[present].mean()) if t.size else nan,
        "weighted_f1": float(np.sum(f1 * support) / support.sum()) if t.size else nan,
        "labels": names,
        "confusion_matrix": cm.tolist(),
        "denver_accuracy": denver,
        "group_accuracy": denver,
    }


def top_k_accuracy(y_true: ArrayLike, proba: ArrayLike, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` most probable.

    Ties are resolved in favour of the true class: a sample counts as correct when fewer
    than ``k`` classes have a strictly higher probability than its true class.

    Parameters
    ----------
    y_true : array_like of int, shape (n,)
    proba : array_like of float, shape (n, num_classes)
    k : int
        ``1 <= k``; ``k >= num_classes`` always gives 1.0.

    Examples
    --------
    >>> proba = [[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]]
    >>> top_k_accuracy([0, 1, 2], proba, 1), top_k_accuracy([0, 1, 2], proba, 2)
    (0.3333333333333333, 1.0)
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be 2-D (n, num_classes), got shape {p.shape}")
    t = _as_labels(y_true, p.shape[1], "y_true")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {t.shape[0]} rows but proba has {p.shape[0]}")
    if t.size == 0:
        raise ValueError("top_k_accuracy needs at least one sample")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    true_p = p[np.arange(t.size), t]
    higher = np.sum(p > true_p[:, None], axis=1)
    return float(np.mean(higher < int(k)))
