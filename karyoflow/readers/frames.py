"""Unannotated microscope frames (e.g. fluorescence DAPI + Cy3 fields).

Each frame becomes one manifest row of kind ``frame`` covering the whole image, with a
second channel (``aux_source``) paired by name. Later rules cut single chromosomes out
of such frames (for overlapping-pair generation); no labels are known here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from karyoflow.readers._common import check_images, require_dir
from karyoflow.records import ReadResult, Reject, normalise_record

__all__ = ["read_frames"]


def read_frames(root: Path, *, dataset: str, options: Mapping[str, Any]) -> ReadResult:
    """Read a folder of frames, pairing each primary channel with its auxiliary one.

    Parameters
    ----------
    root : Path
        Folder holding the frames.
    dataset : str
        Dataset name.
    options : mapping
        ``primary_glob`` (default ``"*.tif*"``): frames to list; ``aux_replace``
        (default none): ``[old, new]`` turns a primary file name into its auxiliary
        channel's (``["DAPI", "Cy3"]``); ``cell_from`` (``"stem"`` or ``"folder"``,
        default ``"stem"`` with the ``aux_replace`` token removed).

    Returns
    -------
    ReadResult
        One record per readable primary frame; unreadable frames and missing
        auxiliary channels are rejected.
    """
    root = require_dir(Path(root))
    glob = str(options.get("primary_glob", "*.tif*"))
    replace = options.get("aux_replace")
    if replace is not None and (len(replace) != 2 or not all(replace)):
        raise ValueError(f"{root}: aux_replace must be [old, new], got {replace!r}")
    primaries = sorted(
        p for p in root.glob(glob) if p.is_file() and not (replace and replace[1] in p.name)
    )
    if not primaries:
        raise ValueError(f"{root}: no frames match {glob!r}")
    result = ReadResult()
    checked = check_images(primaries)
    for path, info in zip(primaries, checked, strict=True):
        if isinstance(info, str):
            result.rejects.append(Reject(str(path), info))
            continue
        aux = ""
        if replace:
            aux_path = path.with_name(path.name.replace(replace[0], replace[1]))
            aux_info = check_images([aux_path])[0] if aux_path.exists() else "missing"
            if isinstance(aux_info, str):
                reason = "auxiliary channel missing" if aux_info == "missing" else aux_info
                result.rejects.append(Reject(str(aux_path), reason))
                continue
            if aux_info != info:
                result.rejects.append(
                    Reject(str(aux_path), f"size {aux_info} differs from {path.name} {info}")
                )
                continue
            aux = str(aux_path.resolve())
        stem = path.stem.replace(replace[0], "").strip("_-. ") if replace else path.stem
        cell = root.name if options.get("cell_from") == "folder" else (stem or root.name)
        width, height = info
        result.records.append(
            normalise_record(
                {
                    "dataset": dataset,
                    "instance_id": path.relative_to(root).as_posix(),
                    "kind": "frame",
                    "source": str(path.resolve()),
                    "cell_id": cell,
                    "x1": width,
                    "y1": height,
                    "image_width": width,
                    "image_height": height,
                    "aux_source": aux,
                }
            )
        )
    return result
