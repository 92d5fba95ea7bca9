"""Build, split, write and summarise manifests of chromosome instances.

One manifest row is one chromosome instance (see :data:`karyoflow.records.MANIFEST_COLUMNS`).
Per dataset the workflow writes ``results/manifest/<dataset>.parquet`` and
``<dataset>.rejected.csv``; :func:`merge_manifests` concatenates them and
:func:`summarise` produces ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path
from karyoflow.labels import LABELS
from karyoflow.records import MANIFEST_COLUMNS, REJECT_COLUMNS, Reject
from karyoflow.split import SPLITS, assign_splits

__all__ = [
    "cell_strata",
    "format_summary",
    "manifest_frame",
    "merge_manifests",
    "read_manifest",
    "read_manifests",
    "rejects_frame",
    "scoped_cell_ids",
    "split_manifest",
    "summarise",
    "write_manifest",
    "write_rejects",
]

_INT_COLUMNS = ("frame", "x0", "y0", "x1", "y1", "image_width", "image_height", "label_index")
_FLOAT_COLUMNS = ("centromere_x", "centromere_y")


def manifest_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Records -> DataFrame with the manifest's columns, order and dtypes.

    Examples
    --------
    >>> df = manifest_frame([{"dataset": "d", "label": "X", "x1": 5}])
    >>> list(df.columns) == list(MANIFEST_COLUMNS), int(df.loc[0, "x1"])
    (True, 5)
    """
    rows = [{k: r.get(k, d) for k, d in MANIFEST_COLUMNS.items()} for r in records]
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for col in _INT_COLUMNS:
        df[col] = df[col].astype("int64")
    for col in _FLOAT_COLUMNS:
        df[col] = df[col].astype("float64")
    for col in set(MANIFEST_COLUMNS) - set(_INT_COLUMNS) - set(_FLOAT_COLUMNS):
        df[col] = df[col].fillna("").astype(str)
    return df


def rejects_frame(dataset: str, rejects: Sequence[Reject]) -> pd.DataFrame:
    """Rejects -> DataFrame with columns :data:`~karyoflow.records.REJECT_COLUMNS`."""
    rows = [(dataset, r.source, r.item, r.reason) for r in rejects]
    return pd.DataFrame(rows, columns=list(REJECT_COLUMNS), dtype=str)


def cell_strata(df: pd.DataFrame) -> dict[str, str]:
    """Stratum of each cell: its karyotype truth if known, else whether it has a Y.

    Stratifying on this spreads abnormal and male/female cells over the splits.
    """
    strata: dict[str, str] = {}
    for cell, group in df.groupby("cell_id", sort=True):
        truth = next((t for t in group["cell_truth"] if t), "")
        if truth:
            strata[str(cell)] = f"truth:{truth}"
        elif (group["label"] != "").any():
            strata[str(cell)] = "Y" if (group["label"] == "Y").any() else "noY"
        else:
            strata[str(cell)] = ""
    return strata


def split_manifest(
    df: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int,
    *,
    stratify: bool = True,
    honour_preset: bool = True,
    fixed: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Return a copy of ``df`` with the ``split`` column set, by cell.

    Parameters
    ----------
    df : DataFrame
        A manifest.
    fractions, seed
        See :func:`karyoflow.split.assign_splits`.
    stratify : bool
        Stratify by :func:`cell_strata`.
    honour_preset : bool
        Keep the dataset's own split (``preset_split``) where given.
    fixed : mapping, optional
        Cell id -> split imposed from outside (e.g. another dataset of the same cells,
        so a cell never lands in two splits across datasets).

    Raises
    ------
    ValueError
        If one cell carries two different preset splits.
    """
    out = df.copy()
    preset: dict[str, str] = {}
    if honour_preset:
        given = out.loc[out["preset_split"] != "", ["cell_id", "preset_split"]]
        for cell, splits in given.groupby("cell_id")["preset_split"]:
            values = sorted(set(splits))
            if len(values) > 1:
                raise ValueError(f"cell {cell!r} is listed in several splits: {values}")
            preset[str(cell)] = values[0]
    cells = sorted(out["cell_id"].unique().tolist())
    if fixed:
        preset.update({c: fixed[c] for c in cells if c in fixed})
    strata = cell_strata(out) if stratify else None
    mapping = assign_splits(cells, strata, fractions, seed, preset=preset)
    out["split"] = out["cell_id"].map(mapping).astype(str)
    return out


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a manifest atomically as Parquet (``.parquet``) or CSV (``.csv``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False, lineterminator="\n")
        else:
            raise ValueError(f"{path}: manifest must end in .parquet or .csv")
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest` with the right dtypes."""
    path = Path(path)
    if path.suffix == ".parquet":
        df = pd.read_parquet(path, engine="pyarrow")
    else:
        df = pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in _FLOAT_COLUMNS})
    return manifest_frame(df.to_dict("records"))


def read_manifests(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Several manifests as one table (a union of datasets): with more than one, each
    ``cell_id`` becomes ``<dataset>:<cell_id>`` (:func:`scoped_cell_ids`), as the
    union's preprocessed splits name them, so equal ids of two datasets stay two cells."""
    frames = [read_manifest(p) for p in paths]
    if len(frames) == 1:
        return frames[0]
    table = pd.concat(frames, ignore_index=True)
    table["cell_id"] = scoped_cell_ids(table["dataset"], table["cell_id"])
    return table


def scoped_cell_ids(datasets: Sequence[str], cell_ids: Sequence[str]) -> np.ndarray:
    """``<dataset>:<cell id>`` for each row (cell ids of a union of datasets).

    Examples
    --------
    >>> scoped_cell_ids(["a", "b"], ["c1", "c1"]).tolist()
    ['a:c1', 'b:c1']
    """
    return np.array([f"{d}:{c}" for d, c in zip(datasets, cell_ids, strict=True)], dtype=object)


def write_rejects(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the rejects table atomically as CSV (header even when empty)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")
    return path


def merge_manifests(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-dataset manifests (in the given order)."""
    if not frames:
        return manifest_frame([])
    return manifest_frame(pd.concat(frames, ignore_index=True).to_dict("records"))


def summarise(
    manifests: Mapping[str, pd.DataFrame], rejects: Mapping[str, pd.DataFrame]
) -> dict[str, Any]:
    """Split sizes, per-class counts and reject reasons per dataset, and totals."""
    datasets: dict[str, Any] = {}
    for name, df in manifests.items():
        rej = rejects.get(name, rejects_frame(name, []))
        splits = {}
        for split in SPLITS:
            part = df[df["split"] == split]
            per_class = part.loc[part["label"] != "", "label"].value_counts()
            splits[split] = {
                "instances": len(part),
                "cells": int(part["cell_id"].nunique()),
                "per_class": {lab: int(per_class.get(lab, 0)) for lab in LABELS},
            }
        reasons = rej["reason"].str.replace(r"'[^']*'", "'…'", regex=True).value_counts()
        datasets[name] = {
            "kind": ",".join(sorted(df["kind"].unique())) if len(df) else "",
            "instances": len(df),
            "cells": int(df["cell_id"].nunique()),
            "sources": int(df["source"].nunique()),
            "labelled": int((df["label"] != "").sum()),
            "with_centromere": int(np.isfinite(df["centromere_x"]).sum()),
            "with_mask": int((df["polygon"] != "").sum()),
            "cells_with_truth": int(df.loc[df["cell_truth"] != "", "cell_id"].nunique()),
            "splits": splits,
            "rejected": len(rej),
            "reject_reasons": {str(k): int(v) for k, v in reasons.items()},
        }
    totals = {
        "instances": sum(d["instances"] for d in datasets.values()),
        "rejected": sum(d["rejected"] for d in datasets.values()),
        "splits": {s: sum(d["splits"][s]["instances"] for d in datasets.values()) for s in SPLITS},
    }
    return {"datasets": datasets, "totals": totals}


def format_summary(summary: Mapping[str, Any]) -> str:
    """Human-readable table of :func:`summarise` output."""
    head = f"{'dataset':<28}{'cells':>7}{'instances':>11}{'train':>8}{'val':>8}{'test':>8}"
    lines = [head + f"{'rejected':>10}", "-" * (len(head) + 10)]
    for name, d in summary["datasets"].items():
        s = d["splits"]
        lines.append(
            f"{name:<28}{d['cells']:>7}{d['instances']:>11}{s['train']['instances']:>8}"
            f"{s['val']['instances']:>8}{s['test']['instances']:>8}{d['rejected']:>10}"
        )
        totals = {lab: sum(d["splits"][s]["per_class"][lab] for s in SPLITS) for lab in LABELS}
        if any(totals.values()):
            lines.append("    per class: " + " ".join(f"{k}:{v}" for k, v in totals.items()))
        for reason, n in d["reject_reasons"].items():
            lines.append(f"    rejected {n:>6} x {reason}")
    t = summary["totals"]
    lines.append("-" * (len(head) + 10))
    lines.append(
        f"{'total':<28}{'':>7}{t['instances']:>11}{t['splits']['train']:>8}"
        f"{t['splits']['val']:>8}{t['splits']['test']:>8}{t['rejected']:>10}"
    )
    return "\n".join(lines)
