"""Unit tests for the Pascal VOC reader on crafted datasets."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from karyoflow.readers.voc import read_truth_csv, read_voc, truth_from_counts

Box = tuple[str, int, int, int, int]


def write_voc(
    root: Path,
    image_id: str,
    boxes: list[Box],
    size: tuple[int, int] = (64, 48),
    xml_size: tuple[int, int] | None = None,
    ext: str = "png",
    xml_name: str | None = None,
) -> None:
    """One image (white, w x h) and its annotation XML."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    w, h = size
    Image.fromarray(np.full((h, w, 3), 255, np.uint8)).save(
        root / "JPEGImages" / f"{image_id}.{ext}"
    )
    xw, xh = xml_size or size
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in boxes
    )
    xml = (
        f"<annotation><filename>{image_id}.{ext}</filename><size><width>{xw}</width>"
        f"<height>{xh}</height><depth>3</depth></size>{objs}</annotation>"
    )
    (root / "Annotations" / (xml_name or f"{image_id}.xml")).write_text(xml)


def reasons(result) -> list[str]:
    return [r.reason for r in result.rejects]


def test_reads_boxes_and_labels(tmp_path: Path) -> None:
    write_voc(tmp_path, "b", [("A1", 1, 2, 10, 20), ("X", 5, 5, 30, 40)])
    write_voc(tmp_path, "a", [("chr7", 0, 0, 64, 48), ("22", 3, 3, 9, 9), ("C7", 1, 1, 2, 2)])
    res = read_voc(tmp_path, dataset="d", options={})
    assert res.rejects == []
    ids = [r["instance_id"] for r in res.records]
    assert ids == ["a/0", "a/1", "a/2", "b/0", "b/1"]
    assert [r["label"] for r in res.records] == ["7", "22", "7", "1", "X"]
    first = res.records[3]
    assert (first["x0"], first["y0"], first["x1"], first["y1"]) == (1, 2, 10, 20)
    assert first["kind"] == "metaphase" and first["cell_id"] == "b"
    assert (first["image_width"], first["image_height"]) == (64, 48)
    assert Path(first["source"]).is_absolute()
    assert first["dataset"] == "d" and first["group"] == "A"


def test_malformed_xml(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    (tmp_path / "Annotations" / "a.xml").write_text("<annotation><object>")
    res = read_voc(tmp_path, dataset="d", options={})
    assert res.records == []
    assert len(res.rejects) == 1 and res.rejects[0].reason.startswith("malformed XML:")


def test_xxe_external_entity_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    (tmp_path / "Annotations" / "a.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<annotation><object><name>&xxe;</name></object></annotation>"
    )
    res = read_voc(tmp_path, dataset="d", options={})
    assert res.records == []
    got = {Path(r.source).name: r.reason for r in res.rejects}
    assert got["a.xml"].startswith("unsafe XML:")
    assert got["secret.txt"] == "file not read (not named by the dataset's options)"
    assert not any("TOPSECRET" in r for r in reasons(res))


def test_billion_laughs_refused_fast(tmp_path: Path) -> None:
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    xml = f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(ents)}]><annotation>&lol9;</annotation>'
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    (tmp_path / "Annotations" / "a.xml").write_text(xml)
    tracemalloc.start()
    t0 = time.perf_counter()
    res = read_voc(tmp_path, dataset="d", options={})
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 50 * 2**20
    assert res.records == [] and reasons(res)[0].startswith("unsafe XML:")


def test_missing_image_and_missing_xml(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    write_voc(tmp_path, "b", [("1", 1, 1, 5, 5)])
    (tmp_path / "JPEGImages" / "a.png").unlink()
    (tmp_path / "Annotations" / "b.xml").unlink()
    res = read_voc(tmp_path, dataset="d", options={})
    assert res.records == []
    got = {(Path(r.source).name, r.reason) for r in res.rejects}
    assert got == {("a.xml", "annotation has no image"), ("b.png", "image has no annotation XML")}


def test_truncated_image_rejected(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)], size=(200, 200), ext="jpg")
    img = tmp_path / "JPEGImages" / "a.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(img)
    img.write_bytes(img.read_bytes()[:3000])
    res = read_voc(tmp_path, dataset="d", options={})
    assert res.records == []
    assert len(res.rejects) == 1 and res.rejects[0].reason.startswith("truncated image")
    assert res.rejects[0].source == str(img)


def test_box_rules(tmp_path: Path) -> None:
    boxes = [
        ("1", -2, 0, 10, 49),  # 2 px / 1 px out: clipped
        ("2", 10, 10, 10, 20),  # empty
        ("3", 20, 10, 5, 20),  # inverted
        ("4", 60, 10, 70, 20),  # 6 px out
        ("5", 100, 100, 120, 120),  # fully outside
        ("6", "1.5", 1, 5, 5),  # non-integer
        ("7", 1, 1, 5, 5),  # fine
    ]
    write_voc(tmp_path, "a", boxes)  # type: ignore[arg-type]
    # a missing coordinate
    xml = tmp_path / "Annotations" / "a.xml"
    xml.write_text(
        xml.read_text().replace(
            "</annotation>",
            "<object><name>8</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax>"
            "</bndbox></object></annotation>",
        )
    )
    res = read_voc(tmp_path, dataset="d", options={})
    assert [(r["label"], r["x0"], r["y0"], r["x1"], r["y1"]) for r in res.records] == [
        ("1", 0, 0, 10, 48),
        ("7", 1, 1, 5, 5),
    ]
    by_item = {r.item: r.reason for r in res.rejects}
    assert by_item["1"].startswith("empty or inverted box")
    assert by_item["2"].startswith("empty or inverted box")
    assert by_item["3"] == "box (60,10,70,20) outside image 64x48"
    assert by_item["4"].startswith("box (100,100,120,120) outside image")
    assert by_item["5"].startswith("non-integer box coordinate")
    assert by_item["7"] == "missing box coordinate"
    tight = read_voc(tmp_path, dataset="d", options={"box_tolerance": 0})
    assert [r["label"] for r in tight.records] == ["7"]


def test_unknown_label(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("Z", 1, 1, 5, 5), ("1", 1, 1, 5, 5), ("A7", 1, 1, 5, 5)])
    res = read_voc(tmp_path, dataset="d", options={})
    assert [r["instance_id"] for r in res.records] == ["a/1"]
    assert (res.rejects[0].item, res.rejects[0].reason) == ("0", "unknown label 'Z'")
    assert res.rejects[1].item == "2"


def test_duplicate_ids(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)], ext="jpg", xml_name="a.XML")
    res = read_voc(tmp_path, dataset="d", options={})
    dup = sorted(
        Path(r.source).name for r in res.rejects if r.reason.startswith("duplicate id 'a'")
    )
    assert dup == ["a.XML", "a.png"]  # a.jpg and a.xml are kept
    assert len(res.records) == 1 and res.records[0]["source"].endswith("a.jpg")


def test_size_mismatch(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)], xml_size=(65, 48))
    res = read_voc(tmp_path, dataset="d", options={})
    assert reasons(res) == ["size in XML (65x48) differs from image (64x48)"]
    trusted = read_voc(tmp_path, dataset="d", options={"trust_image_size": True})
    assert trusted.rejects == [] and trusted.records[0]["image_width"] == 64


def test_empty_dataset_raises(tmp_path: Path) -> None:
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations").mkdir()
    with pytest.raises(ValueError, match="no images"):
        read_voc(tmp_path, dataset="d", options={})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_voc(tmp_path / "nowhere", dataset="d", options={})


def test_ids_and_splits(tmp_path: Path) -> None:
    for i in "abcd":
        write_voc(tmp_path, i, [("1", 1, 1, 5, 5)])
    (tmp_path / "ids.txt").write_text("a\nb\nc.png\nzz\n")
    (tmp_path / "train.txt").write_text("a\nc\n")
    (tmp_path / "test.txt").write_text("b\nc\n")
    res = read_voc(tmp_path, dataset="d", options={"ids": "ids.txt"})
    assert {r["cell_id"]: r["preset_split"] for r in res.records} == {"a": "train", "b": "test"}
    msgs = sorted(r.reason for r in res.rejects)
    assert msgs == [
        "id 'c' listed in more than one split (test, train)",
        "listed id 'zz' has no image",
    ]
    custom = read_voc(tmp_path, dataset="d", options={"split_files": {"val": "train.txt"}})
    assert {r["cell_id"]: r["preset_split"] for r in custom.records} == {
        "a": "val",
        "b": "",
        "c": "val",
        "d": "",
    }


TAICHUNG_ROWS = [  # the real rows of taichung-voc-dev/number_abnormalities.csv
    ("103081", 47, "unknow", "47"),
    ("103092", 47, "X", "47,+X"),
    ("103131", 47, "12", "47,+12"),
    ("1052821", 47, "x", "47,+X"),
    ("1052521", 47, "21", "47,+21"),
    ("1052523", 47, "21", "47,+21"),
    ("1054072", 47, "Y", "47,+Y"),
    ("1055253", 47, "18", "47,+18"),
    ("1055742", 47, "18", "47,+18"),
    ("1056252", 44, "XX/XY", "44,XX/XY"),
    ("1091344", 45, "Y", "45,-Y"),
    ("1091345", 47, "X", "47,+X"),
    ("1091346", 45, "Y", "45,-Y"),
    ("1091421", 47, "X", "47,+X"),
    ("1091431", 45, "X", "45,X"),
    ("1091521", 45, "X", "45,X"),
    ("1091714", 47, "X", "47,+X"),
    ("1101021", 45, "X", "45,X"),
    ("1101022", 45, "", "45"),
    ("1101023", 45, "X", "45,X"),
    ("1101024", 45, "X", "45,X"),
    ("1101025", 45, "X", "45,X"),
    ("1101131", 47, "X", "47,+X"),
    ("1101133", 47, "X", "47,+X"),
    ("1101134", 47, "X", "47,+X"),
    ("1101135", 47, "X", "47,+X"),
    ("1101136", 47, "X", "47,+X"),
    ("1101141", 47, "X", "47,+X"),
    ("1101143", 47, "X", "47,+X"),
    ("1055911", 47, "21", "47,+21"),
    ("1055912", 46, "21", "46,21"),
    ("1055913", 46, "21", "46,21"),
    ("1055914", 46, "21", "46,21"),
    ("1091594", 46, "16", "46,16"),
    ("1101142", 46, "X", "46,X"),
    ("1101253", 46, "Y", "46,Y"),
]


@pytest.mark.parametrize(("image_id", "count", "desc", "expected"), TAICHUNG_ROWS)
def test_truth_from_counts_real_rows(image_id: str, count: int, desc: str, expected: str) -> None:
    assert truth_from_counts(count, desc) == expected


def test_truth_from_counts_other_cases() -> None:
    assert truth_from_counts(46, "") == "46"
    assert truth_from_counts(48, "21") == "48,+21,+21"
    assert truth_from_counts(45, "21") == "45,-21"
    assert truth_from_counts(46, "3,15", structural=True) == "46,3,15"
    assert truth_from_counts(45, "14", structural=True) == "45,14"


def test_truth_csv_formats_and_records(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    write_voc(tmp_path, "b", [("1", 1, 1, 5, 5)])
    write_voc(tmp_path, "c", [("1", 1, 1, 5, 5)])
    (tmp_path / "counts.csv").write_text(
        "filename,chromosome numbers,description\r\na.png,47,21\r\nb.png,4x,\r\n"
    )
    (tmp_path / "iscn.csv").write_text('filename,karyotype\nc.png,"47,XY,+21"\n')
    res = read_voc(tmp_path, dataset="d", options={"truth_csv": ["counts.csv", "iscn.csv"]})
    assert res.cell_truth == {"a": "47,+21", "c": "47,XY,+21"}
    assert {r["cell_id"]: r["cell_truth"] for r in res.records} == {
        "a": "47,+21",
        "b": "",
        "c": "47,XY,+21",
    }
    assert [(r.item, r.reason) for r in res.rejects] == [("3", "non-numeric chromosome count '4x'")]
    truth, rej = read_truth_csv(tmp_path / "iscn.csv")
    assert truth == {"c": "47,XY,+21"} and rej == []


def test_mask_sidecars(tmp_path: Path) -> None:
    write_voc(tmp_path, "a", [("1", 1, 1, 20, 20), ("X", 2, 2, 30, 30)])
    write_voc(tmp_path, "b", [("1", 1, 1, 20, 20)])
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.json").write_text(
        json.dumps(
            {
                "image": "a.png",
                "objects": [
                    {"index": 1, "name": "X", "polygon": [[2, 2], [29.123, 2], [29, 29.999]],
                     "centromere": [10.5, 11]},
                    {"index": 0, "name": "1", "polygon": [[1, 1], [19, 1], [19, 19]]},
                ],
            }
        )
    )  # fmt: skip
    (tmp_path / "masks" / "b.json").write_text(
        json.dumps({"objects": [{"index": 0, "name": "2", "polygon": [[1, 1], [2, 2], [3, 1]]}]})
    )
    res = read_voc(tmp_path, dataset="d", options={})
    recs = {r["instance_id"]: r for r in res.records}
    assert recs["a/1"]["polygon"] == "[[2.0,2.0],[29.12,2.0],[29.0,30.0]]"
    assert (recs["a/1"]["centromere_x"], recs["a/1"]["centromere_y"]) == (10.5, 11.0)
    assert recs["a/0"]["polygon"].startswith("[[1.0,1.0]")
    assert np.isnan(recs["a/0"]["centromere_x"])
    assert recs["b/0"]["polygon"] == ""  # sidecar rejected, object still emitted
    assert len(res.rejects) == 1 and res.rejects[0].source.endswith("b.json")
    assert res.rejects[0].reason.startswith("sidecar disagrees with XML")
    (tmp_path / "masks" / "zz.json").write_text("{}")
    res = read_voc(tmp_path, dataset="d", options={"masks_dir": "masks"})
    assert "sidecar has no image or annotation" in [r.reason for r in res.rejects]


def test_no_file_skipped_without_a_reject(tmp_path: Path) -> None:
    """Subfolders, dot files and other files of the image and annotation folders are
    listed in the rejects, each with its reason; the two good cells are read."""
    write_voc(tmp_path, "a", [("1", 1, 1, 5, 5)])
    write_voc(tmp_path / "nested", "b", [("2", 1, 1, 5, 5)])
    (tmp_path / "JPEGImages" / "more").mkdir()
    (tmp_path / "nested" / "JPEGImages" / "b.png").rename(
        tmp_path / "JPEGImages" / "more" / "b.png"
    )
    (tmp_path / "Annotations" / "more").mkdir()
    (tmp_path / "nested" / "Annotations" / "b.xml").rename(
        tmp_path / "Annotations" / "more" / "b.xml"
    )
    (tmp_path / "JPEGImages" / ".c.png").write_bytes(
        (tmp_path / "JPEGImages" / "a.png").read_bytes()
    )
    (tmp_path / "Annotations" / "._a.xml").write_text("<annotation/>")
    (tmp_path / "JPEGImages" / "notes.txt").write_text("x")
    (tmp_path / "JPEGImages" / ".git").mkdir()
    (tmp_path / "JPEGImages" / ".git" / "HEAD").write_text("x")
    res = read_voc(tmp_path, dataset="d", options={})
    assert [r["instance_id"] for r in res.records] == ["a/0"]
    got = {Path(r.source).relative_to(tmp_path).as_posix(): r.reason for r in res.rejects}
    assert got == {
        "JPEGImages/more/b.png": "in a subfolder of JPEGImages/: not read (image files lie "
        "directly in it)",
        "Annotations/more/b.xml": "in a subfolder of Annotations/: not read (VOC XML files "
        "lie directly in it)",
        "JPEGImages/.c.png": "hidden file: not read",
        "Annotations/._a.xml": "hidden file: not read",
        "JPEGImages/notes.txt": "not an image file (suffix .txt): not read",
        "JPEGImages/.git": "hidden folder: not read",
        "nested": "folder not read (not part of the VOC layout)",
    }


def test_all_rejected_still_writes_the_rejects_table(tmp_path: Path) -> None:
    from karyoflow.ingest import ingest_dataset

    write_voc(tmp_path / "d", "a", [("1", 1, 1, 5, 5)])
    (tmp_path / "d" / "JPEGImages" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    table = tmp_path / "logs" / "d.rejected.csv"
    with pytest.raises(
        ValueError, match=f"no usable instances \\(1 rejected; the reasons are in {table}"
    ):
        ingest_dataset("d", {"kind": "voc", "path": str(tmp_path / "d")}, seed=0,
                       split={"fractions": {"train": 1.0}}, log=lambda _m: None,
                       rejects_path=table)  # fmt: skip
    import pandas as pd

    rows = pd.read_csv(table)
    assert len(rows) == 1 and rows["reason"].iloc[0].startswith("truncated image")
