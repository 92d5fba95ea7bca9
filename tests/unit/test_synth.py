"""Tests of the synthetic G-banded chromosome generator (karyoflow.synth)."""

from __future__ import annotations

import csv
import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from karyoflow.labels import LABELS
from karyoflow.synth.dataset import DEFAULT_PARAMS, resolve_params, synthesize
from karyoflow.synth.ideogram import load_ideogram
from karyoflow.synth.metaphase import compose_metaphase, iscn_karyotype, karyotype_labels
from karyoflow.synth.overlaps import make_overlap_pair, od_from_grey
from karyoflow.synth.render import (
    bend,
    render_chromosome,
    render_straight,
    rotate,
)

TINY = {
    "cells": 2,
    "canvas": [520, 520],
    "chr1_length_px": [60.0, 70.0],
    "width_px": [11.0, 13.0],
    "pairs": 5,
    "centromere_crops": 1,
    "abnormal_fraction": 0.5,
}


def polygon_iou(polygon: np.ndarray, mask: np.ndarray) -> float:
    raster = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(raster, [np.round(polygon).astype(np.int32)], 1)
    raster = raster.astype(bool)
    return float((raster & mask).sum() / (raster | mask).sum())


def straight(label: str = "1", seed: int = 0, length: float = 90, width: float = 16):
    ideo = load_ideogram()[label]
    return render_straight(ideo, length_px=length, width_px=width, rng=np.random.default_rng(seed))


# --- ideogram -------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [400, 550])
def test_ideogram_loads_24_chromosomes(resolution: int) -> None:
    ideo = load_ideogram(resolution)
    assert list(ideo) == list(LABELS)
    autosomes = [ideo[str(i)].length for i in range(1, 23)]
    assert max(autosomes) == ideo["1"].length
    assert ideo["21"].length < ideo["22"].length  # 21 is the smallest autosome
    assert ideo["X"].length > ideo["7"].length * 0.85
    assert ideo["Y"].length < ideo["X"].length
    assert 0.47 <= ideo["1"].centromere_index <= 0.51
    for acro in ("13", "14", "15"):
        assert ideo[acro].centromere_index < 0.22
    for chrom in ideo.values():
        assert chrom.bands[0].start == 0
        assert all(
            a.stop <= b.start + 1e-9 for a, b in zip(chrom.bands, chrom.bands[1:], strict=False)
        )


def test_ideogram_acrocentric_short_arms() -> None:
    ideo = load_ideogram(400)
    # the ISCN p arms of 21/22 include stalk and satellite; the euchromatic q arm dominates
    for acro in ("13", "14", "15"):
        assert ideo[acro].centromere_index < 0.22
    for acro in ("21", "22"):
        assert ideo[acro].centromere_index < 0.4
        assert any(b.stain == "stalk" for b in ideo[acro].bands)


def test_ideogram_rejects_unknown_resolution() -> None:
    with pytest.raises(ValueError, match="resolution"):
        load_ideogram(850)


# --- render ---------------------------------------------------------------------------


def test_render_straight_mask_polygon_consistent() -> None:
    chrom = straight()
    assert chrom.image.dtype == np.float32 and chrom.mask.dtype == bool
    assert chrom.image.shape == chrom.mask.shape
    assert 0.5 < float(chrom.image.max()) < 1.6
    assert polygon_iou(chrom.polygon, chrom.mask) >= 0.9
    # axis runs top to bottom, p-ter at the top
    assert chrom.axis[0, 1] < chrom.axis[-1, 1]
    rows = np.flatnonzero(chrom.mask.any(axis=1))
    assert abs(rows[0] - chrom.axis[0, 1]) <= 1 and abs(rows[-1] - chrom.axis[-1, 1]) <= 1


def test_render_straight_is_pure() -> None:
    a, b = straight(seed=3), straight(seed=3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, straight(seed=4).image)


@pytest.mark.parametrize("label", ["1", "7", "16"])
def test_centromere_on_narrowest_constriction(label: str) -> None:
    chrom = straight(label, length=100, width=18)
    widths = chrom.mask.sum(axis=1).astype(float)
    rows = np.flatnonzero(widths > 0)
    inner = rows[(rows > rows[0] + 12) & (rows < rows[-1] - 12)]  # skip rounded telomeres
    narrowest = inner[np.argmin(widths[inner])]
    cen_row = chrom.centromere[1]
    assert abs(narrowest - cen_row) <= 3
    assert widths[round(cen_row)] < 0.9 * np.median(widths[inner])


def test_band_profile_darker_in_gpos_bands() -> None:
    ideo = load_ideogram()["1"]
    chrom = straight("1", length=150, width=16)
    length = chrom.axis[-1, 1] - chrom.axis[0, 1]
    cx = round(chrom.axis[0, 0])
    dark, light = [], []
    for band in ideo.bands:
        if band.stop - band.start < 300:
            continue
        y = chrom.axis[0, 1] + (band.start + band.stop) / 2 / ideo.length * length
        value = float(chrom.image[round(y), cx - 3 : cx + 4].mean())
        if band.stain == "gpos" and band.density == 100:
            dark.append(value)
        elif band.stain == "gneg":
            light.append(value)
    assert np.mean(dark) > np.mean(light) + 0.2


def test_bend_zero_is_identity() -> None:
    chrom = straight()
    same = bend(chrom, 0.0)
    assert np.array_equal(same.image, chrom.image)
    assert np.array_equal(same.mask, chrom.mask)
    assert same.centromere == chrom.centromere
    assert np.array_equal(same.axis, chrom.axis)


@pytest.mark.parametrize("profile", ["arc", "kink", "s"])
def test_bend_keeps_area_length_and_mapping(profile: str) -> None:
    chrom = straight("2", length=100, width=14)
    bent = bend(chrom, np.pi / 2, rng=np.random.default_rng(0), profile=profile)
    assert abs(bent.mask.sum() / chrom.mask.sum() - 1) < 0.04
    assert abs(bent.length_px - chrom.length_px) < 1.5
    assert polygon_iou(bent.polygon, bent.mask) >= 0.9
    # the centromere stays on the axis, at the same arc length from p-ter
    seg = np.linalg.norm(np.diff(bent.axis, axis=0), axis=1)
    arc = np.concatenate([[0], np.cumsum(seg)])
    dist = np.linalg.norm(bent.axis - np.array(bent.centromere), axis=1)
    k = int(np.argmin(dist))
    assert dist[k] < 1.0
    assert abs(arc[k] - (chrom.centromere[1] - chrom.axis[0, 1])) < 1.5
    # total turning of the axis tangent equals the requested angle
    d = np.diff(bent.axis, axis=0)
    turn = np.abs(np.diff(np.unwrap(np.arctan2(d[:, 1], d[:, 0])))).sum()
    assert turn == pytest.approx(np.pi / 2, abs=0.08)

    # the band profile along the bent axis matches the straight one
    def profile_along(c):
        pts = c.axis[2:-2]
        return cv2.remap(
            c.image,
            pts[:, 0:1].astype(np.float32),
            pts[:, 1:2].astype(np.float32),
            cv2.INTER_LINEAR,
        ).ravel()

    a, b = profile_along(chrom), profile_along(bent)
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_rotate_consistent() -> None:
    chrom = straight("5", length=70, width=14)
    rot = rotate(chrom, 30.0)
    assert abs(rot.mask.sum() / chrom.mask.sum() - 1) < 0.04
    assert polygon_iou(rot.polygon, rot.mask) >= 0.9
    d = rot.axis[-1] - rot.axis[0]
    # counter-clockwise as displayed: the downward axis swings towards +x
    assert np.degrees(np.arctan2(d[0], d[1])) == pytest.approx(30.0, abs=1.0)
    cx, cy = (round(v) for v in rot.centromere)
    assert rot.mask[cy, cx]


def test_render_chromosome_label_and_mask() -> None:
    chrom = render_chromosome(
        "X", np.random.default_rng(7), px_per_unit=0.007, width_px=15, max_bend=1.0
    )
    assert chrom.label == "X" and chrom.mask.sum() > 200
    cx, cy = (round(v) for v in chrom.centromere)
    assert chrom.mask[cy, cx]


# --- karyotypes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "abnormality", "expected", "count"),
    [
        ("XX", None, "46,XX", 46),
        ("XY", None, "46,XY", 46),
        ("XY", "+21", "47,XY,+21", 47),
        ("XX", "+18", "47,XX,+18", 47),
        ("XY", "45,X", "45,X", 45),
        ("XX", "-X", "45,X", 45),
        ("XY", "+X", "47,XXY", 47),
        ("XX", "+X", "47,XXX", 47),
        ("XY", "+Y", "47,XYY", 47),
        ("XY", "+13,+21", "48,XY,+13,+21", 48),
        ("XX", "47,XY,+21", "47,XY,+21", 47),
    ],
)
def test_karyotypes(sex: str, abnormality: str | None, expected: str, count: int) -> None:
    labels = karyotype_labels(sex, abnormality)
    assert len(labels) == count
    assert iscn_karyotype(labels) == expected
    assert set(labels) <= set(LABELS)


def test_iscn_losses_and_order() -> None:
    labels = karyotype_labels("XY")
    labels.remove("7")
    labels += ["21", "X"]
    assert iscn_karyotype(labels) == "47,XXY,-7,+21"
    assert iscn_karyotype(["chrX", "Y", *[str(i) for i in range(1, 23)] * 2]) == "46,XY"


@pytest.mark.parametrize("bad", ["+23", "trisomy21", "+21,foo", "21", "++21", "46,XY,+21"])
def test_invalid_abnormality(bad: str) -> None:
    with pytest.raises(ValueError):
        karyotype_labels("XY", bad)


def test_invalid_sex() -> None:
    with pytest.raises(ValueError, match="sex"):
        karyotype_labels("XZ")


# --- metaphase --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metaphase():
    return compose_metaphase(
        karyotype_labels("XY", "+21"),
        np.random.default_rng(11),
        canvas=(640, 700),
        chr1_length_px=80,
        width_px=14,
        touch_prob=0.2,
        overlap_prob=0.15,
        nucleus_prob=1.0,
    )


def test_metaphase_image_looks_bright_field(metaphase) -> None:
    img = metaphase.image
    assert img.shape == (640, 700) and img.dtype == np.uint8
    assert 190 <= np.median(img) <= 245
    dark = np.zeros(img.shape, bool)
    for c, (x0, y0) in zip(metaphase.chromosomes, metaphase.offsets, strict=True):
        h, w = c.mask.shape
        dark[y0 : y0 + h, x0 : x0 + w] |= c.mask
    assert np.median(img[dark]) < np.median(img[~dark]) - 60


def test_metaphase_objects_valid(metaphase) -> None:
    h, w = metaphase.image.shape
    assert len(metaphase.objects) == 47
    assert metaphase.karyotype == "47,XY,+21"
    assert sorted(o["label"] for o in metaphase.objects) == sorted(metaphase.labels)
    for obj in metaphase.objects:
        x0, y0, x1, y1 = obj["bbox"]
        assert all(isinstance(v, int) for v in obj["bbox"])
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        poly = np.asarray(obj["polygon"])
        assert poly.shape[1] == 2 and len(poly) >= 3
        assert poly[:, 0].min() >= x0 and poly[:, 0].max() <= x1 - 1
        assert poly[:, 1].min() >= y0 and poly[:, 1].max() <= y1 - 1
        cx, cy = obj["centromere"]
        assert x0 - 1 <= cx <= x1 and y0 - 1 <= cy <= y1
    contacts = {o["contact"] for o in metaphase.objects}
    assert "overlap" in contacts or "touch" in contacts


def test_metaphase_deterministic() -> None:
    args = (karyotype_labels("XX"), (520, 520))
    a = compose_metaphase(args[0], np.random.default_rng(5), canvas=args[1])
    b = compose_metaphase(args[0], np.random.default_rng(5), canvas=args[1])
    assert np.array_equal(a.image, b.image) and a.objects == b.objects


# --- overlaps -----------------------------------------------------------------------------


def test_overlap_pair_labels() -> None:
    rng = np.random.default_rng(2)
    a = render_chromosome("3", rng, px_per_unit=0.004, width_px=8)
    b = render_chromosome("9", rng, px_per_unit=0.004, width_px=8)
    grey, labels = make_overlap_pair(a, b, rng, size=94)
    assert grey.shape == labels.shape == (94, 94)
    assert grey.dtype == labels.dtype == np.uint8
    counts = np.bincount(labels.ravel(), minlength=4)
    assert counts.size == 4 and (counts[1:] > 0).all()
    # the overlap is the darkest class; the background the lightest
    means = [grey[labels == k].mean() for k in range(4)]
    assert means[3] < min(means[1], means[2]) < means[0]


def test_overlap_pair_from_real_like_crops() -> None:
    rng = np.random.default_rng(0)
    crop = np.full((40, 14), 240, np.uint8)
    cv2.ellipse(crop, (7, 20), (5, 17), 0, 0, 360, 90, -1)
    od, mask = od_from_grey(crop)
    _grey, labels = make_overlap_pair((od, mask), (od, mask), rng, size=64)
    assert labels.shape == (64, 64)
    both = labels == 3
    assert both.any() and (labels == 1).any() and (labels == 2).any()


# --- dataset ------------------------------------------------------------------------------


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "a"
    messages: list[str] = []
    summary = synthesize(out, TINY, seed=1, progress=messages.append)
    assert messages
    return out, summary


def test_synthesize_writes_all_files(tiny_dataset) -> None:
    out, summary = tiny_dataset
    voc = out / "voc"
    for cell in ("cell_0000", "cell_0001"):
        assert (voc / "JPEGImages" / f"{cell}.png").is_file()
        assert (voc / "Annotations" / f"{cell}.xml").is_file()
        assert (voc / "masks" / f"{cell}.json").is_file()
    assert (out / "preview.png").is_file() and (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["cells"] == 2 and summary["pairs"] == 5 and summary["seed"] == 1
    assert sum(summary["objects_per_label"].values()) == summary["objects"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_synthesize_voc_parses(tiny_dataset) -> None:
    out, summary = tiny_dataset
    voc = out / "voc"
    total = 0
    truth = {
        row["filename"]: row["karyotype"] for row in csv.DictReader((voc / "karyotypes.csv").open())
    }
    assert len(truth) == 2
    for xml in sorted((voc / "Annotations").glob("*.xml")):
        root = ET.parse(xml).getroot()
        filename = root.findtext("filename")
        image = cv2.imread(str(voc / "JPEGImages" / filename), cv2.IMREAD_UNCHANGED)
        assert int(root.findtext("size/width")) == image.shape[1]
        assert int(root.findtext("size/height")) == image.shape[0]
        objects = root.findall("object")
        names = [o.findtext("name") for o in objects]
        assert set(names) <= set(LABELS)
        assert iscn_karyotype(names) == truth[filename]
        assert truth[filename] == summary["karyotypes"][xml.stem]
        masks = json.loads((voc / "masks" / f"{xml.stem}.json").read_text())
        assert masks["image"] == filename and len(masks["objects"]) == len(objects)
        for obj, meta in zip(objects, masks["objects"], strict=True):
            assert meta["name"] == obj.findtext("name")
            x0, y0, x1, y1 = (
                int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")
            )
            assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
            poly = np.asarray(meta["polygon"])
            assert poly[:, 0].min() >= x0 and poly[:, 0].max() < x1
        total += len(objects)
    assert total == summary["objects"]


def test_synthesize_overlaps_and_crops(tiny_dataset) -> None:
    out, summary = tiny_dataset
    with h5py.File(out / "overlaps" / "overlaps.h5", "r") as f:
        assert list(f) == ["pairs"]
        pairs = f["pairs"][()]
        assert json.loads(f["pairs"].attrs["params"])["pairs"] == 5
    assert pairs.shape == (5, 94, 94, 2) and pairs.dtype == np.uint8
    assert set(np.unique(pairs[..., 1])) == {0, 1, 2, 3}
    rows = list(csv.DictReader((out / "centromeres" / "centromeres.csv").open()))
    assert rows and list(rows[0]) == ["chr", "tel", "x", "y"]
    assert len(rows) == summary["centromere_crops"]
    for row in rows[:10]:
        crop = cv2.imread(str(out / "centromeres" / "crops" / row["chr"]), cv2.IMREAD_UNCHANGED)
        border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
        assert crop.ndim == 2 and np.median(border) > 200 and crop.min() < 150
        assert 0 <= float(row["x"]) < crop.shape[1] and 0 <= float(row["y"]) < crop.shape[0]
        assert row["tel"] == ""


def test_synthesize_deterministic(tiny_dataset, tmp_path) -> None:
    out, _ = tiny_dataset
    again = synthesize(tmp_path / "b", TINY, seed=1)
    assert tree_hashes(out) == tree_hashes(tmp_path / "b")
    assert again["karyotypes"]
    other = tmp_path / "c"
    synthesize(other, TINY, seed=2)
    a, c = tree_hashes(out), tree_hashes(other)
    assert a["voc/JPEGImages/cell_0000.png"] != c["voc/JPEGImages/cell_0000.png"]
    assert a["overlaps/overlaps.h5"] != c["overlaps/overlaps.h5"]


def test_synthesize_replaces_only_synth_output(tmp_path) -> None:
    params = {**TINY, "cells": 1, "pairs": 0, "centromere_crops": 0, "image_format": "jpg"}
    out = tmp_path / "out"
    synthesize(out, params, seed=0)
    assert (out / "voc" / "JPEGImages" / "cell_0000.jpg").is_file()
    synthesize(out, {**params, "image_format": "png"}, seed=0)  # previous output: replaced
    assert not (out / "voc" / "JPEGImages" / "cell_0000.jpg").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        synthesize(foreign, params, seed=0)
    assert (foreign / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    synthesize(empty, params, seed=0)
    assert (empty / "summary.json").is_file()


def test_synthesize_failure_leaves_nothing(tmp_path, monkeypatch) -> None:
    import karyoflow.synth.dataset as ds

    def boom(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ds, "_write_h5", boom)
    with pytest.raises(RuntimeError, match="boom"):
        synthesize(tmp_path / "out", {**TINY, "cells": 1}, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_resolve_params_validation() -> None:
    assert resolve_params({}) == resolve_params(DEFAULT_PARAMS)
    for bad in (
        {"cellz": 3},
        {"cells": 0},
        {"cells": 2.5},
        {"resolution": 300},
        {"width_px": [20, 10]},
        {"image_format": "tif"},
        {"abnormalities": ["+99"]},
        {"touch_prob": 0.8, "overlap_prob": 0.5},
        {"canvas": [100, 100]},
    ):
        with pytest.raises(ValueError):
            resolve_params(bad)
