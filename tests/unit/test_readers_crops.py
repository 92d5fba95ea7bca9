"""Unit tests for the crop-set reader on crafted folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from karyoflow.readers.crops import read_crops


def crop(path: Path, w: int = 12, h: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((h, w), 255, np.uint8)
    arr[5:-5, 3:-3] = 60
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, arr)
    else:
        Image.fromarray(arr).save(path, format={".jpg": "JPEG"}.get(path.suffix.lower()))
    return path


def labels(res) -> dict[str, str]:
    return {r["instance_id"]: r["label"] for r in res.records}


def test_class_folders_nested_karyograms(tmp_path: Path) -> None:
    for cell in ("k1.tiff", "k2.tiff"):
        for n, copy in ((1, 0), (1, 1), (23, 0), (24, 0)):
            crop(tmp_path / cell / f"clase{n}" / f"clase{n}_{copy}_{cell}")
    crop(tmp_path / "k1.tiff" / "clase25" / "clase25_0_k1.tiff")
    (tmp_path / "k1.tiff" / ".hidden").mkdir()
    crop(tmp_path / "k1.tiff" / ".hidden" / "x.tiff")
    res = read_crops(tmp_path, dataset="k", options={"preset": "karyograms"})
    assert len(res.records) == 8
    rec = res.records[0]
    assert rec["instance_id"] == "k1.tiff/clase1/clase1_0_k1.tiff"
    assert rec["cell_id"] == "k1.tiff" and rec["label"] == "1" and rec["kind"] == "crop"
    assert (rec["x0"], rec["y0"], rec["x1"], rec["y1"]) == (0, 0, 12, 30)
    assert (rec["image_width"], rec["image_height"]) == (12, 30)
    assert {r["label"] for r in res.records} == {"1", "X", "Y"}
    # the hidden folder is not read, but listed: nothing is skipped without a word
    assert sorted(r.reason for r in res.rejects) == ["hidden folder: not read",
                                                      "unknown label 'clase25'"]  # fmt: skip
    # the default (no preset) infers the cell from the folder above the class folder
    plain = read_crops(tmp_path, dataset="k", options={})
    assert {r["cell_id"] for r in plain.records} == {"k1.tiff", "k2.tiff"}


@pytest.mark.parametrize("folder", ["7", "clase7", "chr7", "C7"])
def test_class_folder_names(tmp_path: Path, folder: str) -> None:
    crop(tmp_path / folder / "a.png")
    crop(tmp_path / "X" / "b.png")
    crop(tmp_path / "24" / "c.png")
    res = read_crops(tmp_path, dataset="d", options={})
    assert sorted(r["label"] for r in res.records) == ["7", "X", "Y"]
    assert res.rejects == []
    # flat class folders: each crop is its own cell unless a regex says otherwise
    assert {r["cell_id"] for r in res.records} == {f"{folder}/a", "X/b", "24/c"}


def test_pampaj7_preset_and_label_crosscheck(tmp_path: Path) -> None:
    crop(tmp_path / "DataNew" / "3" / "3_2_56820_117657_1365442.tiff")
    crop(tmp_path / "DataNew" / "23" / "23_1_56820_117657_1365442.tiff")
    crop(tmp_path / "DataNew" / "4" / "5_1_56820_117657_1365443.tiff")
    crop(tmp_path / "DataNew" / "4" / "notes.tiff")
    res = read_crops(tmp_path, dataset="p", options={"preset": "pampaj7"})
    assert labels(res) == {
        "DataNew/23/23_1_56820_117657_1365442.tiff": "X",
        "DataNew/3/3_2_56820_117657_1365442.tiff": "3",
    }
    assert {r["cell_id"] for r in res.records} == {"1365442"}
    msgs = sorted(r.reason for r in res.rejects)
    assert msgs[0].startswith("file name does not match pattern preset 'pampaj7'")
    assert msgs[1] == "label in file name (5) differs from class folder '4' (4)"


def test_karyotype_gif_preset(tmp_path: Path) -> None:
    names = {
        "A123 .K.chr X.2.gif.gif": "X",
        "b7.k.CHR23.1.GIF": "X",
        "S-9.K.chr1.1.gif": "1",
        "S-9.K.chr22.2.gif": "22",
        "S-9.K.chry.1.gif": "Y",
        "S-9.K.chr24.1.png": "Y",
        "S.10.K.chr 5 .1 .gif": "5",
        # the public crops of Hu et al. 2019: text after the copy number
        "161923.054.K.chr1.1invert_pad.gif": "1",
        "161923.054.K.chr1.2invert_pad.gif": "1",
        "161923.054.K.chrX.1invert_pad.gif": "X",
        "161923.054.K.chr12.2_pad.gif": "12",
    }
    for name in names:
        crop(tmp_path / name)
    crop(tmp_path / "S-9.K.chr25.1.gif")
    crop(tmp_path / "random.gif")
    crop(tmp_path / "S-9.K.chr3.gif")  # no copy number
    crop(tmp_path / "S-9.K.chr3.x1.gif")  # text before it
    res = read_crops(
        tmp_path, dataset="g", options={"layout": "filename", "preset": "karyotype_gif"}
    )
    assert labels(res) == names
    cells = {r["instance_id"]: r["cell_id"] for r in res.records}
    assert cells["A123 .K.chr X.2.gif.gif"] == "A123"
    assert cells["b7.k.CHR23.1.GIF"] == "b7"
    assert cells["S.10.K.chr 5 .1 .gif"] == "S.10"
    assert cells["161923.054.K.chr1.1invert_pad.gif"] == "161923.054"
    assert sorted(r.reason.split(" (")[0] for r in res.rejects) == [
        *["file name does not match pattern preset 'karyotype_gif'"] * 3,
        "unknown label '25'",
    ]


def test_zero_based_preset(tmp_path: Path) -> None:
    for name in ("p1.0.tiff", "p1.21.tiff", "p1.22.tiff", "p1.23.tif", "p1.24.tiff"):
        crop(tmp_path / name)
    res = read_crops(tmp_path, dataset="z", options={"layout": "filename", "preset": "zero_based"})
    assert labels(res) == {
        "p1.0.tiff": "1",
        "p1.21.tiff": "22",
        "p1.22.tiff": "X",
        "p1.23.tif": "Y",
    }
    assert [r.reason for r in res.rejects] == ["unknown label '24'"]
    assert {r["cell_id"] for r in res.records} == {"p1"}


def test_karyonet_preset_and_cell_regex(tmp_path: Path) -> None:
    crop(tmp_path / "train" / "3" / "18-1473.0013_3_1292.jpg")
    crop(tmp_path / "val" / "cellA5" / "cellA_23_160.jpg")
    crop(tmp_path / "val" / "cellA5" / "cellA_9_1.jpg")
    train = read_crops(tmp_path, dataset="n", options={"subdir": "train", "preset": "karyonet"})
    assert labels(train) == {"train/3/18-1473.0013_3_1292.jpg": "3"}
    assert train.records[0]["cell_id"] == "18-1473.0013"
    val = read_crops(
        tmp_path / "val",
        dataset="n",
        options={"layout": "filename", "preset": "karyonet", "cell_regex": "first_folder"},
    )
    assert labels(val) == {"cellA5/cellA_23_160.jpg": "X", "cellA5/cellA_9_1.jpg": "9"}
    assert {r["cell_id"] for r in val.records} == {"cellA5"}


def test_custom_pattern(tmp_path: Path) -> None:
    crop(tmp_path / "cell9-lab17-c2.png")
    res = read_crops(
        tmp_path,
        dataset="c",
        options={
            "layout": "filename",
            "pattern": r"(?P<cell>cell\d+)-lab(?P<label>\d+)-c(?P<copy>\d)\.png",
        },
    )
    assert res.records[0]["label"] == "17" and res.records[0]["cell_id"] == "cell9"
    with pytest.raises(ValueError, match="label"):
        read_crops(tmp_path, dataset="c", options={"layout": "filename", "pattern": r".*"})
    with pytest.raises(ValueError, match="unknown preset"):
        read_crops(tmp_path, dataset="c", options={"preset": "nope"})


def test_bad_images_rejected(tmp_path: Path) -> None:
    good = crop(tmp_path / "1" / "good.png")
    bad = crop(tmp_path / "1" / "bad.png", w=60, h=60)
    bad.write_bytes(bad.read_bytes()[:-20])
    empty = tmp_path / "2" / "empty.jpg"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    loose = crop(tmp_path / "loose.png")
    res = read_crops(tmp_path, dataset="c", options={})
    assert [r["source"] for r in res.records] == [str(good)]
    got = {Path(r.source).name: r.reason for r in res.rejects}
    assert got["bad.png"].startswith("truncated image")
    assert got["empty.jpg"] == "empty file"
    assert got[loose.name] == "image is not inside a class folder"


def test_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images found"):
        read_crops(tmp_path, dataset="c", options={})
    with pytest.raises(FileNotFoundError):
        read_crops(tmp_path / "missing", dataset="c", options={})


def test_many_files_threaded_and_sorted(tmp_path: Path) -> None:
    for i in range(150):
        crop(tmp_path / str(i % 24 + 1) / f"c{i:03d}.tiff", w=5 + i % 7)
    res = read_crops(tmp_path, dataset="c", options={"workers": 3})
    assert len(res.records) == 150 and res.rejects == []
    sources = [r["source"] for r in res.records]
    assert sources == sorted(sources)
    for r in res.records:
        assert r["image_width"] == 5 + int(Path(r["source"]).stem[1:]) % 7
