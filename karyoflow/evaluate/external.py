"""Models tested on datasets they were not trained on: one table, one figure.

Rule ``external_summary`` reads each model's own test metrics
(``results/evaluate/<dataset>/<model>/metrics.json``) and its metrics on every external
test set (``.../external/<other>/metrics.json``, rule ``evaluate_external``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "external_table", "plot_external"]

#: The metrics of each row (a model on one test set).
COLUMNS: tuple[str, ...] = (
    "accuracy",
    "accuracy_decoded",
    "denver_accuracy",
    "macro_f1",
    "karyotype_match_call",
    "test_instances",
    "test_cells",
)


def external_table(own: Sequence[str | Path], external: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (model, test set): the model's own test split first.

    Parameters
    ----------
    own : sequence of path
        ``<trained>/<model>/metrics.json`` of the evaluate rule.
    external : sequence of path
        ``<trained>/<model>/external/<test set>/metrics.json``.

    Returns
    -------
    pandas.DataFrame
        ``model``, ``test_set``, ``kind`` (``own`` | ``external``) and :data:`COLUMNS`,
        sorted by model, own first, then test set.
    """
    rows = []
    for kind, paths in (("own", own), ("external", external)):
        for path in paths:
            path = Path(path)
            data = json.loads(path.read_text())
            test_set = data["dataset"] if kind == "own" else path.parent.name
            row = {"model": data["model"], "test_set": test_set, "kind": kind}
            row.update({c: data.get(c) for c in COLUMNS})
            rows.append(row)
    table = pd.DataFrame(rows, columns=["model", "test_set", "kind", *COLUMNS])
    order = {"own": 0, "external": 1}
    return table.sort_values(
        ["model", "kind", "test_set"], key=lambda s: s.map(order) if s.name == "kind" else s
    ).reset_index(drop=True)


def plot_external(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Top-1 and decoded accuracy of each model on each test set, as grouped bars.

    Returns
    -------
    Path
        The PNG written.
    """
    from matplotlib.figure import Figure

    from karyoflow.evaluate.plots import save_figure

    labels = [
        f"{m}\n{t}" + (" (own)" if k == "own" else "")
        for m, t, k in zip(table["model"], table["test_set"], table["kind"], strict=True)
    ]
    x = np.arange(len(table))
    fig = Figure(figsize=(max(4.0, 1.1 * len(table) + 1.5), 3.6))
    ax = fig.add_subplot()
    bars = ((-0.2, "accuracy", "top-1"), (0.2, "accuracy_decoded", "decoded"))
    for offset, column, name in bars:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
        ax.bar(x + offset, values, width=0.4, label=name)
        for xi, v in zip(x + offset, values, strict=True):
            if np.isfinite(v):
                ax.text(xi, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "models on their own and on external test sets", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
