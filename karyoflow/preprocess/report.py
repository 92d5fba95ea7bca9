"""Rejects table and summary of a preprocessed dataset (rule ``preprocess_merge``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path
from karyoflow.labels import LABELS

__all__ = ["shard_rejects", "summarise_preprocess", "write_preprocess_rejects"]

REJECT_COLUMNS = ("instance_id", "source", "reason")


def shard_rejects(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Rejected instances of all shards, sorted by instance id (no image data read)."""
    frames = []
    for path in sorted(Path(p) for p in paths):
        with h5py.File(path, "r") as h5:
            group = h5["rejects"]
            frames.append(
                pd.DataFrame(
                    {
                        k: [v.decode() if isinstance(v, bytes) else str(v) for v in group[k][()]]
                        for k in REJECT_COLUMNS
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=list(REJECT_COLUMNS), dtype=str)
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(list(REJECT_COLUMNS), kind="stable").reset_index(drop=True)


def write_preprocess_rejects(paths: Iterable[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """Write :func:`shard_rejects` atomically as CSV and return it."""
    df = shard_rejects(paths)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")
    return df


def summarise_preprocess(
    written: Mapping[tuple[str, str], str | Path],
    rejects_csv: str | Path,
    summary_path: str | Path,
) -> dict[str, Any]:
    """Counts per (size, split), class balance, straightening and rejects -> JSON file."""
    counts: dict[str, dict[str, Any]] = {}
    for (size, split), path in sorted(written.items()):
        with h5py.File(path, "r") as h5:
            attrs = h5.attrs
            straightened = h5["straightened"][()]
            flipped = h5["flipped"][()]
            original = h5["augmented"][()] == 0
            counts.setdefault(size, {})[split] = {
                "images": int(attrs["n_images"]),
                "instances": int(attrs["n_instances"]),
                "augmented": int(attrs["n_augmented"]),
                "straightened_fraction": _fraction(straightened[original]),
                "flipped_fraction": _fraction(flipped[original]),
                "per_class": dict(
                    zip(LABELS, json.loads(_text(attrs["class_counts"])), strict=True)
                ),
            }
    rejects = pd.read_csv(rejects_csv, dtype=str, keep_default_na=False)
    reasons = rejects["reason"].str.replace(r"'[^']*'", "'…'", regex=True).value_counts()
    summary = {
        "counts": counts,
        "rejected": len(rejects),
        "reject_reasons": {str(k): int(v) for k, v in reasons.items()},
    }
    with atomic_path(summary_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _fraction(values: np.ndarray) -> float:
    return round(float(np.mean(values)), 4) if len(values) else 0.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
