"""Overlapping-pair generator: label consistency, counts, splits, determinism, bad input."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from karyoflow.readers.overlaps import read_overlaps_h5
from karyoflow.tasks.segmentation.generate import (
    chromosome_od,
    compose_pair,
    generate_pairs,
    resolve_generate_params,
    write_pairs_h5,
)
from karyoflow.tasks.segmentation.task import check_overlaps_config, load_pairs, run_make_overlaps


def _bar(h: int = 30, w: int = 6, od: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    return np.full((h, w), od, np.float32), np.ones((h, w), bool)


def _rect(mask: np.ndarray) -> tuple[int, int]:
    """(height, width) of a mask that must be one filled axis-aligned rectangle."""
    ys, xs = np.nonzero(mask)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert mask.sum() == h * w, "not a filled rectangle"
    return int(h), int(w)


@pytest.mark.parametrize("seed", range(5))
def test_overlap_is_exactly_both_masks(seed):
    rng = np.random.default_rng(seed)
    grey, lab = compose_pair(
        _bar(30, 6),
        _bar(20, 8),
        rng,
        size=48,
        downsample=1,
        rotation=0,
        first_rotation=0,
        jitter=0,
        translation=2,
        min_overlap=4,
        blur_sigma=0,
        noise_sigma=0,
    )
    first, second = np.isin(lab, (1, 3)), np.isin(lab, (2, 3))
    assert _rect(first) == (30, 6)  # the first chromosome, whole and unrotated
    assert _rect(second) == (20, 8)
    assert np.array_equal(lab == 3, first & second)
    assert (lab == 1).any() and (lab == 2).any() and (lab == 3).sum() >= 4
    # optical densities add: background > one chromosome > both
    bg, one, both = grey[lab == 0].mean(), grey[lab == 1].mean(), grey[lab == 3].mean()
    assert bg > one > both
    assert np.allclose(both / bg, (one / bg) ** 2, atol=0.02)


def test_compose_rotated_and_downsampled():
    rng = np.random.default_rng(3)
    grey, lab = compose_pair(_bar(60, 12), _bar(50, 10), rng, size=40, downsample=2)
    assert grey.shape == lab.shape == (40, 40) and grey.dtype == lab.dtype == np.uint8
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    # downsampled by 2: about a quarter of the area each (rotation resamples the edges)
    assert abs(np.isin(lab, (1, 3)).sum() - 180) < 40
    inverted, _ = compose_pair(_bar(), _bar(), np.random.default_rng(3), size=40, invert=True)
    assert inverted[0, 0] < 60  # fluorescence-like: dark background


def test_compose_additive_light_adds():
    """Fluorescence: inverted, the overlap is the background plus both chromosomes' light."""
    od = -np.log10(1 - 0.3)  # each chromosome takes 30 % of the background away
    grey, lab = compose_pair(
        _bar(30, 6, od),
        _bar(20, 8, od),
        np.random.default_rng(1),
        size=48,
        downsample=1,
        rotation=0,
        first_rotation=0,
        min_overlap=4,
        blur_sigma=0,
        noise_sigma=0,
        invert=True,
        combine="additive",
        background=(235, 235),
    )
    bg, one, both = (float(grey[lab == k].mean()) for k in (0, 1, 3))
    assert bg == 20 and abs(one - (20 + 0.3 * 235)) <= 0.5
    assert abs((both - bg) - 2 * (one - bg)) <= 1  # light adds: twice the single signal


def test_compose_gives_up_cleanly():
    with pytest.raises(RuntimeError, match="no overlapping placement"):
        compose_pair(
            _bar(60, 6),
            _bar(60, 6),
            np.random.default_rng(0),
            size=16,
            max_tries=3,
            downsample=1,
            min_overlap=10_000,
        )


def test_chromosome_od_from_a_metaphase_box():
    img = np.full((60, 60), 230, np.uint8)
    img[10:40, 10:18] = 70  # the chromosome of the box
    img[10:40, 30:38] = 70  # a neighbour inside the margin is not taken
    od, mask = chromosome_od(
        img, {"kind": "metaphase", "x0": 10, "y0": 10, "x1": 18, "y1": 40}, margin=14, min_area=20
    )
    assert mask.shape == (30, 8) and mask.sum() >= 30 * 8 - 4  # (opening rounds corners)
    assert np.allclose(od[mask], np.log10(230 / 70), atol=1e-3) and not od[~mask].any()
    with pytest.raises(ValueError, match="mask of"):
        chromosome_od(np.full((20, 20), 230, np.uint8), {"kind": "crop"})


def _dataset(tmp_path, cells=6, per_cell=4):
    """Tiny crops (one PNG per chromosome), ``cells`` cells split train/val/test."""
    rows = []
    rng = np.random.default_rng(0)
    splits = ["train", "train", "train", "train", "val", "test"]
    for c in range(cells):
        for k in range(per_cell):
            img = np.full((44, 20), 235, np.uint8)
            length = int(rng.integers(24, 38))
            img[4 : 4 + length, 6:14] = int(rng.integers(60, 120))
            img[4 + length // 3, 6:14] = 200  # a pale band
            path = tmp_path / f"c{c}_{k}.png"
            cv2.imwrite(str(path), img)
            rows.append(
                {
                    "dataset": "d",
                    "instance_id": f"c{c}/{k}",
                    "kind": "crop",
                    "source": str(path),
                    "frame": -1,
                    "cell_id": f"cell{c}",
                    "x0": 0,
                    "y0": 0,
                    "x1": 20,
                    "y1": 44,
                    "split": splits[c % len(splits)],
                }
            )
    return pd.DataFrame(rows)


PARAMS = {"size": 32, "downsample": 1.5, "min_area": 20, "min_overlap": 6}


def test_generate_pairs_counts_cells_and_splits(tmp_path):
    df = _dataset(tmp_path)
    p = resolve_generate_params(PARAMS)
    train = df[df["split"] == "train"]
    out = generate_pairs(train, 12, p, 7, key="d/train")
    assert out["pairs"].shape == (12, 32, 32, 2) and out["pairs"].dtype == np.uint8
    assert len(out["cell_ids"]) == len(out["instance_ids"]) == 12
    assert set(out["cell_ids"]) <= set(train["cell_id"])
    for cell, (a, b) in zip(out["cell_ids"], out["instance_ids"], strict=True):
        assert a != b and a.split("/")[0] == b.split("/")[0] == cell.replace("cell", "c")
    labels = out["pairs"][..., 1]
    assert labels.max() == 3 and all((labels[i] == 3).sum() >= 6 for i in range(12))
    across = generate_pairs(
        train, 12, resolve_generate_params({**PARAMS, "pair_within": "split"}), 7, key="d/train"
    )
    assert any("+" in c for c in across["cell_ids"])  # pairs of two cells are named by both


def test_generate_pairs_needs_two_chromosomes(tmp_path):
    df = _dataset(tmp_path, cells=1, per_cell=1)
    with pytest.raises(ValueError, match="no cell with two"):
        generate_pairs(df, 2, resolve_generate_params(PARAMS), 0)
    assert generate_pairs(df, 0, resolve_generate_params(PARAMS), 0)["pairs"].shape[0] == 0


def _outputs(folder):
    outs = {s: folder / f"{s}.h5" for s in ("train", "val", "test")}
    return {**outs, "preview": folder / "preview.png", "summary": folder / "summary.json"}


def test_make_overlaps_deterministic_and_readable(tmp_path):
    df = _dataset(tmp_path)
    manifest = tmp_path / "m.parquet"
    df.to_parquet(manifest)
    counts = {"train": 10, "val": 4, "test": 4}
    kw = {"dataset": "d", "kind": "crops", "manifest": manifest, "counts": counts, "params": PARAMS}
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_make_overlaps(**kw, seed=5, outputs=_outputs(first), log=lambda m: None)
    run_make_overlaps(**kw, seed=5, outputs=_outputs(second), log=lambda m: None)
    run_make_overlaps(**kw, seed=6, outputs=_outputs(other), log=lambda m: None)
    for split in ("train", "val", "test"):
        a = (first / f"{split}.h5").read_bytes()
        assert a == (second / f"{split}.h5").read_bytes(), split
        assert a != (other / f"{split}.h5").read_bytes(), split
    split_of = df.groupby("cell_id")["split"].first()
    for split, n in counts.items():
        path = first / f"{split}.h5"
        grey, labels, cells = load_pairs(path)
        assert grey.shape == labels.shape == (n, 32, 32)
        assert {split_of[c] for c in cells} == {split}  # both chromosomes from this split
        # the public layout: the overlaps reader takes the file as it is
        res = read_overlaps_h5(path, dataset="pairs", options={"cells_key": "cell_ids"})
        assert len(res.records) == n and not res.rejects
        assert [r["cell_id"] for r in res.records] == cells
        with h5py.File(path) as h5:
            assert h5["pairs"].shape == (n, 32, 32, 2) and h5["pairs"].dtype == np.uint8
            assert json.loads(h5.attrs["params"])["size"] == 32
    summary = json.loads((first / "summary.json").read_text())
    assert summary["splits"]["train"]["pairs"] == 10
    assert (first / "preview.png").stat().st_size > 1000


def test_make_overlaps_from_an_overlaps_h5_dataset(tmp_path):
    pairs = np.zeros((5, 30, 28, 2), np.uint8)
    pairs[..., 0] = 220
    pairs[:, 10:20, 10:14, 1] = np.arange(5)[:, None, None] % 4
    src = tmp_path / "public.h5"
    write_pairs_h5(
        src, {"pairs": pairs, "cell_ids": list("abcde"), "instance_ids": [["x", "y"]] * 5}
    )
    manifest = tmp_path / "m.parquet"
    pd.DataFrame(
        {
            "source": str(src),
            "frame": [0, 1, 2, 3, 4],
            "cell_id": list("abcde"),
            "kind": "pair",
            "split": ["train", "train", "val", "test", "train"],
        }
    ).to_parquet(manifest)
    run_make_overlaps(
        dataset="p",
        kind="overlaps_h5",
        manifest=manifest,
        counts={},
        params={"size": 32},
        seed=0,
        outputs=_outputs(tmp_path / "o"),
        log=lambda m: None,
    )
    grey, labels, cells = load_pairs(tmp_path / "o" / "train.h5")
    assert grey.shape == (3, 32, 32) and cells == ["a", "b", "e"]
    assert grey[0, 0, 0] == 220 and labels[1].max() == 1  # padded with the border level


def test_bad_input_one_line_errors(tmp_path):
    bad = tmp_path / "not.h5"
    bad.write_text("nope")
    with pytest.raises(ValueError, match=r"not\.h5: not a readable HDF5 file"):
        load_pairs(bad)
    df = _dataset(tmp_path, cells=2)
    df["source"] = str(tmp_path / "missing.png")
    manifest = tmp_path / "m.parquet"
    df.to_parquet(manifest)
    with pytest.raises(ValueError, match=r"m\.parquet: train: pair 0: no usable placement"):
        run_make_overlaps(
            dataset="d",
            kind="crops",
            manifest=manifest,
            counts={"train": 2, "val": 0, "test": 0},
            params=PARAMS,
            seed=0,
            outputs=_outputs(tmp_path / "o"),
            log=lambda m: None,
        )
    assert not (tmp_path / "o" / "train.h5").exists()


def test_params_and_config_checks():
    with pytest.raises(ValueError, match="unknown overlaps/generate option"):
        resolve_generate_params({"sizes": 3})
    with pytest.raises(ValueError, match="unknown overlaps/generate mask option"):
        resolve_generate_params({"mask": {"methd": "otsu"}})
    with pytest.raises(ValueError, match="combine must be one of"):
        resolve_generate_params({"combine": "max"})
    with pytest.raises(ValueError, match="unknown frames option 'splitby'"):
        resolve_generate_params({"frames": {"splitby": "cell"}})
    with pytest.raises(ValueError, match="unknown frames detect option 'radius'"):
        resolve_generate_params({"frames": {"detect": {"radius": 3}}})
    with pytest.raises(ValueError, match="frames peak must be"):
        resolve_generate_params({"frames": {"peak": 1000}})
    datasets = {"v": {"kind": "voc"}, "f": {"kind": "frames"}, "x": {"kind": "pairs"}}
    check_overlaps_config({"datasets": ["v"], "generate": {"size": 48}}, datasets)
    check_overlaps_config({"datasets": ["f"]}, datasets)  # chromosomes cut out of frames
    with pytest.raises(ValueError, match="no single chromosomes"):
        check_overlaps_config({"datasets": ["x"]}, datasets)
    with pytest.raises(ValueError, match="not a multiple of 8"):
        check_overlaps_config({"datasets": ["v"], "generate": {"size": 44}}, datasets)
    with pytest.raises(ValueError, match="unknown segmentation training option"):
        check_overlaps_config({"datasets": ["v"], "params": {"epoch": 1}}, datasets)


def test_config_section_one_line_errors(repo):
    import copy

    import yaml

    from karyoflow.config import ConfigError, validate_config

    base = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    assert validate_config(copy.deepcopy(base))["overlaps"]["generate"]["size"] % 8 == 0
    for mutate, message in [
        (lambda o: o.update(datasets=["nope"]), "overlaps/datasets: no dataset 'nope'"),
        (lambda o: o["generate"].update(size=44), "overlaps/generate/size: 44"),
        (lambda o: o["generate"].update(rotaton=3), "unknown overlaps/generate option"),
        (lambda o: o.update(models=["fcn"]), "overlaps/models/0"),
    ]:
        config = copy.deepcopy(base)
        mutate(config["overlaps"])
        with pytest.raises(ConfigError) as info:
            validate_config(config, source="my.yaml")
        text = str(info.value)
        assert text.startswith("my.yaml: ") and message in text and "\n" not in text, text
