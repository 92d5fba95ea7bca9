"""Swap-invariant segmentation losses and metric for overlapping pairs (Keras 3).

Which chromosome of a pair is "first" (label 1) and which "second" (label 2) is
arbitrary, so a network cannot learn it pixel by pixel; a plain loss makes it hedge
between the two. Here every image's loss is computed against the labels as they are
and with 1 and 2 swapped, and the smaller one counts (the same per-image A/B matching
as :func:`karyoflow.evaluate.segmentation.match_ab`).

Losses: ``weighted_ce`` (cross-entropy with per-class weights), ``dice`` (soft Dice over
the classes), ``ce_dice`` (their sum).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from karyoflow.tasks.segmentation.task import SEG_LOSSES as LOSSES

__all__ = [
    "LOSSES",
    "SwapInvariantLoss",
    "class_pixel_weights",
    "matched_accuracy",
    "pixel_accuracy",
]


def class_pixel_weights(
    labels: np.ndarray, num_classes: int = 4, mode: str = "sqrt"
) -> list[float]:
    """Per-class loss weights from the training labels' pixel frequencies.

    ``balanced``: ``total / (classes * count)``; ``sqrt``: its square root (milder);
    ``none``: all 1. Normalised so the pixel-weighted mean weight is 1.

    Examples
    --------
    >>> class_pixel_weights(np.array([0, 0, 0, 1]), 2, "balanced")
    [0.6666666666666666, 2.0]
    """
    if mode == "none":
        return [1.0] * num_classes
    if mode not in ("balanced", "sqrt"):
        raise ValueError(f"class_weights must be balanced, sqrt or none, got {mode!r}")
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)[:num_classes]
    counts = np.maximum(counts.astype(np.float64), 1.0)
    w = counts.sum() / (num_classes * counts)
    if mode == "sqrt":
        w = np.sqrt(w)
    w = w / (w * counts).sum() * counts.sum()
    return [float(v) for v in w]


def _swap(y):
    return ops.where(ops.equal(y, 1), 2, ops.where(ops.equal(y, 2), 1, y))


@keras.saving.register_keras_serializable(package="karyoflow")
class SwapInvariantLoss(keras.losses.Loss):
    """Per image: ``min(loss(y, p), loss(swap_12(y), p))``; sparse integer ``y``.

    Parameters
    ----------
    kind : {"weighted_ce", "dice", "ce_dice"}
    class_weights : sequence of float, optional
        Cross-entropy weight per class (default all 1).
    num_classes : int, default 4
    swap : bool, default True
        False: the plain loss (labels as they are).

    Examples
    --------
    >>> y = np.array([[[0, 1], [2, 3]]])
    >>> p = keras.ops.one_hot(np.array([[[0, 2], [1, 3]]]), 4) * 0.96 + 0.01
    >>> round(float(SwapInvariantLoss("weighted_ce")(y, p)), 3)  # -log(0.97)
    0.03
    >>> float(SwapInvariantLoss("weighted_ce", swap=False)(y, p)) > 1
    True
    """

    def __init__(
        self,
        kind: str = "weighted_ce",
        class_weights: Sequence[float] | None = None,
        num_classes: int = 4,
        swap: bool = True,
        name: str = "swap_invariant_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if kind not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {kind!r}")
        self.kind = kind
        self.num_classes = int(num_classes)
        self.class_weights = [float(v) for v in (class_weights or [1.0] * self.num_classes)]
        self.swap = bool(swap)

    def _per_image(self, y, p):
        y = ops.cast(y, "int32")
        onehot = ops.one_hot(y, self.num_classes, dtype=p.dtype)
        total = 0.0
        if self.kind in ("weighted_ce", "ce_dice"):
            w = ops.sum(onehot * ops.convert_to_tensor(self.class_weights, dtype=p.dtype), -1)
            ce = -ops.sum(onehot * ops.log(ops.clip(p, 1e-7, 1.0)), axis=-1)
            total = total + ops.mean(ce * w, axis=(1, 2))
        if self.kind in ("dice", "ce_dice"):
            inter = ops.sum(onehot * p, axis=(1, 2))
            denom = ops.sum(onehot, axis=(1, 2)) + ops.sum(p, axis=(1, 2))
            dice = (2.0 * inter + 1.0) / (denom + 1.0)
            total = total + 1.0 - ops.mean(dice, axis=-1)
        return total

    def call(self, y_true, y_pred):
        y_true = ops.reshape(y_true, ops.shape(y_pred)[:-1])
        y_pred = ops.cast(y_pred, "float32")
        loss = self._per_image(y_true, y_pred)
        if self.swap:
            loss = ops.minimum(loss, self._per_image(_swap(ops.cast(y_true, "int32")), y_pred))
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "class_weights": self.class_weights,
            "num_classes": self.num_classes,
            "swap": self.swap,
        }


@keras.saving.register_keras_serializable(package="karyoflow")
def matched_accuracy(y_true, y_pred):
    """Per-image pixel accuracy with A/B matched (max of as-is and swapped)."""
    pred = ops.argmax(y_pred, axis=-1)
    y = ops.cast(ops.reshape(y_true, ops.shape(pred)), pred.dtype)
    plain = ops.mean(ops.cast(ops.equal(y, pred), "float32"), axis=(1, 2))
    swapped = ops.mean(ops.cast(ops.equal(_swap(y), pred), "float32"), axis=(1, 2))
    return ops.maximum(plain, swapped)


@keras.saving.register_keras_serializable(package="karyoflow")
def pixel_accuracy(y_true, y_pred):
    """Per-image pixel accuracy (no matching: the 3-class mode has no arbitrary order)."""
    pred = ops.argmax(y_pred, axis=-1)
    y = ops.cast(ops.reshape(y_true, ops.shape(pred)), pred.dtype)
    return ops.mean(ops.cast(ops.equal(y, pred), "float32"), axis=(1, 2))
