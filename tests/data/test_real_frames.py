"""Pairs from the real DAPI frame (../shared/data/pommier-dapi-cy3), as the example does.

The chromosomes of the one metaphase in the frame are cut out by the classical
detector with ``config/examples/overlaps_dapi.yaml``'s options; measured on
2026-11-22: 44 objects, 42 kept, 2 rejected (two touching chromosomes, solidity
< 0.85), 25 / 4 / 13 chromosomes for train / val / test. The thresholds below leave
a margin; a human count of the frame gives 46 chromosomes.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from karyoflow.config import load_config
from karyoflow.ingest import ingest_dataset
from karyoflow.tasks.segmentation.task import load_pairs, run_make_overlaps

pytestmark = pytest.mark.realdata

REPO = Path(__file__).resolve().parents[2]


def test_pairs_from_the_dapi_frame(real_data, tmp_path):
    config = load_config(REPO / "config" / "examples" / "overlaps_dapi.yaml")
    out = ingest_dataset(
        "pommier",
        config["datasets"]["pommier"],
        seed=config["seed"],
        split=config["split"],
        base_dir=REPO,
        log=lambda _m: None,
    )
    manifest = tmp_path / "pommier.parquet"
    out.manifest.to_parquet(manifest)
    outputs = {s: tmp_path / f"{s}.h5" for s in ("train", "val", "test")}
    outputs.update(preview=tmp_path / "preview.png", summary=tmp_path / "summary.json")
    summary = run_make_overlaps(
        dataset="pommier",
        kind="frames",
        manifest=manifest,
        counts={"train": 40, "val": 10, "test": 20},
        params=config["overlaps"]["generate"],
        seed=config["seed"],
        outputs=outputs,
        log=lambda _m: None,
    )
    objects = summary["frame_objects"]
    kept = [o for o in objects if "split" in o]
    assert 40 <= len(kept) <= 48 and len(objects) - len(kept) <= 4
    assert all(o["reason"] for o in objects if "split" not in o)
    counts = [sum(o["split"] == s for o in kept) for s in ("train", "val", "test")]
    assert counts == [
        round(len(kept) * 0.6),
        round(len(kept) * 0.7) - round(len(kept) * 0.6),
        len(kept) - round(len(kept) * 0.7),
    ]
    split_of = {o["instance_id"]: o["split"] for o in kept}
    for split in ("train", "val", "test"):
        with h5py.File(outputs[split]) as h5:
            ids = {i.decode() for i in h5["instance_ids"][()].ravel()}
        assert {split_of[i] for i in ids} == {split}  # held out by chromosome
    grey, labels, _ = load_pairs(outputs["test"])
    assert grey.shape == (20, 72, 72)
    # fluorescence with headroom: dark field, overlaps brighter than single chromatin
    background = np.mean([g[lab == 0].mean() for g, lab in zip(grey, labels, strict=True)])
    single = np.mean(
        [g[(lab == 1) | (lab == 2)].mean() for g, lab in zip(grey, labels, strict=True)]
    )
    overlap = np.mean([g[lab == 3].mean() for g, lab in zip(grey, labels, strict=True)])
    assert background < 25 and overlap > single + 30 and single < 160
    assert json.loads(outputs["summary"].read_text())["kind"] == "frames"
