"""Overlapping-pair segmentation: IoU with A/B matching, colour maps and sample figures.

Labels: 0 background, 1 first chromosome (A), 2 second (B), 3 overlap. Which of the two
chromosomes is "first" is arbitrary, so every prediction is compared with the truth
both as it is and with 1 and 2 swapped, per image, and the better of the two is kept
(:func:`match_ab`). IoU per class is then pooled over all test pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CLASS_NAMES",
    "COLOURS",
    "colour_labels",
    "match_ab",
    "plot_segmentation_samples",
    "segmentation_report",
    "swap_ab",
]

#: Class names in label order.
CLASS_NAMES: tuple[str, ...] = ("background", "chromosome_a", "chromosome_b", "overlap")
#: RGB colour of each label (white, blue, orange, red).
COLOURS: np.ndarray = np.array(
    [[255, 255, 255], [31, 119, 180], [255, 160, 40], [214, 39, 40]], np.uint8
)


def swap_ab(labels: ArrayLike) -> np.ndarray:
    """Labels with 1 and 2 exchanged.

    Examples
    --------
    >>> swap_ab([0, 1, 2, 3]).tolist()
    [0, 2, 1, 3]
    """
    lab = np.asarray(labels)
    out = lab.copy()
    out[lab == 1] = 2
    out[lab == 2] = 1
    return out


def match_ab(truth: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the prediction or its A/B swap, whichever agrees with more A/B pixels.

    Parameters
    ----------
    truth, pred : array_like
        ``(N, H, W)`` (or one ``(H, W)`` image) integer labels.

    Returns
    -------
    matched : numpy.ndarray
        ``pred`` with 1 and 2 swapped in the images where that fits the truth better
        (ties keep the prediction).
    swapped : numpy.ndarray
        bool ``(N,)``: which images were swapped.

    Examples
    --------
    >>> t = np.array([[0, 1, 1, 3, 2]]); p = np.array([[0, 2, 2, 3, 1]])
    >>> m, s = match_ab(t, p)
    >>> m.tolist(), s.tolist()
    ([[0, 1, 1, 3, 2]], [True])
    """
    t, p = np.asarray(truth), np.asarray(pred)
    single = t.ndim == 2
    if single:
        t, p = t[None], p[None]
    if t.shape != p.shape:
        raise ValueError(f"truth {t.shape} and prediction {p.shape} differ in shape")
    axes = tuple(range(1, t.ndim))
    keep = ((t == 1) & (p == 1)).sum(axes) + ((t == 2) & (p == 2)).sum(axes)
    swap = ((t == 1) & (p == 2)).sum(axes) + ((t == 2) & (p == 1)).sum(axes)
    swapped = swap > keep
    matched = p.copy()
    if swapped.any():
        matched[swapped] = swap_ab(p[swapped])
    return (matched[0] if single else matched), swapped


def segmentation_report(truth: ArrayLike, pred: ArrayLike, num_classes: int = 4) -> dict[str, Any]:
    """IoU per class pooled over pixels after per-image A/B matching; mean IoU; accuracy.

    Parameters
    ----------
    truth, pred : array_like
        ``(N, H, W)`` integer labels (0..3).
    num_classes : int, default 4

    Returns
    -------
    dict
        ``iou`` (class name -> IoU, NaN where a class is absent from both),
        ``mean_iou`` (over the classes present), ``chromosome_iou`` (mean of A and B),
        ``overlap_iou``, ``pixel_accuracy``, ``images``, ``swapped`` (images whose A/B
        were swapped), ``confusion_matrix`` (truth rows, matched prediction columns), and
        ``unmatched_iou`` / ``unmatched_mean_iou`` (no swapping, for reference).

    Examples
    --------
    >>> t = np.array([[[0, 1, 1], [3, 2, 2]]])
    >>> r = segmentation_report(t, swap_ab(t))
    >>> r["mean_iou"], r["swapped"], r["unmatched_iou"]["chromosome_a"]
    (1.0, 1, 0.0)
    """
    t = np.asarray(truth).astype(np.int64)
    p = np.asarray(pred).astype(np.int64)
    if t.ndim == 2:
        t, p = t[None], p[None]
    matched, swapped = match_ab(t, p)
    names = [*CLASS_NAMES[:num_classes], *(f"class_{k}" for k in range(4, num_classes))]

    def ious(pr: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        cm = np.bincount(
            t.reshape(-1) * num_classes + pr.reshape(-1), minlength=num_classes**2
        ).reshape(num_classes, num_classes)
        inter = np.diag(cm).astype(np.float64)
        union = cm.sum(0) + cm.sum(1) - np.diag(cm)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
        return {n: float(v) for n, v in zip(names, values, strict=True)}, cm

    iou, cm = ious(matched)
    raw, _ = ious(p)
    present = [v for v in iou.values() if np.isfinite(v)]
    chrom = [iou[n] for n in ("chromosome_a", "chromosome_b") if n in iou]
    total = int(cm.sum())
    return {
        "images": int(t.shape[0]),
        "pixels": total,
        "iou": iou,
        "mean_iou": float(np.mean(present)) if present else float("nan"),
        "chromosome_iou": float(np.nanmean(chrom)) if chrom else float("nan"),
        "overlap_iou": iou.get("overlap", float("nan")),
        "pixel_accuracy": float(np.trace(cm) / total) if total else float("nan"),
        "swapped": int(swapped.sum()),
        "confusion_matrix": cm.tolist(),
        "unmatched_iou": raw,
        "unmatched_mean_iou": float(np.nanmean(list(raw.values()))) if raw else float("nan"),
    }


def colour_labels(labels: ArrayLike) -> np.ndarray:
    """RGB image (``uint8``, ``(..., 3)``) of a label map with :data:`COLOURS`.

    Examples
    --------
    >>> colour_labels([[0, 3]]).tolist()
    [[[255, 255, 255], [214, 39, 40]]]
    """
    lab = np.clip(np.asarray(labels, np.int64), 0, len(COLOURS) - 1)
    return COLOURS[lab]


def plot_segmentation_samples(
    images: Sequence[np.ndarray] | np.ndarray,
    truth: Sequence[np.ndarray] | np.ndarray,
    pred: Sequence[np.ndarray] | np.ndarray | None,
    path: str | Path,
    *,
    title: str = "",
    per_image_iou: Sequence[float] | None = None,
) -> Path:
    """One column per pair: input, truth and (matched) prediction as colour maps.

    Deterministic PNG (Agg canvas, fixed dpi, no software tag), written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from karyoflow.evaluate.plots import DPI
    from karyoflow.fileutil import atomic_path

    n = len(images)
    rows = 2 if pred is None else 3
    fig = Figure(figsize=(max(1.6 * max(n, 1), 4.0), 1.6 * rows + 0.8))
    if n == 0:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no pairs", ha="center", va="center")
        ax.set_axis_off()
    for i in range(n):
        panels = [
            ("input", np.asarray(images[i]), "gray"),
            ("truth", colour_labels(truth[i]), None),
        ]
        if pred is not None:
            name = "prediction"
            if per_image_iou is not None:
                name = f"mIoU {per_image_iou[i]:.2f}"
            panels.append((name, colour_labels(pred[i]), None))
        for r, (name, img, cmap) in enumerate(panels):
            ax = fig.add_subplot(rows, n, r * n + i + 1)
            ax.imshow(img, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or name.startswith("mIoU"):
                ax.set_title(name, fontsize=8)
    handles = [
        Patch(facecolor=COLOURS[k] / 255.0, edgecolor="0.5", label=CLASS_NAMES[k])
        for k in range(len(CLASS_NAMES))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.12, wspace=0.05, hspace=0.25)
    FigureCanvasAgg(fig)
    out = Path(path)
    with atomic_path(out) as tmp:
        png = tmp.with_suffix(".png")
        fig.savefig(png, dpi=DPI, format="png", metadata={"Software": None})
        png.replace(tmp)
    return out
