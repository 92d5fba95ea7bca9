"""Every config in config/examples ingests its real dataset with the expected counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from karyoflow.config import load_config
from karyoflow.ingest import ingest_dataset

pytestmark = pytest.mark.realdata

REPO = Path(__file__).resolve().parents[2]

# example config -> dataset -> (instances, cells, rejected) from ../shared/data/README.md
EXPECTED = {
    "taichung_voc.yaml": {"taichung": (20563, 447, 0)},
    "karyograms_612.yaml": {"karyograms612": (14072, 306, 0)},
    "karyograms_612_hu2019.yaml": {"karyograms612": (14072, 306, 0)},
    "pampaj7_tiff.yaml": {"pampaj7": (2806, 65, 0)},
    "karyonet_sample.yaml": {
        "karyonet_gband_train": (184, 4, 0),
        "karyonet_gband_val": (46, 1, 0),
        "karyonet_rband_train": (184, 1, 0),
        "karyonet_rband_val": (46, 1, 0),
    },
    "pommier_frames.yaml": {"pommier": (1, 1, 0)},
    "overlaps_real.yaml": {"karyograms612": (14072, 306, 0)},
    "overlaps_dapi.yaml": {"pommier": (1, 1, 0)},
    "taichung_voc_hu2019.yaml": {"taichung": (20563, 447, 0)},
    "taichung_detect_long.yaml": {"taichung": (20563, 447, 0)},
    "taichung_detect_finetune.yaml": {"taichung": (20563, 447, 0)},
    "taichung_union.yaml": {"taichung": (20563, 447, 0), "taichung_more": (65673, 1429, 0)},
    "leave_one_out.yaml": {
        "karyograms612": (14072, 306, 0),
        "taichung": (20563, 447, 0),
        "pampaj7": (2806, 65, 0),
        "karyonet_gband": (184, 4, 0),
    },
    "all_sources.yaml": {
        "karyograms612": (14072, 306, 0),
        "taichung": (20563, 447, 0),
        "pampaj7": (2806, 65, 0),
        "karyonet_gband": (184, 4, 0),
    },
    "taichung_detect_union.yaml": {
        "taichung": (20563, 447, 0),
        "taichung_more": (65673, 1429, 0),
    },
    "pampaj7_curve.yaml": {
        "karyograms612": (14072, 306, 0),
        "taichung": (20563, 447, 0),
        "pampaj7": (2806, 65, 0),
    },
}

# Examples that read the same data as another (same datasets, seed and split): ingest is
# a function of those alone, so they are checked equal and ingested once.
SAME_DATA = {
    "karyograms_612_hu2019.yaml": "karyograms_612.yaml",
    "overlaps_dapi.yaml": "pommier_frames.yaml",
    "taichung_voc_hu2019.yaml": "taichung_voc.yaml",
    "taichung_detect_long.yaml": "taichung_voc.yaml",
    "taichung_detect_finetune.yaml": "taichung_voc.yaml",
    "all_sources.yaml": "leave_one_out.yaml",
    "taichung_detect_union.yaml": "taichung_union.yaml",
}


def test_every_real_example_is_covered():
    real = {
        p.name
        for p in (REPO / "config" / "examples").glob("*.yaml")
        if "path: ../shared/data" in p.read_text()
    }
    assert real == set(EXPECTED)


@pytest.mark.parametrize("example", sorted(SAME_DATA))
def test_example_reads_the_data_of_another(example):
    config, other = (
        load_config(REPO / "config" / "examples" / n) for n in (example, SAME_DATA[example])
    )
    for key in ("seed", "datasets", "split"):
        assert config[key] == other[key], key
    assert EXPECTED[example] == EXPECTED[SAME_DATA[example]]


@pytest.mark.parametrize("example", sorted(set(EXPECTED) - set(SAME_DATA)))
def test_example_ingests(real_data, example):
    config = load_config(REPO / "config" / "examples" / example)
    fixed: dict[str, str] = {}
    for name, (instances, cells, rejected) in EXPECTED[example].items():
        out = ingest_dataset(
            name,
            config["datasets"][name],
            seed=config["seed"],
            split=config["split"],
            base_dir=REPO,
            fixed_splits=fixed or None,
            log=lambda _m: None,
        )
        df = out.manifest
        assert (len(df), df["cell_id"].nunique(), len(out.rejects)) == (instances, cells, rejected)
        assert (df.groupby("cell_id")["split"].nunique() == 1).all()
        assert df["split"].isin(["train", "val", "test"]).all()
        if df["kind"].iloc[0] != "frame":
            assert (df["label"] != "").all()


def test_taichung_split_stratifies_abnormal_cells(real_data):
    config = load_config(REPO / "config" / "examples" / "taichung_voc.yaml")
    out = ingest_dataset(
        "taichung",
        config["datasets"]["taichung"],
        seed=config["seed"],
        split=config["split"],
        base_dir=REPO,
        log=lambda _m: None,
    )
    cells = out.manifest.groupby("cell_id").first()
    trisomy21 = cells[cells["cell_truth"] == "47,+21"]
    assert len(trisomy21) >= 3
    assert trisomy21["split"].nunique() >= 2, "rare karyotypes spread over the splits"
    share = cells["split"].value_counts(normalize=True)
    assert abs(share["train"] - 0.7) < 0.02 and abs(share["test"] - 0.2) < 0.02
    # what the truth tables state numerically (manifest column cell_karyotype): every
    # row of normal.csv is a normal cell whatever count its image shows (44-50)
    states = cells["cell_karyotype"]
    assert (states == "normal").sum() == 408
    assert {"44", "45", "46", "47", "50"} <= set(cells.loc[states == "normal", "cell_truth"])
    numerical = cells[(states != "normal") & (states != "")]
    assert {"47,+21", "47,+18", "45,X", "47,+X", "47,+Y", "45,-Y", "47,+12"} <= set(
        numerical["cell_karyotype"]
    )
    # of the 36 numerical rows, those stating a karyotype (not "47,unknow", "44,XX/XY",
    # "46,21", "46,X" ...)
    assert len(numerical) == 27
