"""Load preprocessed HDF5 splits and build deterministic ``tf.data`` pipelines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from karyoflow.manifest import scoped_cell_ids
from karyoflow.records import select_rows
from karyoflow.split import stable_seed
from karyoflow.tasks.classification.features import relative_size_features

__all__ = [
    "DEFAULT_ONLINE_AUGMENT",
    "IMAGES_IN_MEMORY_MB",
    "DiskImages",
    "SplitData",
    "class_weights",
    "load_split",
    "make_dataset",
    "predict_proba",
    "source_weights",
]

#: On-the-fly augmentation applied to training batches (on top of the offline copies).
DEFAULT_ONLINE_AUGMENT: dict[str, float] = {
    "translate": 0.05,  # fraction of height/width
    "brightness": 0.05,  # +- fraction of 255
    "contrast": 0.1,  # +- fraction
    "hflip": 0.5,  # probability
    # across labs (0: off; each draws its randoms only when on, so runs without them
    # repeat exactly): gamma - |log gamma| up to this; blur - mix with a 5x5 Gaussian
    # blur up to this weight; background - darken the whole crop by up to this fraction
    # (a greyer slide); downscale - shrink by up to this fraction and back (resolution)
    "gamma": 0.0,
    "blur": 0.0,
    "background": 0.0,
    "downscale": 0.0,
}

#: A split whose images take more than this many MB is read from its HDF5 files batch
#: by batch (:class:`DiskImages`) instead of into memory (``train.params``:
#: ``images_in_memory_mb``).
IMAGES_IN_MEMORY_MB = 1024.0
#: Images :func:`predict_proba` holds at a time.
PREDICT_BLOCK = 8192


class DiskImages:
    """Rows of uint8 images left in the ``images`` datasets of HDF5 files, read on
    demand: the stand-in for a ``(N, H, W)`` array of a split too large for memory.

    Indexing with a slice, a bool mask or an index array gives another
    :class:`DiskImages` (nothing is read); :meth:`read` and ``np.asarray`` read.

    Parameters
    ----------
    paths : sequence of path
        HDF5 files with an ``images`` dataset each.
    file, local : (N,) int arrays
        Per row, the index of its file in ``paths`` and its row there.
    height, width : int
        Image size.

    Examples
    --------
    >>> import tempfile, h5py
    >>> path = tempfile.mkdtemp() + "/x.h5"
    >>> with h5py.File(path, "w") as h5:
    ...     _ = h5.create_dataset("images", data=np.arange(24, dtype=np.uint8).reshape(3, 2, 4))
    >>> disk = DiskImages.of_file(path)
    >>> disk.shape, disk[[2, 0]].read()[:, 0, 0].tolist()
    ((3, 2, 4), [16, 0])
    """

    dtype = np.dtype(np.uint8)
    ndim = 3

    def __init__(
        self,
        paths: Sequence[str | Path],
        file: np.ndarray,
        local: np.ndarray,
        height: int,
        width: int,
    ) -> None:
        self.paths = tuple(str(p) for p in paths)
        self.file = np.asarray(file, np.int64)
        self.local = np.asarray(local, np.int64)
        self.height, self.width = int(height), int(width)
        self._open: dict[int, h5py.Dataset] = {}

    @classmethod
    def of_file(cls, path: str | Path) -> DiskImages:
        """Every image of one file, in order."""
        with h5py.File(path, "r") as h5:
            n, height, width = h5["images"].shape
        return cls([path], np.zeros(n, np.int64), np.arange(n), height, width)

    @classmethod
    def concat(cls, parts: Sequence[DiskImages]) -> DiskImages:
        """The rows of ``parts`` one after the other."""
        paths: list[str] = []
        files, locals_ = [], []
        for part in parts:
            files.append(part.file + len(paths))
            locals_.append(part.local)
            paths.extend(part.paths)
        first = parts[0]
        return cls(paths, np.concatenate(files), np.concatenate(locals_), first.height, first.width)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.local), self.height, self.width)

    @property
    def nbytes(self) -> int:
        return len(self.local) * self.height * self.width

    def __len__(self) -> int:
        return len(self.local)

    def __getitem__(self, key: Any) -> DiskImages:
        rows = np.arange(len(self))[key]
        if np.ndim(rows) != 1:
            raise IndexError("DiskImages: index rows with a slice, a bool mask or an index array")
        return DiskImages(self.paths, self.file[rows], self.local[rows], self.height, self.width)

    def read(self) -> np.ndarray:
        """The images, ``(N, H, W)`` uint8 (files stay open for the next read)."""
        from karyoflow.preprocess.h5io import read_rows

        for i in np.unique(self.file):
            if int(i) not in self._open:
                self._open[int(i)] = h5py.File(self.paths[int(i)], "r")["images"]
        datasets = [self._open.get(i) for i in range(len(self.paths))]
        return read_rows(datasets, self.file, self.local, self.height, self.width)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.read()
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"DiskImages({len(self)} x {self.height} x {self.width} in {len(self.paths)} files)"


def image_rows(images: np.ndarray | DiskImages, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of an image array or of :class:`DiskImages`, in memory."""
    block = images[start:stop]
    return block.read() if isinstance(block, DiskImages) else block


@dataclass
class SplitData:
    """One split of a preprocessed dataset, in memory."""

    #: uint8 (N, H, W), in memory or left on disk (:class:`DiskImages`)
    images: np.ndarray | DiskImages
    labels: np.ndarray  # int64 (N,)
    cell_ids: np.ndarray  # str (N,)
    instance_ids: np.ndarray  # str (N,)
    augmented: np.ndarray  # uint8 (N,)
    attrs: dict[str, Any]
    #: (N, 2) float32 relative size
    #: (:func:`karyoflow.tasks.classification.features.relative_size_features`);
    #: zeros for files written before sizes were recorded
    size_features: np.ndarray | None = None
    #: str (N,) dataset each row comes from (the files' ``datasets`` column)
    sources: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        """One line: images, originals, classes and cells present, the images' MB and
        whether they stay on disk."""
        return json.dumps(
            {
                "images": len(self),
                "originals": int((self.augmented == 0).sum()),
                "classes": len(np.unique(self.labels)),
                "cells": len(np.unique(self.cell_ids)),
                "images_mb": round(self.images.nbytes / 1e6, 1),
                "on_disk": isinstance(self.images, DiskImages),
            }
        )

    def originals(self) -> SplitData:
        """The split without offline-augmented copies (for evaluation)."""
        return self.rows(self.augmented == 0)

    def cells(self, n: int, seed: int) -> SplitData:
        """The rows of ``n`` of its cells (all of them when it has no more), chosen by
        a seeded stable hash of the cell id: the same cells for the same seed, and the
        cells of a smaller ``n`` among those of a larger one (a learning curve)."""
        chosen = set(sorted(set(self.cell_ids), key=lambda c: stable_seed(seed, c))[: int(n)])
        return self.rows(np.array([c in chosen for c in self.cell_ids], bool))

    def rows(self, keep: np.ndarray) -> SplitData:
        """The rows where ``keep`` (bool mask or index array) holds."""
        return select_rows(self, keep)


def _strings(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def load_split(
    paths: str | Path | Sequence[str | Path], in_memory_mb: float = IMAGES_IN_MEMORY_MB
) -> SplitData:
    """Read one split from one or more HDF5 files (several datasets are concatenated;
    rows of several datasets get scoped cell ids, ``<dataset>:<cell>``).

    The images are read into memory when they take at most ``in_memory_mb`` MB in all,
    and are otherwise left on disk (:class:`DiskImages`, read batch by batch).

    Raises
    ------
    FileNotFoundError, ValueError
        A file is missing, or files disagree on the image size.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    parts = []
    total = 0
    for path in paths:
        with h5py.File(path, "r") as h5:
            total += int(np.prod(h5["images"].shape))
    on_disk = total > in_memory_mb * 1e6
    for path in paths:
        with h5py.File(path, "r") as h5:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()}
            cell_ids = _strings(h5["cell_ids"][()])
            augmented = h5["augmented"][()].astype(np.uint8)
            if "length_px" in h5 and "area_px" in h5:
                # cells are split as a whole, so each file holds every chromosome of a cell
                sizes = relative_size_features(
                    h5["length_px"][()], h5["area_px"][()], cell_ids, reference=augmented == 0
                )
            else:
                sizes = np.zeros((len(cell_ids), 2), np.float32)
            sources = (
                _strings(h5["datasets"][()])
                if "datasets" in h5
                else np.full(len(cell_ids), str(attrs.get("dataset", "")), dtype=object)
            )
            parts.append(
                SplitData(
                    images=DiskImages.of_file(path) if on_disk else h5["images"][()],
                    labels=h5["labels"][()].astype(np.int64),
                    cell_ids=cell_ids,
                    instance_ids=_strings(h5["instance_ids"][()]),
                    augmented=augmented,
                    attrs=attrs,
                    size_features=sizes,
                    sources=sources,
                )
            )
    shapes = {p.images.shape[1:] for p in parts if len(p)}
    if len(shapes) > 1:
        raise ValueError(f"{list(map(str, paths))}: image sizes differ: {sorted(shapes)}")
    first = parts[0]
    if len(parts) == 1:
        return first
    h, w = next(iter(shapes)) if shapes else first.images.shape[1:]
    sources = np.concatenate([p.sources for p in parts])
    cell_ids = np.concatenate([p.cell_ids for p in parts])
    if len(set(sources)) > 1:  # a union: equal cell ids of two datasets stay two cells
        cell_ids = scoped_cell_ids(sources, cell_ids)
    return SplitData(
        images=DiskImages.concat([p.images for p in parts])
        if on_disk
        else np.concatenate([p.images.reshape(-1, h, w) for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        cell_ids=cell_ids,
        instance_ids=np.concatenate([p.instance_ids for p in parts]),
        augmented=np.concatenate([p.augmented for p in parts]),
        attrs=first.attrs,
        size_features=np.concatenate([_sizes(p) for p in parts]),
        sources=sources,
    )


def _sizes(data: SplitData) -> np.ndarray:
    if data.size_features is None:
        return np.zeros((len(data), 2), np.float32)
    return data.size_features


def class_weights(labels: np.ndarray, num_classes: int = 24, mode: str = "balanced") -> dict:
    """Per-class loss weights; ``balanced`` = n / (k * count), classes absent get 1.

    Examples
    --------
    >>> w = class_weights(np.array([0, 0, 0, 1]), num_classes=3)
    >>> round(w[0], 3), round(w[1], 3), w[2]
    (0.667, 2.0, 1.0)
    """
    if mode == "none":
        return {c: 1.0 for c in range(num_classes)}
    if mode != "balanced":
        raise ValueError(f"unknown class weight mode {mode!r} (balanced | none)")
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    present = counts > 0
    k = int(present.sum())
    out = {}
    for c in range(num_classes):
        out[c] = float(len(labels) / (k * counts[c])) if present[c] else 1.0
    return out


def source_weights(sources: np.ndarray, mode: str = "none") -> np.ndarray:
    """Per-sample loss weights that give every source dataset the same total weight
    (``balanced``: n / (k * count of the sample's source)), or ones (``none``).

    Examples
    --------
    >>> source_weights(np.array(["a", "a", "a", "b"]), "balanced").tolist()
    [0.6666666865348816, 0.6666666865348816, 0.6666666865348816, 2.0]
    """
    sources = np.asarray(sources)
    if mode == "none" or len(sources) == 0:
        return np.ones(len(sources), np.float32)
    if mode != "balanced":
        raise ValueError(f"unknown source weight mode {mode!r} (balanced | none)")
    names, index, counts = np.unique(sources, return_inverse=True, return_counts=True)
    return (len(sources) / (len(names) * counts[index])).astype(np.float32)


def make_dataset(
    data: SplitData,
    *,
    batch_size: int,
    seed: int,
    training: bool,
    num_classes: int = 24,
    augment: Mapping[str, float] | None = None,
    label_smoothing: float = 0.0,
    mixup: float = 0.0,
    sample_weights: Mapping[int, float] | np.ndarray | None = None,
    size_features: bool = False,
):
    """A ``tf.data.Dataset`` of ``(images float32 (B,H,W,1) in 0-255, one-hot labels)``.

    With ``size_features`` the inputs are ``(images, sizes (B, 2))`` for a model with
    two inputs (:func:`karyoflow.models.registry.with_size_input`).

    Training pipelines shuffle (seeded, reshuffled each epoch deterministically), apply
    on-the-fly augmentation drawn from one seeded ``tf.random.Generator`` (sequential,
    so every epoch differs and every run repeats), and optionally mixup; evaluation
    pipelines keep the order.
    """
    import tensorflow as tf

    gen = tf.random.Generator.from_seed(seed) if training else None

    n = len(data)
    onehot = np.eye(num_classes, dtype=np.float32)[data.labels]
    if label_smoothing and training:
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
    weights = None
    if isinstance(sample_weights, np.ndarray):
        weights = np.asarray(sample_weights, np.float32)
    elif sample_weights is not None:
        weights = np.array([sample_weights[int(c)] for c in data.labels], np.float32)
    if isinstance(data.images, DiskImages):
        ds = _disk_batches(tf, data, onehot, weights, batch_size, seed, training, size_features)
    else:
        images = data.images[..., None]
        inputs: Any = images
        if size_features:
            inputs = (images, _sizes(data).astype(np.float32))
        tensors = (inputs, onehot) if weights is None else (inputs, onehot, weights)
        ds = tf.data.Dataset.from_tensor_slices(tensors)
        if training:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        # batch first, then augment whole batches with vectorised ops (much faster on
        # CPU than per-image maps)
        ds = ds.batch(batch_size, drop_remainder=False)
    params = {**DEFAULT_ONLINE_AUGMENT, **(augment or {})} if training else None
    height, width = data.images.shape[1:3]

    def prepare(inputs, *rest):
        images = inputs[0] if size_features else inputs
        images = tf.cast(images, tf.float32)
        if params is not None:
            images = _augment_batch(tf, images, gen, params, height, width)
        return ((images, inputs[1]) if size_features else images, *rest)

    ds = ds.map(prepare, num_parallel_calls=1, deterministic=True)
    if training and mixup > 0:
        ds = ds.map(lambda *batch: _mixup(tf, batch, gen, mixup), num_parallel_calls=1)
    return ds.prefetch(2)


def _disk_batches(tf, data, onehot, weights, batch_size, seed, training, size_features):
    """Batches read from the split's HDF5 files (:class:`DiskImages`): one batch of
    images in memory at a time. Training batches follow a seeded permutation drawn
    anew for each pass (each epoch differs, every run repeats); evaluation keeps the
    order."""
    n, (height, width) = len(data), data.images.shape[1:3]
    rng = np.random.default_rng(seed)
    sizes = _sizes(data).astype(np.float32)

    def batches():
        order = rng.permutation(n) if training else np.arange(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            if training:
                rows = np.sort(rows)  # one increasing read per file; the batch is a set
            images = data.images[rows].read()[..., None]
            x = (images, sizes[rows]) if size_features else images
            yield (x, onehot[rows]) if weights is None else (x, onehot[rows], weights[rows])

    image_spec = tf.TensorSpec((None, height, width, 1), tf.uint8)
    x_spec = (image_spec, tf.TensorSpec((None, 2), tf.float32)) if size_features else image_spec
    spec = (x_spec, tf.TensorSpec((None, onehot.shape[1]), tf.float32))
    if weights is not None:
        spec = (*spec, tf.TensorSpec((None,), tf.float32))
    ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
    # Keras counts the steps of a pass instead of running the generator dry
    return ds.apply(tf.data.experimental.assert_cardinality(-(-n // batch_size)))


def _augment_batch(tf, images, gen, params, height, width):
    """Per-image random flip, translation, brightness and contrast for a whole batch."""
    n = tf.shape(images)[0]
    rnd = gen.uniform(tf.stack([n, 5]), dtype=tf.float32)
    if params["hflip"] > 0:
        flip = rnd[:, 0] < params["hflip"]
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
    t = params["translate"]
    if t > 0:
        dx = tf.round((rnd[:, 1] * 2 - 1) * t * width)
        dy = tf.round((rnd[:, 2] * 2 - 1) * t * height)
        one, zero = tf.ones_like(dx), tf.zeros_like(dx)
        transforms = tf.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.constant([height, width], tf.int32),
            fill_value=255.0,
            interpolation="NEAREST",
            fill_mode="CONSTANT",
        )
    b = params["brightness"] * 255.0 * (rnd[:, 3] * 2 - 1)
    c = 1.0 + params["contrast"] * (rnd[:, 4] * 2 - 1)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * c[:, None, None, None] + mean + b[:, None, None, None]
    images = tf.clip_by_value(images, 0.0, 255.0)
    if any(float(params.get(k, 0.0)) > 0 for k in ("gamma", "blur", "background", "downscale")):
        images = _lab_augment(tf, images, gen, params, height, width)
    return images


def _lab_augment(tf, images, gen, params, height, width):
    """The across-lab augmentations of :data:`DEFAULT_ONLINE_AUGMENT` (gamma, blur,
    background level, resolution), per image, for a whole batch in 0..255."""
    n = tf.shape(images)[0]
    rnd = gen.uniform(tf.stack([n, 4]), dtype=tf.float32)
    if params["gamma"] > 0:
        gamma = tf.exp((rnd[:, 0] * 2 - 1) * float(params["gamma"]))[:, None, None, None]
        images = 255.0 * tf.pow(images / 255.0, gamma)
    if params["blur"] > 0:
        g = np.exp(-0.5 * (np.arange(5) - 2.0) ** 2)
        kernel = np.outer(g, g) / np.outer(g, g).sum()
        pad = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
        blurred = tf.nn.conv2d(pad, kernel[:, :, None, None].astype(np.float32), 1, "VALID")
        w = (rnd[:, 1] * float(params["blur"]))[:, None, None, None]
        images = (1.0 - w) * images + w * blurred
    if params["background"] > 0:
        images = images * (1.0 - rnd[:, 2] * float(params["background"]))[:, None, None, None]
    if params["downscale"] > 0:
        # one shrink factor per batch (resize takes one size); per image would need a loop
        f = 1.0 - rnd[0, 3] * float(params["downscale"])
        small = tf.cast(tf.round(tf.stack([height * f, width * f])), tf.int32)
        images = tf.image.resize(tf.image.resize(images, tf.maximum(small, 2)), [height, width])
    return tf.clip_by_value(images, 0.0, 255.0)


def _mixup(tf, batch, gen, alpha):
    inputs, labels = batch[0], batch[1]
    images = inputs[0] if isinstance(inputs, tuple) else inputs
    key = tf.cast(gen.uniform_full_int([2], dtype=tf.int64) % (2**31 - 1), tf.int32)
    g1 = tf.random.stateless_gamma([1], seed=key, alpha=alpha)
    g2 = tf.random.stateless_gamma([1], seed=key + 1, alpha=alpha)
    lam = g1 / (g1 + g2)
    perm = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], seed=key + 2))
    images = lam * images + (1 - lam) * tf.gather(images, perm)
    labels = lam * labels + (1 - lam) * tf.gather(labels, perm)
    if isinstance(inputs, tuple):
        sizes = lam * inputs[1] + (1 - lam) * tf.gather(inputs[1], perm)
        return ((images, sizes), labels, *batch[2:])
    return (images, labels, *batch[2:])


def predict_proba(
    model, data: SplitData, batch_size: int = 256, *, tta: str = "none"
) -> np.ndarray:
    """Class probabilities (N, classes) for a split, in its order.

    ``tta``: test-time views averaged (:data:`karyoflow.engine.views.TTA_MODES`).
    """
    from dataclasses import replace

    from karyoflow.engine.views import average_over_views

    if len(data) == 0:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)

    def one_view(rows: SplitData, images: np.ndarray) -> np.ndarray:
        ds = make_dataset(
            replace(rows, images=images),
            batch_size=batch_size,
            seed=0,
            training=False,
            size_features=_two_inputs(model),
        )
        # a 1-tuple: Keras would read a bare (images, sizes) pair as (inputs, targets)
        inputs = ds.map(lambda x, y: (x,))
        return np.asarray(model.predict(inputs, verbose=0), dtype=np.float32)

    block = PREDICT_BLOCK  # images in memory at a time, in memory or on disk
    out = []
    for start in range(0, len(data), block):
        rows = data.rows(slice(start, start + block))  # a view of the block's rows
        images = image_rows(rows.images, 0, len(rows))
        out.append(average_over_views(lambda v, r=rows: one_view(r, v), images, tta))
    return np.concatenate(out)


def _two_inputs(model) -> bool:
    """Models built with ``size_features`` take ``(images, sizes)``."""
    return len(model.inputs) == 2
