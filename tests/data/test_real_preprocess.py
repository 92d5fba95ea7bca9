"""Real data from ../shared/data through every preprocessing step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from karyoflow.config import load_config
from karyoflow.ingest import ingest_dataset
from karyoflow.preprocess.chain import preprocess_rows, resolve_params
from karyoflow.preprocess.sharding import eligible_rows

pytestmark = pytest.mark.realdata

REPO = Path(__file__).resolve().parents[2]

CASES = [
    ("taichung_voc.yaml", "taichung", 400),
    ("karyograms_612.yaml", "karyograms612", 300),
    ("pampaj7_tiff.yaml", "pampaj7", 300),
    ("karyonet_sample.yaml", "karyonet_gband_train", 184),
    ("karyonet_sample.yaml", "karyonet_rband_val", 46),
]


@pytest.mark.parametrize(("example", "name", "n"), CASES)
def test_every_step_on_real_data(real_data, example, name, n):
    config = load_config(REPO / "config" / "examples" / example)
    manifest = ingest_dataset(
        name,
        config["datasets"][name],
        seed=config["seed"],
        split=config["split"],
        base_dir=REPO,
        log=lambda _m: None,
    ).manifest
    rows = eligible_rows(manifest)
    # a deterministic sample spread over the sources, sorted by source like a shard
    pick = np.linspace(0, len(rows) - 1, min(n, len(rows))).round().astype(int)
    rows = rows.iloc[np.unique(pick)].sort_values(["source", "row"]).reset_index(drop=True)
    params = resolve_params(config["preprocess"]["params"])
    data = preprocess_rows(rows, params, config["seed"], log=lambda _m: None)
    originals = data.augmented == 0
    assert int(originals.sum()) + len(data.rejects) == len(rows)
    for _instance, source, reason in data.rejects:
        assert source and reason  # every reject is listed with its reason
    assert len(data.rejects) <= 0.02 * len(rows), data.rejects[:5]
    images = data.images["96x48"]
    assert images.dtype == np.uint8 and images.shape[1:] == (96, 48)
    # chromosomes dark on a light background after polarity normalisation
    border = np.concatenate(
        [images[:, :2].reshape(len(images), -1), images[:, -2:].reshape(len(images), -1)], 1
    )
    assert np.median(border) > 180
    assert np.median(images.reshape(len(images), -1).min(1)) < 120
    assert data.straightened[originals].mean() > 0.8
