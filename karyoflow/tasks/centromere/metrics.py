"""Centromere localisation metrics: pixel errors, errors relative to chromosome length,
and the centromere index.

Points are ``(x, y)`` in pixel-centre coordinates. The chromosome's extent is measured
on the preprocessed image itself (pixels that differ from the background level, the
median of the image border, by more than a threshold): preprocessing masks the
background to one level and orients the long axis vertically, so the extent along the
long axis is the chromosome length in the same pixels as the points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "centromere_index",
    "centromere_metrics",
    "chromosome_extent",
    "per_class_table",
    "point_errors",
]


def chromosome_extent(images: np.ndarray, threshold: float = 12.0) -> np.ndarray:
    """Foreground bounding box of each image: ``(N, 4)`` ``top, bottom, left, right``.

    Foreground = pixels differing from the image's border median by more than
    ``threshold`` grey levels. Rows/columns are inclusive pixel indices; an image without
    foreground gets the whole image.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` or ``(H, W)`` grey images.
    threshold : float, default 12.0

    Returns
    -------
    numpy.ndarray
        float64 ``(N, 4)``.

    Examples
    --------
    >>> img = np.full((20, 10), 250, np.uint8); img[4:15, 3:7] = 60
    >>> chromosome_extent(img).tolist()
    [[4.0, 14.0, 3.0, 6.0]]
    """
    imgs = np.asarray(images)
    if imgs.ndim == 2:
        imgs = imgs[None]
    n, h, w = imgs.shape[:3]
    out = np.empty((n, 4), np.float64)
    for i, img in enumerate(imgs.astype(np.float32)):
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        fg = np.abs(img - np.median(border)) > threshold
        rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
        if rows.size == 0:
            out[i] = (0, h - 1, 0, w - 1)
        else:
            out[i] = (rows[0], rows[-1], cols[0], cols[-1])
    return out


def _axis(extent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, length, vertical) along each chromosome's long axis (box edges)."""
    ext = np.asarray(extent, np.float64).reshape(-1, 4)
    v_len = ext[:, 1] - ext[:, 0] + 1
    h_len = ext[:, 3] - ext[:, 2] + 1
    vertical = v_len >= h_len
    start = np.where(vertical, ext[:, 0], ext[:, 2]) - 0.5
    length = np.where(vertical, v_len, h_len)
    return start, start + length, length, vertical


def centromere_index(points: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Centromere index: short (p) arm length / chromosome length, in ``[0, 0.5]``.

    Measured along the long axis of the foreground box (vertical after orientation);
    the p arm is the shorter arm, so the index does not depend on which end is up.

    Examples
    --------
    >>> ext = np.array([[10.0, 49.0, 2.0, 9.0]])  # rows 10-49: 40 px long
    >>> centromere_index(np.array([[5.0, 19.5]]), ext).tolist()
    [0.25]
    >>> centromere_index(np.array([[5.0, 39.5]]), ext).tolist()
    [0.25]
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    start, end, length, vertical = _axis(extent)
    pos = np.where(vertical, pts[:, 1], pts[:, 0])
    arm = np.minimum(pos - start, end - pos)
    return np.clip(arm / length, 0.0, 0.5)


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distance between predicted and true points, ``(N,)``.

    Examples
    --------
    >>> point_errors(np.array([[3.0, 4.0], [1, 1]]), np.array([[0.0, 0.0], [1, 1]])).tolist()
    [5.0, 0.0]
    """
    p = np.asarray(pred, np.float64).reshape(-1, 2)
    t = np.asarray(true, np.float64).reshape(-1, 2)
    return np.hypot(p[:, 0] - t[:, 0], p[:, 1] - t[:, 1])


def _summary(err_px: np.ndarray, err_frac: np.ndarray, ci_err: np.ndarray) -> dict[str, float]:
    if err_px.size == 0:
        nan = float("nan")
        return {
            "n": 0,
            "mean_error_px": nan,
            "median_error_px": nan,
            "p90_error_px": nan,
            "mean_error_frac": nan,
            "median_error_frac": nan,
            "p90_error_frac": nan,
            "within_5pct": nan,
            "ci_mae": nan,
        }
    return {
        "n": int(err_px.size),
        "mean_error_px": float(err_px.mean()),
        "median_error_px": float(np.median(err_px)),
        "p90_error_px": float(np.percentile(err_px, 90)),
        "mean_error_frac": float(err_frac.mean()),
        "median_error_frac": float(np.median(err_frac)),
        "p90_error_frac": float(np.percentile(err_frac, 90)),
        "within_5pct": float((err_frac <= 0.05).mean()),
        "ci_mae": float(ci_err.mean()),
    }


def centromere_metrics(
    pred: np.ndarray, true: np.ndarray, extent: np.ndarray
) -> tuple[dict[str, float], pd.DataFrame]:
    """Summary metrics and the per-instance table.

    Parameters
    ----------
    pred, true : numpy.ndarray
        ``(N, 2)`` predicted and true ``(x, y)``.
    extent : numpy.ndarray
        ``(N, 4)`` from :func:`chromosome_extent`.

    Returns
    -------
    summary : dict
        ``n``; ``mean/median/p90_error_px``; the same as a fraction of the chromosome
        length (``*_error_frac``); ``within_5pct`` (share with error <= 5 % of length);
        ``ci_mae`` (mean absolute centromere-index error).
    table : pandas.DataFrame
        Per instance: ``error_px``, ``length_px``, ``error_frac``, ``ci_true``,
        ``ci_pred``, ``ci_error``.

    Examples
    --------
    >>> ext = np.array([[0.0, 99.0, 0.0, 9.0]] * 2)  # two 100 px chromosomes
    >>> true = np.array([[5.0, 30.0], [5.0, 60.0]])
    >>> pred = np.array([[5.0, 33.0], [5.0, 70.0]])  # 3 px and 10 px off
    >>> s, t = centromere_metrics(pred, true, ext)
    >>> s["mean_error_px"], s["median_error_frac"], s["within_5pct"]
    (6.5, 0.065, 0.5)
    >>> t["ci_error"].round(3).tolist()
    [0.03, 0.1]
    """
    err = point_errors(pred, true)
    _, _, length, _ = _axis(extent)
    frac = err / length
    ci_t = centromere_index(true, extent)
    ci_p = centromere_index(pred, extent)
    table = pd.DataFrame(
        {
            "error_px": err,
            "length_px": length,
            "error_frac": frac,
            "ci_true": ci_t,
            "ci_pred": ci_p,
            "ci_error": np.abs(ci_p - ci_t),
        }
    )
    return _summary(err, frac, np.abs(ci_p - ci_t)), table


def per_class_table(
    table: pd.DataFrame, labels: np.ndarray, label_names: Sequence[str]
) -> pd.DataFrame:
    """Per class: ``n``, mean/median error (px, fraction), share within 5 %, CI error.

    Examples
    --------
    >>> t = pd.DataFrame({"error_px": [1.0, 3.0, 2.0], "error_frac": [0.01, 0.03, 0.1],
    ...                   "ci_error": [0.0, 0.02, 0.05]})
    >>> per_class_table(t, np.array([0, 0, 1]), ["1", "2"])[["label", "n", "within_5pct"]]
      label  n  within_5pct
    0     1  2          1.0
    1     2  1          0.0
    """
    rows = []
    labels = np.asarray(labels)
    for idx in sorted(set(labels.tolist())):
        sel = table[labels == idx]
        name = label_names[idx] if 0 <= idx < len(label_names) else "unknown"
        rows.append(
            {
                "label": name,
                "n": len(sel),
                "mean_error_px": float(sel["error_px"].mean()),
                "median_error_px": float(sel["error_px"].median()),
                "mean_error_frac": float(sel["error_frac"].mean()),
                "median_error_frac": float(sel["error_frac"].median()),
                "within_5pct": float((sel["error_frac"] <= 0.05).mean()),
                "ci_mae": float(sel["ci_error"].mean()),
            }
        )
    return pd.DataFrame(rows)
