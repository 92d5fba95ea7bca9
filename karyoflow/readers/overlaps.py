"""The public overlapping-chromosome-pairs HDF5 file.

One dataset of shape ``(N, H, W, 2)`` ``uint8``: grey image in channel 0, labels in
channel 1 (0 background, 1 first chromosome, 2 second, 3 overlap).

Options
-------
file : str, optional
    The HDF5 file relative to root (or absolute). Default: ``root`` itself if it is a
    file, else the only ``*.h5``/``*.hdf5``/``*.hdf`` file in ``root``.
key : str, optional
    Dataset path inside the file. Default: auto-detected (the only 4-D ``uint8``
    dataset whose last dimension is 2).
cells_key : str, optional
    A parallel 1-D dataset of length N giving each pair's cell id.
cells_attr : str, optional
    An attribute of the image dataset (length-N array) giving each pair's cell id.
chunk_size : int, default 1024
    Pairs read per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from karyoflow.readers._common import require_dir, resolve_under
from karyoflow.records import ReadResult, Reject, normalise_record

__all__ = ["find_pairs_key", "read_overlaps_h5"]

_H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def find_pairs_key(h5: h5py.File) -> str:
    """The path of the only ``(N, H, W, 2)`` ``uint8`` dataset in ``h5``.

    Raises
    ------
    ValueError
        None or more than one candidate; the message lists every dataset found.
    """
    found: list[str] = []
    candidates: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append(f"{name} {obj.shape} {obj.dtype}")
            if obj.ndim == 4 and obj.shape[-1] == 2 and obj.dtype == np.uint8:
                candidates.append(name)

    h5.visititems(visit)
    if len(candidates) == 1:
        return candidates[0]
    what = "no" if not candidates else "more than one"
    raise ValueError(
        f"{h5.filename}: {what} (N, H, W, 2) uint8 dataset; datasets found: "
        f"{found or 'none'}; set option 'key'"
    )


def _locate(root: Path, options: Mapping[str, Any]) -> Path:
    if options.get("file"):
        path = resolve_under(root, options["file"]) if root.is_dir() else Path(options["file"])
        if not path.is_file():
            raise FileNotFoundError(f"HDF5 file not found: {path}")
        return path.resolve()
    if root.is_file():
        return root
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in _H5_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no HDF5 file (*.h5, *.hdf5) in {root}")
    if len(files) > 1:
        raise ValueError(
            f"several HDF5 files in {root}: {[p.name for p in files]}; set option 'file'"
        )
    return files[0]


def _cells(
    h5: h5py.File, data: h5py.Dataset, options: Mapping[str, Any], path: Path
) -> list[str] | None:
    values: Any = None
    if options.get("cells_key"):
        key = options["cells_key"]
        if key not in h5:
            raise ValueError(f"{path}: cells_key {key!r} not in file")
        values = h5[key][()]
    elif options.get("cells_attr"):
        attr = options["cells_attr"]
        if attr not in data.attrs:
            raise ValueError(f"{path}: attribute {attr!r} not on dataset {data.name}")
        values = data.attrs[attr]
    if values is None:
        return None
    values = np.asarray(values).reshape(-1)
    if len(values) != data.shape[0]:
        raise ValueError(f"{path}: {len(values)} cell ids for {data.shape[0]} pairs")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]


def read_overlaps_h5(root: Path, *, dataset: str, options: Mapping[str, Any]) -> ReadResult:
    """Read the overlapping-pairs HDF5 file, one ``kind="pair"`` record per pair.

    ``root``: the HDF5 file, or the folder holding it; ``dataset`` and ``options`` as
    for every reader (:mod:`karyoflow.readers`, options: the module docstring).

    Returns
    -------
    ReadResult
        Records with ``frame`` = pair index, ``instance_id`` ``"pair/<i>"``,
        ``cell_id`` ``"pair<i>"`` (or from ``cells_key``/``cells_attr``), bbox the
        whole frame, label ``""``; a pair whose labels exceed 3 is rejected.

    Raises
    ------
    FileNotFoundError
        No HDF5 file.
    ValueError
        Unreadable file, no/ambiguous pairs dataset, wrong shape, empty dataset, or
        cell ids that do not match the pairs.
    """
    root = require_dir(Path(root))
    path = _locate(root, options)
    src = str(path)
    chunk = max(1, int(options.get("chunk_size", 1024)))
    result = ReadResult()
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with h5:
        key = options.get("key") or find_pairs_key(h5)
        if key not in h5 or not isinstance(h5[key], h5py.Dataset):
            raise ValueError(f"{path}: no dataset {key!r}; keys: {list(h5.keys())}")
        data = h5[key]
        if data.ndim != 4 or data.shape[-1] != 2 or data.dtype != np.uint8:
            raise ValueError(
                f"{path}: dataset {key!r} is {data.shape} {data.dtype}, expected (N, H, W, 2) uint8"
            )
        n, height, width = (int(v) for v in data.shape[:3])
        if n == 0:
            raise ValueError(f"{path}: dataset {key!r} holds no pairs")
        cells = _cells(h5, data, options, path)
        for start in range(0, n, chunk):
            labels = np.asarray(data[start : start + chunk, :, :, 1])
            maxima = labels.reshape(labels.shape[0], -1).max(axis=1)
            for offset, top in enumerate(maxima.tolist()):
                i = start + offset
                if top > 3:
                    result.rejects.append(Reject(src, f"label value {top} outside 0-3", str(i)))
                    continue
                result.records.append(
                    normalise_record(
                        {
                            "dataset": dataset,
                            "instance_id": f"pair/{i}",
                            "kind": "pair",
                            "source": src,
                            "frame": i,
                            "cell_id": cells[i] if cells is not None else f"pair{i}",
                            "x0": 0,
                            "y0": 0,
                            "x1": width,
                            "y1": height,
                            "image_width": width,
                            "image_height": height,
                            "label": "",
                        }
                    )
                )
    return result
