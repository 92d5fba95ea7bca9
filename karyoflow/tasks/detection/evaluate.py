"""Detection metrics: box IoU, one-to-one matching, precision/recall/F1, count error, AP.

Boxes are ``(x0, y0, x1, y1)`` with exclusive ends (the manifest's convention), as
``(N, 4)`` arrays. A detection is a true positive when it is matched one-to-one to a
true box with IoU >= the threshold (0.5, as in PASCAL VOC and mAP50).
:func:`average_precision` ranks the scored detections of many images and gives the
precision-recall curve and its area (AP50 at the default threshold: with one class,
the mAP50 that detection papers report).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "MatchResult",
    "PRCurve",
    "average_precision",
    "box_iou",
    "match_boxes",
    "summarise_cells",
]


def _as_boxes(boxes: Any) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {arr.shape}")
    return arr


def box_iou(a: Any, b: Any) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Parameters
    ----------
    a, b : array_like
        ``(N, 4)`` and ``(M, 4)`` boxes ``x0, y0, x1, y1`` (exclusive ends).

    Returns
    -------
    numpy.ndarray
        ``(N, M)`` float64 in [0, 1]; empty boxes give 0.

    Examples
    --------
    >>> box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]).round(3)
    array([[1.   , 0.333, 0.   ]])
    """
    a, b = _as_boxes(a), _as_boxes(b)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class MatchResult:
    """One-to-one matching of detections to true boxes in one image."""

    #: ``(K, 2)`` int pairs ``(true index, detection index)``
    pairs: np.ndarray
    #: IoU of each matched pair, ``(K,)``
    ious: np.ndarray
    n_true: int
    n_detected: int

    @property
    def tp(self) -> int:
        """Matched pairs (true positives)."""
        return len(self.pairs)

    @property
    def fp(self) -> int:
        """Unmatched detections."""
        return self.n_detected - self.tp

    @property
    def fn(self) -> int:
        """Unmatched true boxes."""
        return self.n_true - self.tp

    @property
    def count_error(self) -> int:
        """Detections minus true boxes (signed)."""
        return self.n_detected - self.n_true


def match_boxes(
    true_boxes: Any,
    detected: Any,
    *,
    iou_threshold: float = 0.5,
    method: str = "hungarian",
    scores: Any = None,
) -> MatchResult:
    """Match detections to true boxes one-to-one at ``IoU >= iou_threshold``.

    Parameters
    ----------
    true_boxes, detected : array_like
        ``(N, 4)`` and ``(M, 4)`` boxes.
    iou_threshold : float, optional
        Smallest IoU of a match.
    method : {"hungarian", "greedy"}, optional
        ``"hungarian"`` maximises the number of matches, then their summed IoU
        (:func:`scipy.optimize.linear_sum_assignment`); ``"greedy"`` takes detections
        in order of decreasing ``scores`` (else of decreasing best IoU) and gives each
        the free true box it overlaps most, as PASCAL VOC does.
    scores : array_like, optional
        ``(M,)`` detection scores for the greedy order.

    Returns
    -------
    MatchResult

    Examples
    --------
    >>> t = [[0, 0, 10, 10], [20, 0, 30, 10]]
    >>> d = [[1, 0, 11, 10], [50, 50, 60, 60]]
    >>> r = match_boxes(t, d)
    >>> r.tp, r.fp, r.fn, r.count_error, r.pairs.tolist()
    (1, 1, 1, 0, [[0, 0]])
    """
    t, d = _as_boxes(true_boxes), _as_boxes(detected)
    empty = MatchResult(np.zeros((0, 2), int), np.zeros(0), len(t), len(d))
    if len(t) == 0 or len(d) == 0:
        return empty
    iou = box_iou(t, d)
    ok = iou >= iou_threshold
    if not ok.any():
        return empty
    if method == "hungarian":
        # A match is worth 1 plus a small IoU bonus: most matches first, then best IoU.
        gain = np.where(ok, 1.0 + 1e-3 * iou, 0.0)
        rows, cols = linear_sum_assignment(-gain)
        keep = ok[rows, cols]
        pairs = np.stack([rows[keep], cols[keep]], axis=1)
    elif method == "greedy":
        order = (
            np.argsort(-np.asarray(scores, float), kind="stable")
            if scores is not None
            else np.argsort(-iou.max(axis=0), kind="stable")
        )
        used = np.zeros(len(t), bool)
        found = []
        for j in order:
            cand = np.where(ok[:, j] & ~used, iou[:, j], -1.0)
            i = int(np.argmax(cand))
            if cand[i] >= 0:
                used[i] = True
                found.append((i, int(j)))
        pairs = np.array(found, int).reshape(-1, 2)
    else:
        raise ValueError(f"unknown matching method {method!r}; use 'hungarian' or 'greedy'")
    return MatchResult(pairs, iou[pairs[:, 0], pairs[:, 1]], len(t), len(d))


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def summarise_cells(results: Iterable[MatchResult] | Mapping[str, MatchResult]) -> dict[str, Any]:
    """Pooled precision, recall and F1 and the per-cell count error of many images.

    Parameters
    ----------
    results : iterable or mapping of MatchResult
        One per image (cell).

    Returns
    -------
    dict
        ``cells``, ``true``, ``detected``, ``tp``, ``fp``, ``fn``, ``precision``,
        ``recall``, ``f1`` (pooled over all boxes; None where undefined),
        ``recall_cell_mean``, ``recall_cell_median`` (per cell),
        ``count_error_mean`` (signed), ``count_error_abs_mean``,
        ``count_error_abs_median``, ``exact_count_fraction`` and ``mean_iou`` of the
        matches.

    Examples
    --------
    >>> r = [match_boxes([[0, 0, 4, 4]], [[0, 0, 4, 4], [9, 9, 12, 12]]),
    ...      match_boxes([[0, 0, 4, 4], [5, 5, 9, 9]], [[5, 5, 9, 9]])]
    >>> s = summarise_cells(r)
    >>> s["precision"], s["recall"], s["count_error_mean"], s["count_error_abs_mean"]
    (0.6666666666666666, 0.6666666666666666, 0.0, 1.0)
    """
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    tp = sum(r.tp for r in items)
    n_true = sum(r.n_true for r in items)
    n_det = sum(r.n_detected for r in items)
    precision, recall = _ratio(tp, n_det), _ratio(tp, n_true)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    err = np.array([r.count_error for r in items], float)
    cell_recall = np.array([r.tp / r.n_true for r in items if r.n_true], float)
    ious = np.concatenate([r.ious for r in items]) if items else np.zeros(0)

    def stat(fn: Any, arr: np.ndarray) -> float | None:
        return float(fn(arr)) if arr.size else None

    return {
        "cells": len(items),
        "true": n_true,
        "detected": n_det,
        "tp": tp,
        "fp": n_det - tp,
        "fn": n_true - tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "recall_cell_mean": stat(np.mean, cell_recall),
        "recall_cell_median": stat(np.median, cell_recall),
        "count_error_mean": stat(np.mean, err),
        "count_error_abs_mean": stat(np.mean, np.abs(err)),
        "count_error_abs_median": stat(np.median, np.abs(err)),
        "exact_count_fraction": stat(np.mean, err == 0),
        "mean_iou": stat(np.mean, ious),
    }


@dataclass
class PRCurve:
    """Precision-recall curve of scored detections (:func:`average_precision`)."""

    #: detection scores in decreasing order (one point per detection)
    scores: np.ndarray
    #: precision and recall after each detection, taken best score first
    precision: np.ndarray
    recall: np.ndarray
    #: area under the curve, all-point interpolated (PASCAL VOC 2010 onwards)
    ap: float
    #: number of true boxes
    n_true: int

    def at(self, threshold: float) -> tuple[float, float]:
        """``(precision, recall)`` keeping the detections scoring ``>= threshold``.

        Examples
        --------
        >>> c = average_precision([[[0, 0, 4, 4]]], [[[0, 0, 4, 4], [8, 8, 9, 9]]], [[0.9, 0.5]])
        >>> c.at(0.6), c.at(0.1)
        ((1.0, 1.0), (0.5, 1.0))
        """
        k = int(np.searchsorted(-self.scores, -float(threshold), side="right"))
        if k == 0:
            return 1.0, 0.0
        return float(self.precision[k - 1]), float(self.recall[k - 1])


def average_precision(
    true_boxes: Iterable[Any],
    detected: Iterable[Any],
    scores: Iterable[Any],
    *,
    iou_threshold: float = 0.5,
) -> PRCurve:
    """Average precision of scored detections over many images (one class).

    Detections of all images are taken best score first; each one is a true positive
    when its image still has an unmatched true box with IoU >= ``iou_threshold`` (the
    best such box is used up), as in the PASCAL VOC evaluation. The area under the
    precision-recall curve is computed with the precision made monotone (all-point
    interpolation, VOC 2010 onwards and COCO-style mAP50 for one class).

    Parameters
    ----------
    true_boxes, detected : iterable of array_like
        Per image: ``(N_i, 4)`` true and ``(M_i, 4)`` detected boxes.
    scores : iterable of array_like
        Per image: ``(M_i,)`` detection scores.
    iou_threshold : float, optional
        Smallest IoU of a match.

    Returns
    -------
    PRCurve
        ``ap`` is 0 when there are no detections and NaN when there are no true boxes.

    Examples
    --------
    One image, two true boxes; the best detection is right, the second wrong, the
    third right: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.

    >>> t = [[[0, 0, 10, 10], [20, 0, 30, 10]]]
    >>> d = [[[0, 0, 10, 10], [50, 50, 60, 60], [21, 0, 31, 10]]]
    >>> c = average_precision(t, d, [[0.9, 0.8, 0.7]])
    >>> c.precision.round(3).tolist(), c.recall.tolist(), round(c.ap, 4)
    ([1.0, 0.5, 0.667], [0.5, 0.5, 1.0], 0.8333)
    """
    trues = [_as_boxes(t) for t in true_boxes]
    dets = [_as_boxes(d) for d in detected]
    scs = [np.asarray(s, np.float64).reshape(-1) for s in scores]
    if not len(trues) == len(dets) == len(scs):
        raise ValueError("average_precision: true_boxes, detected and scores differ in length")
    n_true = int(sum(len(t) for t in trues))
    image_of, index_of, all_scores = [], [], []
    ious = []
    for k, (t, d, s) in enumerate(zip(trues, dets, scs, strict=True)):
        if len(s) != len(d):
            raise ValueError(f"average_precision: image {k} has {len(d)} boxes, {len(s)} scores")
        ious.append(box_iou(t, d) if len(t) and len(d) else np.zeros((len(t), len(d))))
        image_of.append(np.full(len(d), k))
        index_of.append(np.arange(len(d)))
        all_scores.append(s)
    score = np.concatenate(all_scores) if all_scores else np.zeros(0)
    image = np.concatenate(image_of).astype(int) if image_of else np.zeros(0, int)
    index = np.concatenate(index_of).astype(int) if index_of else np.zeros(0, int)
    order = np.argsort(-score, kind="stable")
    used = [np.zeros(len(t), bool) for t in trues]
    hit = np.zeros(len(order), bool)
    for r, j in enumerate(order):
        iou = ious[image[j]]
        if iou.shape[0] == 0:
            continue
        cand = np.where(used[image[j]], -1.0, iou[:, index[j]])
        i = int(np.argmax(cand))
        if cand[i] >= iou_threshold:
            used[image[j]][i] = True
            hit[r] = True
    tp = np.cumsum(hit)
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / n_true if n_true else np.full(len(order), np.nan)
    if n_true == 0:
        ap = float("nan")
    elif len(order) == 0:
        ap = 0.0
    else:
        mrec = np.concatenate([[0.0], recall, [recall[-1]]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        ap = float(np.sum(np.diff(mrec) * mpre[1:]))
    return PRCurve(score[order], precision, recall, ap, n_true)
