"""Grid-search summary: one table row per training job, the best point per model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["best_points", "grid_points", "grid_table", "point_id"]


def point_id(optimizer: str, learning_rate: float) -> str:
    """Grid point name used in paths and MLflow run names.

    Examples
    --------
    >>> point_id("adamw", 0.003)
    'adamw-lr0.003'
    """
    return f"{optimizer}-lr{float(learning_rate):g}"


def grid_points(grid: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """``{point id: {"optimizer": ..., "learning_rate": ...}}`` for every combination.

    Examples
    --------
    >>> list(grid_points({"optimizer": ["adam"], "learning_rate": [0.01, 0.001]}))
    ['adam-lr0.01', 'adam-lr0.001']
    """
    out = {}
    for opt in grid["optimizer"]:
        for lr in grid["learning_rate"]:
            out[point_id(opt, lr)] = {"optimizer": opt, "learning_rate": float(lr)}
    return out


def grid_table(metric_files: Sequence[str | Path]) -> pd.DataFrame:
    """Read ``results/train/<dataset>/<model>/<point>/metrics.json`` files into a table."""
    rows = []
    for path in metric_files:
        path = Path(path)
        metrics = json.loads(path.read_text())
        point = path.parent.name
        optimizer, _, lr = point.partition("-lr")
        rows.append(
            {
                "model": path.parent.parent.name,
                "point": point,
                "optimizer": optimizer,
                "learning_rate": float(lr),
                **{k: v for k, v in metrics.items() if not isinstance(v, dict | list)},
            }
        )
    df = pd.DataFrame(rows)
    return df.sort_values(["model", "optimizer", "learning_rate"]).reset_index(drop=True)


def best_points(table: pd.DataFrame, select_by: str = "val_accuracy") -> dict[str, Any]:
    """Best grid point per model and overall (ties: first in table order).

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["a", "a", "b"], "point": ["p", "q", "p"],
    ...                   "val_accuracy": [0.5, 0.7, 0.6]})
    >>> best_points(t)["per_model"]
    {'a': 'q', 'b': 'p'}
    >>> best_points(pd.DataFrame({"model": ["a"], "point": ["p"], "val_accuracy": [None]}))["best"]
    {'model': 'a', 'point': 'p', 'val_accuracy': None}
    """
    ascending = select_by.endswith("loss")
    # no validation split (e.g. 80/20 train/test): the metric is missing; keep table order
    table = table.assign(**{select_by: pd.to_numeric(table[select_by], errors="coerce")})
    ranked = table.sort_values(select_by, ascending=ascending, kind="stable", na_position="last")
    per_model = {m: g.iloc[0]["point"] for m, g in ranked.groupby("model", sort=True)}
    top = ranked.iloc[0]
    return {
        "select_by": select_by,
        "per_model": {k: str(v) for k, v in per_model.items()},
        "best": {
            "model": str(top["model"]),
            "point": str(top["point"]),
            select_by: None if pd.isna(top[select_by]) else float(top[select_by]),
        },
    }
