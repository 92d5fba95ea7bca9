"""Evaluation figures as deterministic PNGs.

Figures are drawn on the Agg canvas directly (no :mod:`matplotlib.pyplot`, so no global
state and no GUI backend) and saved at a fixed dpi without the "Software" metadata
entry, so the same inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

__all__ = [
    "DPI",
    "placeholder_png",
    "plot_confusion_matrix",
    "plot_grid_comparison",
    "plot_precision_recall",
    "plot_reliability",
    "plot_review_curve",
    "plot_training_curves",
    "save_figure",
]

#: Resolution of every saved figure.
DPI: int = 100


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI` without a software stamp (identical bytes
    for identical figures); the folder is made."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=DPI, format="png", metadata={"Software": None})
    return out


def placeholder_png(path: str | Path, text: str) -> Path:
    """A small figure that says why there is no plot (``text``), in place of one."""
    fig = Figure(figsize=(3, 0.6))
    fig.text(0.03, 0.5, text, va="center", fontsize=10)
    return save_figure(fig, path)


def plot_confusion_matrix(
    cm: ArrayLike,
    labels: Sequence[str],
    path: str | Path,
    *,
    normalise: bool = True,
    title: str = "",
) -> Path:
    """Heat map of a confusion matrix (rows = true class, columns = predicted).

    Parameters
    ----------
    cm : array_like, shape (k, k)
        Counts, e.g. ``classification_report(...)["confusion_matrix"]``.
    labels : sequence of str
        Class names (``k`` of them).
    path : str or Path
        PNG to write (parent folders are created).
    normalise : bool, optional
        Divide each row by its total (recall on the diagonal); empty rows stay 0.
    title : str, optional

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = plot_confusion_matrix([[3, 1], [0, 2]], ["4", "5"], f"{tmp}/cm.png")
    ...     os.path.getsize(out) > 0
    True
    """
    mat = np.asarray(cm, dtype=np.float64)
    k = len(labels)
    if mat.shape != (k, k):
        raise ValueError(f"cm has shape {mat.shape} but there are {k} labels")
    if normalise:
        totals = mat.sum(axis=1, keepdims=True)
        mat = np.divide(mat, totals, out=np.zeros_like(mat), where=totals > 0)
    size = max(4.0, 0.32 * k + 2.0)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(mat, cmap="Blues", vmin=0.0, vmax=1.0 if normalise else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=list(labels), fontsize=7 if k > 12 else 9)
    ax.set_yticks(range(k), labels=list(labels), fontsize=7 if k > 12 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 12:
        threshold = mat.max() / 2 if mat.size else 0
        for i in range(k):
            for j in range(k):
                text = f"{mat[i, j]:.2f}" if normalise else f"{mat[i, j]:.0f}"
                colour = "white" if mat[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalise else "confusion"))
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training_curves(
    history: Mapping[str, Sequence[float]], path: str | Path, *, title: str = ""
) -> Path:
    """Train vs validation curves per epoch, one panel per metric.

    Parameters
    ----------
    history : mapping of str to sequence of float
        Keras-style history: ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``, ...
        Keys starting with ``val_`` are drawn in the panel of the metric they validate.
    path : str or Path
        PNG to write.
    title : str, optional

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os
    >>> hist = {"loss": [1.0, 0.6], "val_loss": [1.1, 0.8], "accuracy": [0.5, 0.7]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.path.getsize(plot_training_curves(hist, f"{tmp}/h.png")) > 0
    True
    """
    metrics: list[str] = []
    for key in history:
        base = key[4:] if key.startswith("val_") else key
        if base not in metrics:
            metrics.append(base)
    if not metrics:
        raise ValueError("history is empty")
    fig = Figure(figsize=(4.5 * len(metrics), 3.6))
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for key, name, style in ((metric, "train", "-o"), (f"val_{metric}", "val", "--s")):
            if key in history:
                values = np.asarray(history[key], dtype=np.float64)
                ax.plot(np.arange(1, values.size + 1), values, style, label=name, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_precision_recall(
    curves: Mapping[str, Any],
    path: str | Path,
    *,
    operating: float | None = None,
    title: str = "",
) -> Path:
    """Precision against recall of a detector, one curve per split, AP in the legend.

    Parameters
    ----------
    curves : mapping of str to PRCurve
        :func:`karyoflow.tasks.detection.pipeline.pr_curves` (anything with ``precision``,
        ``recall``, ``ap`` and ``at(threshold)``); the ``train``, ``val`` and ``test``
        curves are drawn when present, else every curve.
    path : str or Path
        PNG to write.
    operating : float, optional
        Score threshold in use: marked on each curve.
    title : str, optional

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os
    >>> from karyoflow.tasks.detection.evaluate import average_precision
    >>> c = average_precision([[[0, 0, 4, 4]]], [[[0, 0, 4, 4], [8, 8, 9, 9]]], [[0.9, 0.5]])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.path.getsize(plot_precision_recall({"test": c}, f"{tmp}/pr.png", operating=0.6)) > 0
    True
    """
    names = [n for n in ("train", "val", "test") if n in curves] or list(curves)
    if not names:
        raise ValueError("no precision-recall curve to draw")
    fig = Figure(figsize=(10.0, 4.4))
    ends = [float(curves[n].recall[-1]) for n in names if len(curves[n].recall)]
    x0 = max(0.0, min(ends) - 0.15) if ends else 0.0
    lows = [
        float(np.min(curves[n].precision[curves[n].recall >= x0]))
        for n in names
        if np.any(curves[n].recall >= x0)
    ]
    y0 = max(0.0, min(lows) - 0.02) if lows else 0.0
    for k, (xlim, ylim, sub) in enumerate(
        (((0.0, 1.0), (0.0, 1.02), "whole curve"), ((x0, 1.0), (y0, 1.005), "high-recall end"))
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        for name in names:
            c = curves[name]
            label = f"{name} (AP50 {c.ap:.3f})"
            line = ax.plot(c.recall, c.precision, "-", label=label)[0]
            if operating is not None:
                p, r = c.at(operating)
                ax.plot([r], [p], "o", color=line.get_color(), markersize=6)
        if operating is not None:
            ax.plot([], [], "o", color="grey", label=f"operating point (score >= {operating:g})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        ax.set_title(sub)
        if k == 0:
            ax.legend(loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_grid_comparison(
    table: pd.DataFrame,
    path: str | Path,
    *,
    title: str = "",
    metrics: Sequence[str] = ("val_accuracy", "test_accuracy"),
) -> Path:
    """Annotated heat map of grid-search results: model (rows) x optimizer/learning rate.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``model``, ``optimizer``, ``learning_rate``, ``val_accuracy`` and
        optionally ``test_accuracy``; repeated configurations (seeds) are averaged.
    path : str or Path
        PNG to write.
    title : str, optional
    metrics : sequence of str, optional
        Metric columns to draw, one panel each; absent ones are skipped (at least one
        must be present).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os
    >>> grid = pd.DataFrame({"model": ["cnn", "cnn", "resnet", "resnet"],
    ...                      "optimizer": ["adam", "sgd", "adam", "sgd"],
    ...                      "learning_rate": [1e-3, 1e-2, 1e-3, 1e-2],
    ...                      "val_accuracy": [0.81, 0.74, 0.9, 0.86]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.path.getsize(plot_grid_comparison(grid, f"{tmp}/g.png")) > 0
    True
    """
    missing = {"model", "optimizer", "learning_rate"} - set(table.columns)
    if missing:
        raise ValueError(f"grid table lacks columns {sorted(missing)}")
    present = [m for m in metrics if m in table.columns]
    if not present:
        raise ValueError(f"grid table has none of the metric columns {list(metrics)}")
    frame = table.assign(
        config=table["optimizer"].astype(str) + "\nlr=" + table["learning_rate"].map("{:g}".format)
    )
    fig = Figure(
        figsize=(
            1.0 + 1.3 * max(2, frame["config"].nunique()) * len(present),
            1.6 + 0.5 * frame["model"].nunique(),
        )
    )
    for i, metric in enumerate(present):
        pivot = frame.pivot_table(
            index="model", columns="config", values=metric, aggfunc="mean", sort=True
        )
        ax = fig.add_subplot(1, len(present), i + 1)
        values = pivot.to_numpy(dtype=np.float64)
        image = ax.imshow(values, cmap="viridis", aspect="auto")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(pivot.shape[1]), labels=[str(c) for c in pivot.columns], fontsize=8)
        ax.set_yticks(range(pivot.shape[0]), labels=[str(r) for r in pivot.index], fontsize=8)
        finite = values[np.isfinite(values)]
        best = finite.max() if finite.size else np.nan
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                if np.isfinite(values[r, c]):
                    weight = "bold" if values[r, c] == best else "normal"
                    colour = "black" if values[r, c] > mid else "white"
                    ax.text(
                        c,
                        r,
                        f"{values[r, c]:.3f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=colour,
                        fontweight=weight,
                    )
        ax.set_title(metric)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_reliability(
    curves: Mapping[str, Mapping[str, Any]], path: str | Path, *, title: str = ""
) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per curve.

    Parameters
    ----------
    curves : mapping
        Label (``"before (ECE 4.1 %)"``) -> a curve of
        :func:`karyoflow.evaluate.calibration.reliability_curve`.
    path : str or Path
        PNG to write.
    """
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    for (label, curve), marker in zip(curves.items(), "osd^v", strict=False):
        filled = np.asarray(curve["count"]) > 0
        ax.plot(
            np.asarray(curve["confidence"])[filled],
            np.asarray(curve["accuracy"])[filled],
            marker=marker,
            ms=4,
            lw=1.5,
            label=label,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_review_curve(
    curves: Mapping[str, pd.DataFrame],
    path: str | Path,
    *,
    chosen: float | None = None,
    title: str = "",
) -> Path:
    """Review trade-off: exact-call accuracy of the unflagged cells against the share of
    cells flagged, one line per split; the chosen posterior threshold marked.

    Parameters
    ----------
    curves : mapping
        Split name -> :func:`karyoflow.evaluate.cells.review_curve` table.
    chosen : float, optional
        The operating point (``min_posterior``) to mark.
    """
    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for (name, curve), marker in zip(curves.items(), "osd^", strict=False):
        if not len(curve):
            continue
        ax.plot(
            curve["flagged_share"] * 100,
            curve["unflagged_accuracy"] * 100,
            marker=marker,
            ms=4,
            lw=1.5,
            label=name,
        )
        if chosen is not None:
            at = curve[np.isclose(curve["min_posterior"], chosen)]
            if len(at):
                ax.scatter(
                    at["flagged_share"] * 100,
                    at["unflagged_accuracy"] * 100,
                    s=90,
                    facecolors="none",
                    edgecolors="crimson",
                    zorder=3,
                )
    if chosen is not None:
        ax.plot([], [], "o", mfc="none", mec="crimson", label=f"operating point (p ≥ {chosen:g})")
    ax.set_xlim(0, 100)
    ax.set_xlabel("cells flagged for review (%)")
    ax.set_ylabel("exact calls among unflagged cells (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
