"""Fusion of the boxes that several passes of a detector found in one image.

:func:`fuse_boxes` is weighted box fusion (Solovyev et al., 2021): the detections of
every pass (here: the learned detector run at several input scales,
:func:`karyoflow.tasks.detection.learned.detect_learned`) are taken best score first and
gathered into clusters of boxes that overlap; each cluster becomes one box, the
score-weighted mean of its members, scored by the sum of their scores over the number of
passes - a chromosome every pass finds keeps its score, one that only one of four passes
finds keeps a quarter of it. Unlike non-maximum suppression no box is thrown away, and a
cluster takes at most one box of each pass, so two crossing chromosomes found by the
same pass stay two boxes.

>>> a = [[0, 0, 10, 20]]; b = [[2, 0, 12, 20], [40, 40, 50, 50]]
>>> boxes, scores = fuse_boxes([a, b], [[0.8], [0.8, 0.4]])
>>> boxes.tolist(), scores.tolist()
([[1.0, 0.0, 11.0, 20.0], [40.0, 40.0, 50.0, 50.0]], [0.8, 0.2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from karyoflow.tasks.detection.evaluate import box_iou

__all__ = ["fuse_boxes"]


def fuse_boxes(
    boxes: Sequence[Any],
    scores: Sequence[Any],
    *,
    iou_threshold: float = 0.55,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted box fusion of the detections of several passes over one image.

    Parameters
    ----------
    boxes : sequence of array_like
        One ``(N_i, 4)`` array of ``(x0, y0, x1, y1)`` boxes per pass.
    scores : sequence of array_like
        The ``(N_i,)`` scores of each pass, in ``[0, 1]``.
    iou_threshold : float, default 0.55
        A box joins the cluster whose fused box it overlaps most, if that IoU is at
        least this and the cluster has no box of the same pass yet; otherwise it
        starts a cluster.

    Returns
    -------
    boxes : numpy.ndarray
        ``(M, 4)`` float64 fused boxes, best score first.
    scores : numpy.ndarray
        ``(M,)``: the sum of each cluster's scores divided by the number of passes.

    Raises
    ------
    ValueError
        If ``boxes`` and ``scores`` differ in length or are empty, or a pass has
        different numbers of boxes and scores.

    Examples
    --------
    One pass: the boxes come back as they were, best first.

    >>> b, s = fuse_boxes([[[0, 0, 4, 4], [10, 10, 20, 20]]], [[0.3, 0.9]])
    >>> b.tolist(), s.tolist()
    ([[10.0, 10.0, 20.0, 20.0], [0.0, 0.0, 4.0, 4.0]], [0.9, 0.3])

    Two boxes of the same pass never merge, however much they overlap:

    >>> b, s = fuse_boxes([[[0, 0, 10, 10], [0, 0, 10, 11]]], [[0.9, 0.8]])
    >>> len(b)
    2
    """
    if len(boxes) != len(scores) or not len(boxes):
        raise ValueError(
            f"fuse_boxes: need one score array per box array, got {len(boxes)} and {len(scores)}"
        )
    bs, ss, src = [], [], []
    for i, (b, s) in enumerate(zip(boxes, scores, strict=True)):
        b = np.asarray(b, np.float64).reshape(-1, 4)
        s = np.asarray(s, np.float64).reshape(-1)
        if len(b) != len(s):
            raise ValueError(f"fuse_boxes: pass {i} has {len(b)} boxes and {len(s)} scores")
        bs.append(b)
        ss.append(s)
        src.append(np.full(len(s), i))
    b, s, m = np.concatenate(bs), np.concatenate(ss), np.concatenate(src)
    order = np.argsort(-s, kind="stable")
    b, s, m = b[order], s[order], m[order]
    fused = np.empty_like(b)
    members: list[list[int]] = []
    for i in range(len(b)):
        k = len(members)
        iou = box_iou(b[i : i + 1], fused[:k])[0] if k else np.zeros(0)
        joined = False
        for j in np.argsort(-iou, kind="stable"):
            if iou[j] < iou_threshold:
                break
            if m[i] not in m[members[j]]:  # at most one box of each pass per cluster
                members[j].append(i)
                w = s[members[j]]
                if w.sum() > 0:
                    fused[j] = (b[members[j]] * w[:, None]).sum(axis=0) / w.sum()
                joined = True
                break
        if not joined:
            members.append([i])
            fused[k] = b[i]
    out_boxes = fused[: len(members)]
    out_scores = np.array([s[c].sum() for c in members], np.float64) / len(boxes)
    order = np.argsort(-out_scores, kind="stable")
    return out_boxes[order].reshape(-1, 4), out_scores[order]
