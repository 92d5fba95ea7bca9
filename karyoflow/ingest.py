"""Ingest one configured dataset: read, quarantine bad input, split, return tables.

This is the logic behind the ``ingest`` rule and ``karyoflow ingest``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from karyoflow.manifest import manifest_frame, rejects_frame, split_manifest, write_rejects
from karyoflow.records import IngestError, ReadResult, Reject, normalise_record

__all__ = ["READERS", "IngestOutput", "dedupe", "ingest_dataset", "reader_for"]

#: dataset kind -> "module:function" of its reader.
READERS: dict[str, str] = {
    "voc": "karyoflow.readers.voc:read_voc",
    "crops": "karyoflow.readers.crops:read_crops",
    "overlaps_h5": "karyoflow.readers.overlaps:read_overlaps_h5",
    "centromere_csv": "karyoflow.readers.centromeres:read_centromere_csv",
    "frames": "karyoflow.readers.frames:read_frames",
}


@dataclass
class IngestOutput:
    """A dataset's manifest (split) and its rejects table."""

    manifest: pd.DataFrame
    rejects: pd.DataFrame


def reader_for(kind: str) -> Callable[..., ReadResult]:
    """The reader function of a dataset kind."""
    try:
        module, func = READERS[kind].split(":")
    except KeyError:
        raise ValueError(f"unknown dataset kind {kind!r}; known: {sorted(READERS)}") from None
    return getattr(importlib.import_module(module), func)


def dedupe(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Keep the first record of each ``instance_id``; reject the others."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for rec in records:
        key = rec["instance_id"]
        if key in seen:
            rejects.append(Reject(rec["source"], f"duplicate id {key!r}"))
            continue
        seen.add(key)
        kept.append(rec)
    return kept, rejects


def ingest_dataset(
    name: str,
    entry: Mapping[str, Any],
    *,
    seed: int,
    split: Mapping[str, Any],
    strict: bool = False,
    fixed_splits: Mapping[str, str] | None = None,
    base_dir: str | Path = ".",
    log: Callable[[str], None] = print,
    rejects_path: str | Path | None = None,
) -> IngestOutput:
    """Read one dataset entry of the config and split it by cell.

    Parameters
    ----------
    name : str
        Dataset name (the key under ``datasets:`` in the config).
    entry : mapping
        ``{"kind": ..., "path": ..., "options": {...}}``, optionally ``split_as``
        (every cell goes to that split).
    seed : int
        Split seed.
    split : mapping
        ``{"fractions": {...}, "stratify": bool, "honour_preset": bool}``.
    strict : bool
        Raise :class:`~karyoflow.records.IngestError` (``"<file>: <reason>"``) on the
        first bad input instead of quarantining it.
    fixed_splits : mapping, optional
        Cell id -> split imposed by another dataset of the same cells.
    base_dir : path
        Relative dataset paths are resolved against it.
    log : callable
        Progress and reject messages go here.
    rejects_path : path, optional
        Where the rejects table goes when every input is rejected (there is no
        manifest then, and the error names this file).

    Raises
    ------
    IngestError
        In strict mode, on the first bad input.
    FileNotFoundError, ValueError
        The dataset path is missing, or the dataset yields no usable instance.
    """
    path = Path(entry["path"])
    if not path.is_absolute():
        path = Path(base_dir) / path
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset {name!r} not found")
    reader = reader_for(entry["kind"])
    log(f"[ingest] {name}: reading {entry['kind']} from {path}")
    result = reader(path, dataset=name, options=dict(entry.get("options") or {}))
    records, dup_rejects = dedupe(
        [normalise_record({**r, "dataset": name}) for r in result.records]
    )
    rejects = [*result.rejects, *dup_rejects]
    if strict and rejects:
        raise IngestError(rejects[0].message())
    for reject in rejects[:20]:
        log(f"[ingest] {name}: rejected {reject.message()}")
    if len(rejects) > 20:
        log(f"[ingest] {name}: ... and {len(rejects) - 20} more (see the rejects table)")
    if not records:
        where = ""
        if rejects_path is not None and rejects:
            write_rejects(rejects_frame(name, rejects), rejects_path)
            where = f"; the reasons are in {rejects_path}"
        raise ValueError(
            f"{path}: dataset {name!r} has no usable instances ({len(rejects)} rejected{where})"
        )
    split_as = entry.get("split_as")
    for rec in records:
        if not rec["cell_truth"] and rec["cell_id"] in result.cell_truth:
            rec["cell_truth"] = result.cell_truth[rec["cell_id"]]
        if not rec["cell_karyotype"] and rec["cell_id"] in result.cell_karyotype:
            rec["cell_karyotype"] = result.cell_karyotype[rec["cell_id"]]
        if split_as:
            rec["preset_split"] = split_as
    df = manifest_frame(records)
    df = split_manifest(
        df,
        split["fractions"],
        seed,
        stratify=bool(split.get("stratify", True)),
        honour_preset=bool(split.get("honour_preset", True)),
        fixed=fixed_splits,
    )
    log(
        f"[ingest] {name}: {len(df)} instances from {df['cell_id'].nunique()} cells, "
        f"{len(rejects)} rejected"
    )
    return IngestOutput(manifest=df, rejects=rejects_frame(name, rejects))
