"""Dataset-level ingest: quarantine vs strict, empty datasets, duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from karyoflow.ingest import dedupe, ingest_dataset, reader_for
from karyoflow.records import IngestError

SPLIT = {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}}


def _voc(root, stem, objects, size=(80, 60)):
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(exist_ok=True)
    w, h = size
    Image.fromarray(np.full((h, w), 230, np.uint8)).save(root / "JPEGImages" / f"{stem}.png")
    body = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    (root / "Annotations" / f"{stem}.xml").write_text(
        f"<annotation><filename>{stem}.png</filename><size><width>{w}</width>"
        f"<height>{h}</height><depth>1</depth></size>{body}</annotation>"
    )


def test_quarantine_and_strict(tmp_path):
    _voc(tmp_path, "a", [("A1", (1, 1, 20, 30)), ("Z", (1, 1, 20, 30))])
    _voc(tmp_path, "b", [("G22", (5, 5, 15, 25)), ("X", (50, 10, 40, 30))])
    entry = {"kind": "voc", "path": str(tmp_path)}
    messages = []
    out = ingest_dataset("d", entry, seed=0, split=SPLIT, log=messages.append)
    assert out.manifest["label"].tolist() == ["1", "22"]
    assert len(out.rejects) == 2
    assert any("rejected" in m and "unknown label" in m for m in messages)
    with pytest.raises(IngestError) as info:
        ingest_dataset("d", entry, seed=0, split=SPLIT, strict=True, log=messages.append)
    assert "a.xml" in str(info.value) and "\n" not in str(info.value)


def test_empty_dataset_is_an_error(tmp_path):
    _voc(tmp_path, "a", [("Q", (1, 1, 20, 30))])
    with pytest.raises(ValueError, match="no usable instances"):
        ingest_dataset("d", {"kind": "voc", "path": str(tmp_path)}, seed=0, split=SPLIT, log=print)
    with pytest.raises(FileNotFoundError, match="not found"):
        ingest_dataset("d", {"kind": "voc", "path": str(tmp_path / "x")}, seed=0, split=SPLIT)


def test_split_as_and_dedupe(tmp_path):
    _voc(tmp_path, "a", [("1", (1, 1, 20, 30))])
    entry = {"kind": "voc", "path": str(tmp_path), "split_as": "test"}
    out = ingest_dataset("d", entry, seed=0, split=SPLIT, log=lambda _m: None)
    assert set(out.manifest["split"]) == {"test"}
    kept, rejects = dedupe(
        [{"instance_id": "a", "source": "s1"}, {"instance_id": "a", "source": "s2"}]
    )
    assert len(kept) == 1 and rejects[0].reason == "duplicate id 'a'"


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown dataset kind"):
        reader_for("jpeg")
