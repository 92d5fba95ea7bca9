"""Learning curves: test accuracy on a dataset against the number of its labelled
training cells, from fresh weights and from a trained model (rule ``learning_curve``).

Each point is a training entry on the dataset - a subset of its first ``n`` training
cells (``train.subsets``) or the whole dataset - tested on the dataset's test split by
the evaluate rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["curve_table", "plot_curve"]


def curve_table(
    entries: Mapping[str, Mapping[str, Any]], metric_files: Sequence[str | Path]
) -> pd.DataFrame:
    """One row per (entry, model): training cells, start and test accuracy.

    Parameters
    ----------
    entries : mapping
        Entry name -> ``{"train_cells": n or None, "start": "scratch" | weights}``.
    metric_files : sequence of path
        ``results/evaluate/<entry>/<model>/metrics.json``; the cells an entry trained on
        are read from its training metrics beside the chosen grid point
        (``results/train/<entry>/<model>/<point>/metrics.json``, ``train_cells``).

    Returns
    -------
    pandas.DataFrame
        ``entry``, ``model``, ``start``, ``train_cells``, ``accuracy``,
        ``accuracy_decoded``, ``karyotype_match_call``, sorted by model, start, cells.
    """
    rows = []
    for path in map(Path, metric_files):
        data = json.loads(path.read_text())
        entry = path.parent.parent.name
        results = path.parents[3]
        train = results / "train" / entry / data["model"] / data["point"] / "metrics.json"
        cells = json.loads(train.read_text()).get("train_cells") if train.exists() else None
        rows.append(
            {
                "entry": entry,
                "model": data["model"],
                "start": str(entries.get(entry, {}).get("start") or "scratch"),
                "train_cells": cells,
                "accuracy": data.get("accuracy"),
                "accuracy_decoded": data.get("accuracy_decoded"),
                "karyotype_match_call": data.get("karyotype_match_call"),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values(["model", "start", "train_cells"]).reset_index(drop=True)


def start_name(start: str) -> str:
    """How a curve's legend names a start model: the training entry of a workflow model
    file, else the path's name or the URI.

    Examples
    --------
    >>> start_name("results/train/labs/karyonet_fast/adamw-lr0.003/model.keras")
    'fine-tuned from labs'
    >>> start_name("models:/karyoflow-classification@champion")
    'fine-tuned from models:/karyoflow-classification@champion'
    """
    parts = Path(start).parts
    if "train" in parts and parts.index("train") + 1 < len(parts) and ":/" not in start:
        return f"fine-tuned from {parts[parts.index('train') + 1]}"
    return f"fine-tuned from {start if ':/' in start else Path(start).name}"


def plot_curve(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Test accuracy against training cells (log scale), one line per model and start.

    Returns
    -------
    Path
        The PNG written.
    """
    from matplotlib.figure import Figure

    from karyoflow.evaluate.plots import save_figure

    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    for (model, start), group in table.groupby(["model", "start"], sort=True):
        group = group.sort_values("train_cells")
        x = group["train_cells"].to_numpy(float)
        y = pd.to_numeric(group["accuracy"], errors="coerce").to_numpy(float)
        label = f"{model}, {'from scratch' if start == 'scratch' else start_name(start)}"
        ax.plot(x, y, marker="o", label=label)
        for xi, yi in zip(x, y, strict=True):
            if np.isfinite(yi):
                ax.annotate(f"{yi:.2f}", (xi, yi), textcoords="offset points", xytext=(0, 5),
                            ha="center", fontsize=7)  # fmt: skip
    ax.set_xscale("log")
    cells = sorted({int(c) for c in pd.to_numeric(table["train_cells"], errors="coerce").dropna()})
    ax.set_xticks(cells, [str(c) for c in cells])
    ax.minorticks_off()
    ax.set_xlabel("labelled training cells")
    ax.set_ylabel("test accuracy (top-1)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "learning curve", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
