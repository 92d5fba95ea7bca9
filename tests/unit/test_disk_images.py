"""A split too large for memory: images left in their HDF5 files and read batch by
batch (training, validation and prediction) with the same rows, order and results."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from karyoflow.tasks.classification.data import (
    DiskImages,
    load_split,
    make_dataset,
    predict_proba,
)


def _split_file(path: Path, n: int, seed: int, dataset: str) -> Path:
    """A merged-split file of ``n`` random crops in 4 cells."""
    rng = np.random.default_rng(seed)
    text = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as h5:
        h5.attrs["dataset"] = dataset
        h5.create_dataset("images", data=rng.integers(0, 256, (n, 12, 8), dtype=np.uint8),
                          chunks=(1, 12, 8), compression="gzip")  # fmt: skip
        h5["labels"] = rng.integers(0, 24, n).astype(np.int16)
        h5.create_dataset("cell_ids", data=[f"c{i % 4}" for i in range(n)], dtype=text)
        h5.create_dataset("instance_ids", data=[f"{dataset}-{i}" for i in range(n)], dtype=text)
        h5.create_dataset("datasets", data=[dataset] * n, dtype=text)
        h5["augmented"] = (np.arange(n) % 3 == 2).astype(np.uint8)
        h5["length_px"] = rng.uniform(20, 80, n).astype(np.float32)
        h5["area_px"] = rng.uniform(200, 900, n).astype(np.float32)
    return path


@pytest.fixture()
def files(tmp_path: Path) -> list[Path]:
    return [_split_file(tmp_path / "a.h5", 37, 1, "a"), _split_file(tmp_path / "b.h5", 23, 2, "b")]


def test_on_disk_split_holds_the_same_rows(files: list[Path]) -> None:
    memory = load_split(files)
    disk = load_split(files, in_memory_mb=0)
    assert isinstance(memory.images, np.ndarray) and isinstance(disk.images, DiskImages)
    assert disk.images.shape == memory.images.shape == (60, 12, 8)
    np.testing.assert_array_equal(np.asarray(disk.images), memory.images)
    np.testing.assert_array_equal(disk.size_features, memory.size_features)
    assert disk.cell_ids.tolist() == memory.cell_ids.tolist()  # scoped: "a:c0", ...
    # rows, originals and cells select the same rows without reading anything
    for pick in (
        lambda s: s.originals(),
        lambda s: s.cells(3, seed=5),
        lambda s: s.rows([59, 0, 7]),
    ):
        a, b = pick(memory), pick(disk)
        assert isinstance(b.images, DiskImages)
        np.testing.assert_array_equal(b.images.read(), a.images)
        assert b.instance_ids.tolist() == a.instance_ids.tolist()


def test_repeated_rows_and_bad_index() -> None:
    disk = DiskImages(["none.h5"], np.zeros(3, np.int64), np.arange(3), 2, 2)
    assert len(disk[np.array([True, False, True])]) == 2 and len(disk[1:]) == 2
    with pytest.raises(IndexError, match="slice, a bool mask or an index array"):
        disk[0]


def _batches(ds) -> list[tuple[np.ndarray, ...]]:
    out = []
    for x, y, w in ds.as_numpy_iterator():
        images, sizes = x
        out.append((images, sizes, y, w))
    return out


def test_disk_training_pass_visits_every_row_once_and_repeats(files: list[Path]) -> None:
    disk = load_split(files, in_memory_mb=0)
    kw = dict(batch_size=8, training=True, sample_weights=np.arange(60, dtype=np.float32),
              size_features=True, augment={"translate": 0.0, "brightness": 0.0,
                                           "contrast": 0.0, "hflip": 0.0})  # fmt: skip
    ds = make_dataset(disk, seed=3, **kw)
    first, second = _batches(ds), _batches(ds)
    # without augmentation the images are the stored ones: each row once per pass
    for passes in (first, second):
        weights = np.concatenate([b[3] for b in passes])
        assert sorted(weights.tolist()) == list(range(60))
        rows = weights.astype(int)
        images = np.concatenate([b[0] for b in passes])[..., 0]
        np.testing.assert_array_equal(images, disk.images.read()[rows])
        np.testing.assert_array_equal(np.concatenate([b[1] for b in passes]),
                                      disk.size_features[rows])  # fmt: skip
    order = [np.concatenate([b[3] for b in p]).tolist() for p in (first, second)]
    assert order[0] != order[1]  # a new permutation each pass
    again = make_dataset(load_split(files, in_memory_mb=0), seed=3, **kw)
    assert [
        np.concatenate([b[3] for b in p]).tolist() for p in (_batches(again), _batches(again))
    ] == order


def test_predictions_do_not_depend_on_where_the_images_are(files, monkeypatch) -> None:
    import keras

    import karyoflow.tasks.classification.data as data

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 8, 1))
    model = keras.Model(
        inp, keras.layers.Dense(24, activation="softmax")(keras.layers.Flatten()(inp))
    )
    memory = predict_proba(model, load_split(files), tta="flips")
    monkeypatch.setattr(data, "PREDICT_BLOCK", 16)  # several blocks, the last one short
    disk = predict_proba(model, load_split(files, in_memory_mb=0), tta="flips")
    assert disk.shape == (60, 24)
    np.testing.assert_allclose(disk, memory, rtol=1e-5, atol=1e-7)
