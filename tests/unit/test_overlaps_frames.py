"""Chromosomes cut out of unannotated frames as pair sources
(karyoflow.tasks.segmentation.frames)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from karyoflow.tasks.segmentation.frames import (
    assign_by_fraction,
    frame_chromosomes,
    frame_sources,
    resolve_frames_params,
    scale_frame,
)
from karyoflow.tasks.segmentation.task import load_pairs, run_make_overlaps


def _frame(seed: int, n: int = 10) -> np.ndarray:
    """A 16-bit fluorescence-like field: ``n`` bright bars in a grid, plus three
    objects to reject: an L (two touching), a bar cut by the edge, a speck."""
    rng = np.random.default_rng(seed)
    img = np.full((260, 400), 300, np.uint16)
    for k in range(n):
        y, x = 20 + 70 * (k // 5), 20 + 60 * (k % 5)
        length = int(rng.integers(30, 55))
        img[y : y + length, x : x + 12] = int(rng.integers(1500, 2500))
    img[230:242, 20:80] = 1800  # the L
    img[200:242, 20:32] = 1800
    img[200:250, 388:400] = 2000  # at the right edge
    img[215:218, 200:203] = 2000  # debris
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def test_frame_chromosomes_keeps_isolated_ones_and_says_why_not():
    found = frame_chromosomes(scale_frame(_frame(0), 128), detect={"background_radius": 40})
    kept = [c for c in found if not c.reason]
    assert len(kept) == 10
    reasons = sorted(c.reason.split(" ")[0] for c in found if c.reason)
    assert reasons == ["solidity", "touches"]  # (the speck is below the detector's size)
    for c in kept:
        assert c.mask is not None and c.od is not None
        assert c.mask.shape == c.od.shape == (c.box[3] - c.box[1], c.box[2] - c.box[0])
        assert c.area == int(c.mask.sum()) and (c.od[~c.mask] == 0).all() and c.od.max() > 0.1


def test_scale_frame_leaves_headroom():
    g = scale_frame(_frame(0), 128)
    assert g.dtype == np.uint8 and g.max() <= 130 and np.median(g) < 10


def test_assign_by_fraction_exact_and_seeded():
    ids = [f"f/chr{i:03d}" for i in range(40)]
    a = assign_by_fraction(ids, [0.6, 0.1, 0.3], 1)
    assert [a.count(s) for s in ("train", "val", "test")] == [24, 4, 12]
    assert a == assign_by_fraction(ids, [0.6, 0.1, 0.3], 1)
    assert a != assign_by_fraction(ids, [0.6, 0.1, 0.3], 2)
    with pytest.raises(ValueError, match="fractions must be three shares"):
        resolve_frames_params({"fractions": [0.6, 0.1, 0.2]})


def _frames_manifest(tmp_path, splits=("train", "test")):
    rows = []
    for i, split in enumerate(splits):
        path = tmp_path / f"f{i}_DAPI.tif"
        cv2.imwrite(str(path), _frame(i))
        rows.append(
            {
                "dataset": "fr",
                "instance_id": path.name,
                "kind": "frame",
                "source": str(path),
                "frame": -1,
                "cell_id": f"f{i}",
                "x0": 0,
                "y0": 0,
                "x1": 400,
                "y1": 260,
                "split": split,
            }
        )
    manifest = tmp_path / "m.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    return manifest


def _outputs(folder):
    outs = {s: folder / f"{s}.h5" for s in ("train", "val", "test")}
    return {**outs, "preview": folder / "preview.png", "summary": folder / "summary.json"}


PARAMS = {
    "size": 48,
    "downsample": 1.5,
    "min_overlap": 6,
    "polarity": "light_on_dark",
    "invert": True,
    "combine": "additive",
    "background": [240, 250],
    "frames": {"peak": 128, "detect": {"background_radius": 40}},
}


def test_make_overlaps_from_frames_by_chromosome(tmp_path):
    manifest = _frames_manifest(tmp_path)
    kw = {
        "dataset": "fr",
        "kind": "frames",
        "manifest": manifest,
        "counts": {"train": 12, "val": 4, "test": 6},
        "params": {**PARAMS, "pair_within": "split"},  # (val: one chromosome per frame)
    }
    summary = run_make_overlaps(**kw, seed=3, outputs=_outputs(tmp_path / "a"), log=print)
    run_make_overlaps(**kw, seed=3, outputs=_outputs(tmp_path / "b"), log=lambda m: None)
    for split in ("train", "val", "test"):  # deterministic
        assert (tmp_path / "a" / f"{split}.h5").read_bytes() == (
            tmp_path / "b" / f"{split}.h5"
        ).read_bytes()
    objects = summary["frame_objects"]
    kept = [o for o in objects if "split" in o]
    assert len(kept) == 20 and len(objects) == 24  # 2 frames x (10 kept + L + edge)
    assert all("reason" in o for o in objects if "split" not in o)
    split_of = {o["instance_id"]: o["split"] for o in kept}
    # each frame's chromosomes divided 60/10/30, whatever the frame's own split
    for f in ("f0_DAPI.tif", "f1_DAPI.tif"):
        mine = [s for i, s in split_of.items() if i.startswith(f)]
        assert [mine.count(s) for s in ("train", "val", "test")] == [6, 1, 3]
    seen: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        with __import__("h5py").File(tmp_path / "a" / f"{split}.h5") as h5:
            ids = {i.decode() for i in h5["instance_ids"][()].ravel()}
        assert {split_of[i] for i in ids} == {split}  # no chromosome in two splits
        seen[split] = ids
    grey, labels, cells = load_pairs(tmp_path / "a" / "test.h5")
    assert grey.shape == (6, 48, 48) and set(cells) <= {"f0", "f1", "f0+f1"}
    # fluorescence: dark field, the overlap brighter than either chromosome alone
    for g, lab in zip(grey, labels, strict=True):
        assert g[lab == 0].mean() < 20
        assert g[lab == 3].mean() > max(g[lab == 1].mean(), g[lab == 2].mean()) + 20
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["frame_objects"] == objects


def test_make_overlaps_from_frames_by_cell(tmp_path):
    manifest = _frames_manifest(tmp_path, splits=("train", "test"))
    params = {**PARAMS, "frames": {**PARAMS["frames"], "split_by": "cell"}}
    run_make_overlaps(
        dataset="fr",
        kind="frames",
        manifest=manifest,
        counts={"train": 5, "val": 0, "test": 5},
        params=params,
        seed=0,
        outputs=_outputs(tmp_path / "o"),
        log=lambda m: None,
    )
    assert set(load_pairs(tmp_path / "o" / "train.h5")[2]) == {"f0"}
    assert set(load_pairs(tmp_path / "o" / "test.h5")[2]) == {"f1"}


def test_frames_without_frame_rows_is_an_error(tmp_path):
    manifest = tmp_path / "m.parquet"
    pd.DataFrame({"kind": ["crop"], "split": ["train"], "instance_id": ["x"]}).to_parquet(manifest)
    with pytest.raises(ValueError, match="no frame rows"):
        run_make_overlaps(
            dataset="fr",
            kind="frames",
            manifest=manifest,
            counts={"train": 1},
            params=PARAMS,
            seed=0,
            outputs=_outputs(tmp_path / "o"),
            log=lambda m: None,
        )


def test_frame_sources_rows_are_pair_sources(tmp_path):
    manifest = _frames_manifest(tmp_path, splits=("val",))
    frames = pd.read_parquet(manifest)
    rows, precut, objects = frame_sources(frames, resolve_frames_params(PARAMS["frames"]), 0)
    assert len(rows) == len(precut) == 10 and set(rows["instance_id"]) == set(precut)
    assert sorted(o["split"] for o in objects if "split" in o) == ["test"] * 3 + ["train"] * 6 + [
        "val"
    ]
    assert (rows["kind"] == "metaphase").all() and (rows["cell_id"] == "f0").all()
    assert ((rows["x1"] > rows["x0"]) & (rows["y1"] > rows["y0"])).all()
