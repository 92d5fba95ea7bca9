"""The across-lab online augmentations: off by default and without effect on the other
draws, seeded, bounded, and each one changing what it should."""

from __future__ import annotations

import numpy as np
import pytest

from karyoflow.tasks.classification.data import DEFAULT_ONLINE_AUGMENT, SplitData, make_dataset

N, H, W = 16, 32, 16


def _split() -> SplitData:
    rng = np.random.default_rng(0)
    images = np.full((N, H, W), 240, np.uint8)
    images[:, 8:24, 5:11] = rng.integers(20, 120, size=(N, 16, 6))
    return SplitData(
        images=images,
        labels=np.arange(N) % 24,
        cell_ids=np.array(["c"] * N, dtype=object),
        instance_ids=np.array([f"c/{i}" for i in range(N)], dtype=object),
        augmented=np.zeros(N, np.uint8),
        attrs={},
    )


def _batch(**augment) -> np.ndarray:
    base = {k: 0.0 for k in DEFAULT_ONLINE_AUGMENT}  # everything off but what is asked
    ds = make_dataset(_split(), batch_size=N, seed=3, training=True, augment={**base, **augment})
    images, _ = next(iter(ds))
    return images.numpy()[..., 0]


def test_off_by_default_and_seeded():
    assert all(DEFAULT_ONLINE_AUGMENT[k] == 0.0 for k in ("gamma", "blur", "background",
                                                          "downscale"))  # fmt: skip
    plain = _batch()
    # nothing on: the (shuffled) crops themselves
    assert sorted(map(bytes, plain.astype(np.uint8))) == sorted(map(bytes, _split().images))
    np.testing.assert_array_equal(_batch(gamma=0.5, blur=1.0), _batch(gamma=0.5, blur=1.0))


@pytest.mark.parametrize(
    ("option", "check"),
    [
        ("gamma", lambda a, b: np.abs(a - b).max() > 1),
        ("blur", lambda a, b: np.abs(np.diff(b, axis=2)).sum() < np.abs(np.diff(a, axis=2)).sum()),
        ("background", lambda a, b: b.mean() < a.mean()),
        ("downscale", lambda a, b: np.abs(a - b).max() > 1),
    ],
)
def test_each_option_changes_the_crops_within_range(option, check):
    plain, changed = _batch(), _batch(**{option: 0.5 if option != "blur" else 1.0})
    assert check(plain, changed), option
    assert changed.min() >= 0.0 and changed.max() <= 255.0
