"""Centromere data: preprocessed HDF5 rows with a known centromere, and tf.data pipelines.

The preprocessed HDF5 files (:mod:`karyoflow.preprocess.h5io`) carry a ``centromere``
``(N, 2)`` dataset in output pixels (pixel-centre coordinates, NaN where unknown), moved
with every geometric step and every offline augmentation. This module keeps the rows
whose point is known and inside the image; online augmentation flips images *and*
points.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from karyoflow.records import select_rows

__all__ = [
    "DEFAULT_POINT_AUGMENT",
    "CentromereData",
    "flip_points",
    "load_centromere_split",
    "make_point_dataset",
]

#: Online augmentation of training batches: flip probabilities (the point moves with
#: the image), brightness (+- fraction of 255) and contrast (+- fraction).
DEFAULT_POINT_AUGMENT: dict[str, float] = {
    "hflip": 0.5,
    "vflip": 0.5,
    "brightness": 0.05,
    "contrast": 0.1,
}


@dataclass
class CentromereData:
    """Chromosome images with their centromere, in memory."""

    images: np.ndarray  # uint8 (N, H, W)
    points: np.ndarray  # float32 (N, 2): (x, y) pixel-centre coordinates
    labels: np.ndarray  # int64 (N,), -1 unknown
    cell_ids: np.ndarray  # object (N,)
    instance_ids: np.ndarray  # object (N,)
    datasets: np.ndarray  # object (N,)
    augmented: np.ndarray  # uint8 (N,)
    #: (file, instance_id, reason) of rows left out
    rejects: list[tuple[str, str, str]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, keep: np.ndarray) -> CentromereData:
        """Rows where ``keep`` (bool mask or index array) holds."""
        return select_rows(self, keep)

    def originals(self) -> CentromereData:
        """Without the offline-augmented copies (for evaluation)."""
        return self.subset(self.augmented == 0)

    def describe(self) -> str:
        """One JSON line: images, originals, cells, datasets, rows left out."""
        return json.dumps(
            {
                "images": len(self),
                "originals": int((self.augmented == 0).sum()),
                "cells": len(np.unique(self.cell_ids)),
                "datasets": sorted({str(d) for d in self.datasets}),
                "left_out": len(self.rejects),
            }
        )


def _strings(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def _read_one(path: Path) -> CentromereData:
    try:
        h5 = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such preprocessed file") from None
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with h5:
        for key in ("images", "centromere"):
            if key not in h5:
                raise ValueError(f"{path}: no {key!r} dataset (not a karyoflow preprocessed file)")
        images = h5["images"][()]
        points = h5["centromere"][()].astype(np.float32).reshape(-1, 2)
        n = images.shape[0]
        if points.shape[0] != n:
            raise ValueError(f"{path}: {points.shape[0]} centromeres for {n} images")

        def col(key: str, default: Any, strings: bool = False) -> np.ndarray:
            if key not in h5:
                return np.full(n, default, dtype=object if strings else np.int64)
            values = h5[key][()]
            return _strings(values) if strings else values.astype(np.int64)

        name = path.parent.parent.name
        data = CentromereData(
            images=images,
            points=points,
            labels=col("labels", -1),
            cell_ids=col("cell_ids", "", True),
            instance_ids=col("instance_ids", "", True),
            datasets=col("datasets", name, True),
            augmented=col("augmented", 0).astype(np.uint8),
            attrs={k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()},
        )
    return data


def load_centromere_split(paths: str | Path | Sequence[str | Path]) -> CentromereData:
    """Rows with a known centromere from one or more preprocessed HDF5 files.

    Rows without a centromere (NaN) are skipped silently (most datasets have none); rows
    whose point lies outside the image are left out and listed in ``rejects`` with the
    reason.

    Parameters
    ----------
    paths : path or sequence of paths
        ``results/preprocess/<dataset>/<size>/<split>.h5`` files of one size.

    Returns
    -------
    CentromereData

    Raises
    ------
    FileNotFoundError
        A file is missing.
    ValueError
        A file is not a preprocessed HDF5 (``<file>: <reason>``), or sizes differ.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    parts: list[CentromereData] = []
    rejects: list[tuple[str, str, str]] = []
    shape: tuple[int, int] | None = None
    for path in map(Path, paths):
        part = _read_one(path)
        h, w = part.images.shape[1:3]
        if len(part) and shape is not None and (h, w) != shape:
            raise ValueError(f"{path}: image size {h}x{w} differs from {shape[0]}x{shape[1]}")
        if len(part) or shape is None:
            shape = (h, w)
        known = np.isfinite(part.points).all(axis=1)
        x, y = part.points[:, 0], part.points[:, 1]
        with np.errstate(invalid="ignore"):
            inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
        for i in np.flatnonzero(known & ~inside):
            rejects.append(
                (
                    str(path),
                    str(part.instance_ids[i]),
                    f"centromere ({x[i]:.1f}, {y[i]:.1f}) outside the {w}x{h} image",
                )
            )
        parts.append(part.subset(known & inside))
    h, w = shape or (0, 0)
    merged = CentromereData(
        images=np.concatenate([p.images.reshape(-1, h, w) for p in parts]).astype(np.uint8),
        points=np.concatenate([p.points for p in parts]).astype(np.float32),
        labels=np.concatenate([p.labels for p in parts]),
        cell_ids=np.concatenate([p.cell_ids for p in parts]),
        instance_ids=np.concatenate([p.instance_ids for p in parts]),
        datasets=np.concatenate([p.datasets for p in parts]),
        augmented=np.concatenate([p.augmented for p in parts]),
        rejects=rejects,
        attrs=parts[0].attrs if parts else {},
    )
    return merged


def flip_points(
    points: np.ndarray, shape: tuple[int, int], *, hflip: bool = False, vflip: bool = False
) -> np.ndarray:
    """Move ``(N, 2)`` pixel-centre points with a left-right / top-bottom image flip.

    Examples
    --------
    >>> flip_points(np.array([[0.0, 2.0]]), (10, 8), hflip=True, vflip=True).tolist()
    [[7.0, 7.0]]
    """
    out = np.array(points, dtype=np.float32, copy=True).reshape(-1, 2)
    h, w = shape
    if hflip:
        out[:, 0] = (w - 1) - out[:, 0]
    if vflip:
        out[:, 1] = (h - 1) - out[:, 1]
    return out


def make_point_dataset(
    data: CentromereData,
    *,
    batch_size: int,
    seed: int,
    training: bool,
    augment: Mapping[str, float] | None = None,
):
    """A ``tf.data.Dataset`` of ``(images float32 (B,H,W,1) 0-255, points float32 (B,2))``.

    Training pipelines shuffle (seeded) and augment whole batches from one seeded
    ``tf.random.Generator``: flips move the point (``x -> W-1-x``, ``y -> H-1-y``),
    brightness/contrast do not. Evaluation pipelines keep the order.
    """
    import tensorflow as tf

    n = len(data)
    height, width = (int(v) for v in data.images.shape[1:3])
    images = data.images.reshape(-1, height, width, 1)
    ds = tf.data.Dataset.from_tensor_slices((images, data.points.astype(np.float32)))
    if training:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    params = {**DEFAULT_POINT_AUGMENT, **(augment or {})} if training else None
    unknown = set(augment or {}) - set(DEFAULT_POINT_AUGMENT)
    if unknown:
        raise ValueError(f"unknown online_augment option {sorted(unknown)[0]!r}")
    gen = tf.random.Generator.from_seed(seed) if training else None

    def prepare(imgs, pts):
        imgs = tf.cast(imgs, tf.float32)
        if params is not None:
            imgs, pts = _augment_batch(tf, imgs, pts, gen, params, height, width)
        return imgs, pts

    ds = ds.map(prepare, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(2)


def _augment_batch(tf, images, points, gen, params, height, width):
    n = tf.shape(images)[0]
    rnd = gen.uniform(tf.stack([n, 4]), dtype=tf.float32)
    x, y = points[:, 0], points[:, 1]
    if params["hflip"] > 0:
        flip = rnd[:, 0] < params["hflip"]
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
        x = tf.where(flip, (width - 1.0) - x, x)
    if params["vflip"] > 0:
        flip = rnd[:, 1] < params["vflip"]
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [1]), images)
        y = tf.where(flip, (height - 1.0) - y, y)
    b = params["brightness"] * 255.0 * (rnd[:, 2] * 2 - 1)
    c = 1.0 + params["contrast"] * (rnd[:, 3] * 2 - 1)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * c[:, None, None, None] + mean + b[:, None, None, None]
    return tf.clip_by_value(images, 0.0, 255.0), tf.stack([x, y], axis=1)
