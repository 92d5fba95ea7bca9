"""Readers on the real datasets (``../shared/data``); see tests/data/conftest.py."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from karyoflow.imageio import read_image
from karyoflow.labels import LABELS
from karyoflow.readers import read_crops, read_voc, truth_from_counts

pytestmark = pytest.mark.realdata

TAICHUNG_TRUTH = ["normal.csv", "number_abnormalities.csv", "structural_abnormalities.csv"]


def test_taichung_voc(real_data: Path) -> None:
    root = real_data / "taichung-voc-dev"
    res = read_voc(
        root, dataset="taichung", options={"ids": "ids.txt", "truth_csv": TAICHUNG_TRUTH}
    )
    assert res.rejects == []
    assert len({r["cell_id"] for r in res.records}) == 447
    assert len(res.records) == 20563
    assert set(Counter(r["label"] for r in res.records)) == set(LABELS)
    assert all(r["x1"] <= r["image_width"] and r["y1"] <= r["image_height"] for r in res.records)
    assert all(r["x0"] >= 0 and r["y0"] >= 0 for r in res.records)
    assert len(res.cell_truth) == 447
    with (root / "number_abnormalities.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert len(rows) == 36
    for name, count, desc in rows:
        cell = Path(name).stem
        truth = res.cell_truth[cell]
        assert truth == truth_from_counts(int(count), desc)
        assert truth.split(",")[0] == count
    assert res.cell_truth["1052521"] == "47,+21"
    assert res.cell_truth["1091431"] == "45,X"
    assert res.cell_truth["103092"] == "47,+X"
    assert res.cell_truth["103064"] == "46"
    one = [r for r in res.records if r["cell_id"] == "1052521"]
    assert all(r["cell_truth"] == "47,+21" for r in one)


def test_karyograms_612_half(real_data: Path) -> None:
    res = read_crops(
        real_data / "karyograms-612-half", dataset="k612", options={"preset": "karyograms"}
    )
    # no clase25 in this half: it would show up as "unknown label 'clase25'" rejects
    assert res.rejects == []
    assert len(res.records) == 14072
    cells = Counter(r["cell_id"] for r in res.records)
    assert len(cells) == 306
    assert set(cells.values()) <= {45, 46, 47}
    assert len({r["cell_id"] for r in res.records if r["label"] == "Y"}) == 152


def test_pampaj7_malformed_tiffs(real_data: Path) -> None:
    root = real_data / "pampaj7-datanew"
    res = read_crops(root, dataset="pampaj7", options={"preset": "pampaj7"})
    assert res.rejects == []
    assert len(res.records) == 2806
    assert len({r["cell_id"] for r in res.records}) == 65
    assert {r["label"] for r in res.records} == set(LABELS)
    for rec in res.records[::7]:  # every 7th: decoded content looks like a chromosome
        arr = read_image(rec["source"])
        assert arr.dtype == np.uint8 and arr.shape == (rec["image_height"], rec["image_width"])
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        assert (border > 200).mean() > 0.5
        assert (arr < 150).any()


@pytest.mark.parametrize("band", ["Gband", "Rband"])
def test_karyonet_sample(real_data: Path, band: str) -> None:
    base = real_data / "karyonet-sample" / band
    train = read_crops(base / "train", dataset="kn", options={"preset": "karyonet"})
    val = read_crops(
        base / "val",
        dataset="kn",
        options={"layout": "filename", "preset": "karyonet", "cell_regex": "first_folder"},
    )
    assert train.rejects == [] and val.rejects == []
    assert len(train.records) == 184 and len(val.records) == 46
    assert {r["label"] for r in train.records} == set(LABELS)
    assert all(r["label"] in LABELS for r in val.records)
    assert len({r["cell_id"] for r in val.records}) == 1


@pytest.mark.parametrize("name", ["DAPI.tif", "Cy3.tif"])
def test_dapi_cy3_16bit(real_data: Path, name: str) -> None:
    arr = read_image(real_data / "pommier-dapi-cy3" / name)
    assert arr.dtype == np.uint16
    assert arr.shape == (1024, 1536)
    assert 0 < arr.max() < 4096  # 12-bit data
