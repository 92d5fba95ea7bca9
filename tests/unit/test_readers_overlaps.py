"""Unit tests for the overlapping-pairs HDF5 reader."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from karyoflow.readers.overlaps import read_overlaps_h5


def pairs(n: int = 5, h: int = 9, w: int = 8) -> np.ndarray:
    data = np.zeros((n, h, w, 2), np.uint8)
    data[..., 0] = 200
    data[:, 2:5, 2:5, 1] = 1
    data[:, 4:7, 3:6, 1] = 2
    data[:, 4, 3:5, 1] = 3
    return data


def test_reads_pairs_in_chunks_and_rejects_bad_labels(tmp_path: Path) -> None:
    data = pairs(7)
    data[2, 0, 0, 1] = 7
    data[6, 1, 1, 1] = 4
    with h5py.File(tmp_path / "pairs.h5", "w") as f:
        f.create_dataset("some/group/images", data=data)
        f.create_dataset("meta", data=np.arange(3))
    res = read_overlaps_h5(tmp_path, dataset="o", options={"chunk_size": 3})
    assert [r["frame"] for r in res.records] == [0, 1, 3, 4, 5]
    rec = res.records[0]
    assert rec["kind"] == "pair" and rec["instance_id"] == "pair/0" and rec["cell_id"] == "pair0"
    assert (rec["x1"], rec["y1"], rec["image_width"], rec["image_height"]) == (8, 9, 8, 9)
    assert rec["label"] == "" and rec["source"] == str((tmp_path / "pairs.h5").resolve())
    assert [(r.item, r.reason) for r in res.rejects] == [
        ("2", "label value 7 outside 0-3"),
        ("6", "label value 4 outside 0-3"),
    ]


def test_ambiguous_and_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("a", data=pairs(2))
        f.create_dataset("b", data=pairs(3))
    with pytest.raises(ValueError, match=r"more than one.*'?a'? \(2, 9, 8, 2\)") as info:
        read_overlaps_h5(path, dataset="o", options={})
    assert str(path) in str(info.value) and "b (3, 9, 8, 2)" in str(info.value)
    assert len(read_overlaps_h5(path, dataset="o", options={"key": "b"}).records) == 3
    none = tmp_path / "none.hdf5"
    with h5py.File(none, "w") as f:
        f.create_dataset("x", data=np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"no \(N, H, W, 2\) uint8 dataset.*x \(2, 3, 3\)"):
        read_overlaps_h5(none, dataset="o", options={})


def test_cell_ids_from_parallel_dataset_or_attr(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("pairs", data=pairs(3))
        ds.attrs["cells"] = np.array([b"c1", b"c1", b"c2"])
        f.create_dataset("cell_of_pair", data=np.array([10, 11, 12]))
        f.create_dataset("short", data=np.array([1]))
    res = read_overlaps_h5(path, dataset="o", options={"cells_attr": "cells"})
    assert [r["cell_id"] for r in res.records] == ["c1", "c1", "c2"]
    res = read_overlaps_h5(path, dataset="o", options={"cells_key": "cell_of_pair"})
    assert [r["cell_id"] for r in res.records] == ["10", "11", "12"]
    with pytest.raises(ValueError, match="1 cell ids for 3 pairs"):
        read_overlaps_h5(path, dataset="o", options={"cells_key": "short"})


def test_missing_and_not_hdf5(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no HDF5 file"):
        read_overlaps_h5(tmp_path, dataset="o", options={})
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        read_overlaps_h5(tmp_path, dataset="o", options={})
