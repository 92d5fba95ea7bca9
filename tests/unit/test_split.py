import pandas as pd
import pytest

from karyoflow.manifest import manifest_frame, split_manifest
from karyoflow.split import assign_splits


def _cells(n):
    return [f"cell{i:03d}" for i in range(n)]


def test_fractions_respected_and_deterministic():
    cells = _cells(100)
    out = assign_splits(cells, None, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    counts = pd.Series(out).value_counts()
    assert counts["train"] == 70 and counts["val"] == 15 and counts["test"] == 15
    again = assign_splits(list(reversed(cells)), None, {"train": 0.7, "val": 0.15, "test": 0.15}, 1)
    assert again == out
    other = assign_splits(cells, None, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=2)
    assert other != out


def test_stratified_spreads_rare_strata():
    cells = _cells(40)
    strata = {c: ("abnormal" if i < 10 else "normal") for i, c in enumerate(cells)}
    out = assign_splits(cells, strata, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    abnormal = pd.Series([out[c] for c in cells[:10]]).value_counts()
    assert abnormal["train"] == 6 and abnormal["val"] == 2 and abnormal["test"] == 2


def test_preset_kept():
    cells = _cells(10)
    out = assign_splits(cells, None, {"train": 0.5, "test": 0.5}, 0, preset={"cell003": "val"})
    assert out["cell003"] == "val"
    with pytest.raises(ValueError, match="unknown preset split"):
        assign_splits(cells, None, {"train": 1.0}, 0, preset={"cell003": "holdout"})


@pytest.mark.parametrize("fractions", [{"train": 0.5, "test": 0.4}, {"train": 1.2, "test": -0.2}])
def test_bad_fractions(fractions):
    with pytest.raises(ValueError):
        assign_splits(_cells(3), None, fractions, 0)


def test_no_cell_leakage_in_manifest():
    records = [
        {"cell_id": f"c{i % 13}", "instance_id": f"c{i % 13}/{i}", "label": str(1 + i % 22)}
        for i in range(300)
    ]
    df = split_manifest(manifest_frame(records), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=5)
    per_cell = df.groupby("cell_id")["split"].nunique()
    assert (per_cell == 1).all()
    assert set(df["split"]) == {"train", "val", "test"}


def test_conflicting_preset_raises():
    df = manifest_frame(
        [
            {"cell_id": "a", "instance_id": "1", "preset_split": "train"},
            {"cell_id": "a", "instance_id": "2", "preset_split": "test"},
        ]
    )
    with pytest.raises(ValueError, match="several splits"):
        split_manifest(df, {"train": 0.5, "test": 0.5}, 0)
