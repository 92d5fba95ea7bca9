"""The preprocessing chain, shards and merged HDF5 files on a tiny synthetic set."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from karyoflow.ingest import ingest_dataset
from karyoflow.labels import LABELS
from karyoflow.preprocess.chain import (
    DEFAULT_PARAMS,
    ShardData,
    preprocess_instance,
    preprocess_rows,
    resolve_params,
)
from karyoflow.preprocess.h5io import merge_shards, read_shard, write_shard
from karyoflow.preprocess.qc import contact_sheet, qc_sheet_for_manifest
from karyoflow.preprocess.sharding import eligible_rows
from karyoflow.synth.dataset import synthesize

PARAMS = {"augment": {"copies": 2}, "sizes": {"96x48": [96, 48], "64": [64, 64]}}
SIZES = {"96x48": (96, 48), "64": (64, 64)}


def quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("synth")
    synthesize(tmp / "s", {"cells": 2, "pairs": 0, "centromere_crops": 1}, seed=1)
    manifest = ingest_dataset(
        "v",
        {"kind": "voc", "path": str(tmp / "s" / "voc")},
        seed=0,
        split={"fractions": {"train": 0.5, "test": 0.5}},
        log=quiet,
    ).manifest
    df = eligible_rows(manifest)
    # 10 chromosomes per cell keep the tests fast
    return df.groupby("source", sort=True).head(10).reset_index(drop=True)


@pytest.fixture(scope="module")
def shard(rows: pd.DataFrame) -> ShardData:
    return preprocess_rows(rows, PARAMS, seed=3, log=quiet)


# --------------------------------------------------------------------------- params


def test_resolve_params_merges_and_rejects_unknown_keys() -> None:
    p = resolve_params({"clahe": {"clip_limit": 3.0}, "straighten": {"method": "projection"}})
    assert p["clahe"] == {**DEFAULT_PARAMS["clahe"], "clip_limit": 3.0}
    assert p["straighten"]["method"] == "projection"
    assert p["denoise"] == DEFAULT_PARAMS["denoise"]
    with pytest.raises(ValueError, match=r"'denoise\.strength'"):
        resolve_params({"denoise": {"strength": 3}})
    with pytest.raises(ValueError, match="'blur'"):
        resolve_params({"blur": {}})
    with pytest.raises(ValueError, match=r"straighten\.method"):
        resolve_params({"straighten": {"method": "spline"}})
    with pytest.raises(ValueError, match="sizes"):
        resolve_params({"sizes": {"bad": [0, 4]}})
    assert set(resolve_params({"sizes": {"a": [8, 8]}})["sizes"]) == {"a"}
    assert resolve_params(None) == resolve_params({})


# --------------------------------------------------------------------------- one instance


def test_preprocess_instance_on_synthetic_rows(rows: pd.DataFrame) -> None:
    from karyoflow.imageio import read_image

    row = rows.iloc[0].to_dict()
    res = preprocess_instance(read_image(row["source"]), row, PARAMS)
    assert res.status == "ok"
    assert {k: v.shape for k, v in res.images.items()} == {"96x48": (96, 48), "64": (64, 64)}
    assert all(v.dtype == np.uint8 for v in res.images.values())
    assert {"raw", "enhanced", "masked", "straightened"} <= set(res.stages)
    assert 0.0 <= res.estimated_centromere_y <= 1.0
    # chromosome is dark on a light background and fills the long side
    img = res.images["96x48"]
    assert img[0, 0] > 150 and img.min() < 120
    dark_rows = np.flatnonzero((img < res.background - 40).any(axis=1))
    assert dark_rows.size > 0.8 * 96


@pytest.mark.parametrize(
    "override",
    [
        {"denoise": {"enabled": False}, "clahe": {"enabled": False}},
        {"straighten": {"method": "projection"}},
        {"straighten": {"method": "none"}, "orient": {"enabled": False}},
        {"mask": {"enabled": False}},
        {"polarity": {"mode": "dark_on_light"}, "crop": {"margin": 0}},
    ],
)
def test_steps_can_be_switched(rows: pd.DataFrame, override: dict) -> None:
    from karyoflow.imageio import read_image

    row = rows.iloc[1].to_dict()
    res = preprocess_instance(read_image(row["source"]), row, override)
    assert res.status == "ok"
    assert res.images["96x48"].shape == (96, 48)
    if "mask" in override:
        assert "masked" not in res.stages and not res.straightened


def test_known_centromere_is_carried_to_the_chromosome(shard: ShardData) -> None:
    # Synthetic rows know their centromere: it must land on the chromosome in most images.
    orig = shard.augmented == 0
    for size, (h, w) in SIZES.items():
        pts = shard.centromere[size][orig]
        imgs = shard.images[size][orig]
        assert np.isfinite(pts).all()
        xi = np.clip(np.rint(pts[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.rint(pts[:, 1]).astype(int), 0, h - 1)
        inside = (pts[:, 0] > -1) & (pts[:, 0] < w) & (pts[:, 1] > -1) & (pts[:, 1] < h)
        on_dark = imgs[np.arange(len(imgs)), yi, xi] < np.median(imgs[:, 0, 0]) - 30
        assert (inside & on_dark).mean() >= 0.85


def test_whole_image_kind_uses_whole_image() -> None:
    img = np.full((50, 20), 230, np.uint8)
    img[8:42, 6:14] = 60
    row = {"kind": "crop", "x0": 0, "y0": 0, "x1": 0, "y1": 0}
    res = preprocess_instance(img, row, {"sizes": {"s": [50, 20]}})
    assert res.status == "ok"
    assert math.isnan(res.centromere["s"][0])
    assert res.stages["raw"].shape == (50 + 16, 20 + 16)


def test_empty_crop_is_rejected_not_raised() -> None:
    img = np.full((40, 40), 230, np.uint8)
    row = {"kind": "metaphase", "x0": 5, "y0": 5, "x1": 30, "y1": 30}
    res = preprocess_instance(img, row, None)
    assert res.status == "empty mask" and not res.images


# --------------------------------------------------------------------------- many rows


def test_augmented_copies_only_for_train(rows: pd.DataFrame, shard: ShardData) -> None:
    n_train = int((rows["split"] == "train").sum())
    n_other = len(rows) - n_train
    assert not shard.rejects
    assert len(shard) == n_train * 3 + n_other
    aug = shard.augmented > 0
    assert set(shard.split[aug]) == {"train"}
    assert sorted(set(shard.augmented[shard.split == "train"].tolist())) == [0, 1, 2]
    assert set(shard.augmented[shard.split != "train"].tolist()) == {0}
    for name, (h, w) in SIZES.items():
        assert shard.images[name].shape == (len(shard), h, w)
        assert shard.images[name].dtype == np.uint8
    # copies differ from their original
    first = np.flatnonzero(shard.augmented == 1)[0]
    orig = np.flatnonzero((shard.row == shard.row[first]) & (shard.augmented == 0))[0]
    assert not np.array_equal(shard.images["96x48"][first], shard.images["96x48"][orig])
    assert set(shard.row.tolist()) == set(rows["row"].tolist())
    assert shard.qc and all("raw" in q["stages"] for q in shard.qc)


def test_truncated_source_is_a_reject(rows: pd.DataFrame, tmp_path: Path) -> None:
    src = Path(rows["source"].iloc[0])
    bad = tmp_path / "bad.png"
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    part = rows.iloc[:3].copy()
    part["source"] = [str(bad)] * 3
    part = pd.concat([part, rows.iloc[-2:]])
    messages: list[str] = []
    out = preprocess_rows(part, PARAMS, seed=3, log=messages.append)
    assert len(out.rejects) == 3
    assert all(r[1] == str(bad) and "truncated" in r[2] for r in out.rejects)
    assert set(out.row.tolist()) == set(rows["row"].iloc[-2:].tolist())
    assert messages


def test_same_seed_same_bytes(rows: pd.DataFrame, shard: ShardData, tmp_path: Path) -> None:
    again = preprocess_rows(rows.sample(frac=1.0, random_state=0), PARAMS, seed=3, log=quiet)
    write_shard(tmp_path / "a.h5", shard, {"seed": 3})
    time.sleep(1.1)  # HDF5 object times have 1 s resolution: they must not be stored
    write_shard(tmp_path / "b.h5", again, {"seed": 3})
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    other = preprocess_rows(rows, PARAMS, seed=4, log=quiet)
    aug = other.augmented > 0
    assert not np.array_equal(other.images["96x48"][aug], shard.images["96x48"][aug])
    np.testing.assert_array_equal(other.images["96x48"][~aug], shard.images["96x48"][~aug])


def test_shard_round_trip(shard: ShardData, tmp_path: Path) -> None:
    write_shard(tmp_path / "s.h5", shard, {"seed": 3})
    back = read_shard(tmp_path / "s.h5")
    for name in SIZES:
        np.testing.assert_array_equal(back.images[name], shard.images[name])
        np.testing.assert_array_equal(back.centromere[name], shard.centromere[name])
    for key in ShardData.META:
        np.testing.assert_array_equal(getattr(back, key), getattr(shard, key))
    assert back.rejects == shard.rejects
    assert [q["instance_id"] for q in back.qc] == [q["instance_id"] for q in shard.qc]


def _merge(rows: pd.DataFrame, groups: list[pd.DataFrame], out: Path) -> dict:
    paths = []
    for i, part in enumerate(groups):
        data = preprocess_rows(part, PARAMS, seed=3, log=quiet) if len(part) else None
        data = data if data is not None else ShardData.empty(SIZES)
        paths.append(out / "shards" / f"{i}.h5")
        write_shard(paths[-1], data, {"seed": 3})
    attrs = {"params": resolve_params(PARAMS), "seed": 3}
    return merge_shards(paths, out / "merged", sizes=SIZES, attrs=attrs)


def test_merge_does_not_depend_on_sharding(rows: pd.DataFrame, tmp_path: Path) -> None:
    sources = sorted(rows["source"].unique())
    two = [rows[rows["source"] == s] for s in sources]
    first = rows[rows["source"] == sources[0]]
    three = [
        rows[rows["source"] == sources[1]],
        first.iloc[: len(first) // 2],
        first.iloc[len(first) // 2 :],
    ]
    a = _merge(rows, two, tmp_path / "two")
    b = _merge(rows, three, tmp_path / "three")
    assert set(a) == {(s, p) for s in SIZES for p in ("train", "val", "test")}
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key


def test_merge_copies_in_blocks_with_the_same_bytes(rows: pd.DataFrame, tmp_path: Path) -> None:
    """The merge holds one block of images at a time; the block size changes no byte."""
    a = _merge(rows, [rows.iloc[::2], rows.iloc[1::2]], tmp_path / "a")
    paths = sorted((tmp_path / "a" / "shards").glob("*.h5"))
    attrs = {"params": resolve_params(PARAMS), "seed": 3}
    b = merge_shards(paths, tmp_path / "b", sizes=SIZES, attrs=attrs, block=3)
    assert any(h5py.File(p)["images"].shape[0] > 3 for p in b.values())
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key


def test_merged_layout(rows: pd.DataFrame, tmp_path: Path) -> None:
    out = _merge(rows, [rows], tmp_path)
    with h5py.File(out[("96x48", "train")], "r") as h5:
        n = h5["images"].shape[0]
        assert h5["images"].shape == (n, 96, 48) and h5["images"].dtype == np.uint8
        assert h5["images"].chunks == (1, 96, 48) and h5["images"].compression == "gzip"
        for key in ("labels", "cell_ids", "instance_ids", "datasets", "augmented"):
            assert h5[key].shape == (n,), key
        assert h5["centromere"].shape == (n, 2) and h5["centromere"].dtype == np.float32
        assert h5["labels"].dtype == np.int16
        rows_ = h5["rows"][()]
        aug = h5["augmented"][()]
        assert np.all(np.diff(rows_ * 10 + aug) > 0)  # ordered by (row, augmented)
        assert h5.attrs["split"] == "train" and h5.attrs["size"] == "96x48"
        assert json.loads(h5.attrs["label_names"]) == list(LABELS)
        assert json.loads(h5.attrs["params"])["denoise"] == DEFAULT_PARAMS["denoise"]
        assert h5.attrs["n_images"] == n and h5.attrs["n_augmented"] == int((aug > 0).sum())
        assert h5.attrs["seed"] == 3
        assert h5["instance_ids"].asstr()[0].startswith("cell_")
    with h5py.File(out[("64", "val")], "r") as h5:  # empty split: valid, 0 rows
        assert h5["images"].shape == (0, 64, 64)
        assert h5["labels"].shape == (0,) and h5["centromere"].shape == (0, 2)
        assert h5.attrs["n_images"] == 0


def test_contact_sheet(shard: ShardData, tmp_path: Path) -> None:
    path = tmp_path / "qc.png"
    contact_sheet(shard.qc, path, title="synthetic")
    first = path.read_bytes()
    assert first.startswith(b"\x89PNG")
    contact_sheet(shard.qc, path, title="synthetic")
    assert path.read_bytes() == first


def test_qc_sheet_for_manifest(rows: pd.DataFrame, tmp_path: Path) -> None:
    manifest = rows.drop(columns="row")
    path = qc_sheet_for_manifest(
        manifest, None, tmp_path / "qc.png", per_class=1, seed=0, title="t", log=quiet
    )
    assert path.read_bytes().startswith(b"\x89PNG")


def test_merge_accepts_size_names(shard: ShardData, tmp_path: Path) -> None:
    write_shard(tmp_path / "s.h5", shard, {})
    out = merge_shards([tmp_path / "s.h5"], tmp_path / "m", sizes=list(SIZES))
    with h5py.File(out[("64", "val")], "r") as h5:
        assert h5["images"].shape == (0, 64, 64)
