"""Unit tests for the centromere CSV reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from karyoflow.readers.centromeres import read_centromere_csv


def img(path: Path, w: int = 20, h: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w), 250, np.uint8)).save(path)


def test_reads_rows_with_preset_labels(tmp_path: Path) -> None:
    img(tmp_path / "crops" / "c1.K.chr7.1.png")
    img(tmp_path / "crops" / "c1.K.chrX.1.png")
    img(tmp_path / "crops" / "c1.K.chr7.1.tel.png")
    (tmp_path / "centromeres.csv").write_text(
        "chr,tel,x,y\nc1.K.chrX.1.png,,4.5,10\nc1.K.chr7.1.png,c1.K.chr7.1.tel.png,10,20.25\n"
    )
    res = read_centromere_csv(tmp_path, dataset="c", options={"label_preset": "karyotype_gif"})
    assert res.rejects == []
    first, second = res.records
    assert first["label"] == "7" and first["kind"] == "centromere"
    assert (first["centromere_x"], first["centromere_y"]) == (10.0, 20.25)
    assert first["aux_source"].endswith("c1.K.chr7.1.tel.png")
    assert (first["x1"], first["y1"], first["image_width"]) == (20, 40, 20)
    assert first["cell_id"] == "c1" and first["instance_id"] == "crops/c1.K.chr7.1.png"
    assert second["label"] == "X" and second["aux_source"] == ""


def test_bad_rows_rejected(tmp_path: Path) -> None:
    img(tmp_path / "a.png")
    for name in ("b.png", "c.png", "d.png"):
        img(tmp_path / name)
    img(tmp_path / "small.png", w=5, h=5)
    (tmp_path / "trunc.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (tmp_path / "points.csv").write_text(
        "chr,tel,x,y\n"
        "a.png,,3,4\n"  # 2 ok
        "b.png,,abc,4\n"  # 3 non-numeric
        "b.png,,nan,4\n"  # 4 non-numeric
        "missing.png,,1,1\n"  # 5 missing image
        "b.png,,21,3\n"  # 6 outside (width 20)
        "a.png,,1,1\n"  # 7 duplicate
        "trunc.png,,1,1\n"  # 8 unreadable
        "c.png,nope.png,1,1\n"  # 9 missing tel
        "d.png,small.png,1,1\n"  # 10 tel of another size
        "\n"
        ",,1,1\n"  # 12 empty name
    )
    res = read_centromere_csv(tmp_path, dataset="c", options={})
    assert [r["instance_id"] for r in res.records] == ["a.png"]
    assert res.records[0]["label"] == "" and res.records[0]["cell_id"] == "a"
    got = {r.item: r.reason for r in res.rejects}
    assert got["3"] == "non-numeric centromere ('abc', '4')"
    assert got["4"].startswith("non-numeric centromere")
    assert got["5"] == "image not found: missing.png"
    assert got["6"] == "centromere (21, 3) outside image 20x40"
    assert got["7"] == "duplicate row for image a.png"
    assert got["8"].startswith("trunc.png: truncated image")
    assert got["9"] == "tel image not found: nope.png"
    assert got["10"] == "tel image 5x5 differs from 20x40"
    assert got["12"] == "empty chr (image) column"
    assert len(res.rejects) == 9
    assert all(r.source == str(tmp_path / "points.csv") for r in res.rejects)


def test_missing_header(tmp_path: Path) -> None:
    img(tmp_path / "a.png")
    (tmp_path / "c.csv").write_text("a.png,,3,4\n")
    res = read_centromere_csv(tmp_path, dataset="c", options={})
    assert res.records == []
    assert res.rejects[0].item == "1" and res.rejects[0].reason.startswith("missing header")


def test_pattern_mismatch_and_unknown_label(tmp_path: Path) -> None:
    img(tmp_path / "img" / "c.K.chr30.1.png")
    img(tmp_path / "img" / "whatever.png")
    (tmp_path / "c.csv").write_text("chr,x,y\nc.K.chr30.1.png,1,1\nwhatever.png,1,1\n")
    res = read_centromere_csv(
        tmp_path / "c.csv",
        dataset="c",
        options={"images_dir": "img", "label_preset": "karyotype_gif"},
    )
    assert res.records == []
    got = {r.item: r.reason for r in res.rejects}
    assert got["2"] == "unknown label '30'"
    assert got["3"].startswith("file name does not match pattern")
