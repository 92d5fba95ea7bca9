"""VGG16 conv base (``keras.applications.VGG16(weights=None)``) with a configurable head."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from karyoflow.models._applications import application_classifier
from karyoflow.models.table import MODEL_SPECS

__all__ = ["vgg16"]


def vgg16(
    input_shape: Sequence[int] = (*MODEL_SPECS["vgg16"].default_input, 1),
    num_classes: int = 24,
    *,
    fc_units: Sequence[int] = (512, 256),
    dropout: float = 0.5,
    pooling: str = "flatten",
    resize_to: Sequence[int] | None = None,
    rgb: bool = False,
    invert: bool = True,
) -> keras.Model:
    """VGG16 (Simonyan & Zisserman 2015) from scratch for grey chromosome images.

    Parameters
    ----------
    input_shape : sequence of int, default (96, 48, 1)
        ``(H, W, 1)``; both at least 32 unless ``resize_to`` is given.
    num_classes : int, default 24
        Number of classes.
    fc_units : sequence of int, default (512, 256)
        Hidden fully-connected layers. The paper's head is ``(4096, 4096)``; the smaller
        default keeps the head (~0.9 M instead of ~23 M parameters at 96x48) trainable on a
        CPU and is plenty for 24 classes.
    dropout : float, default 0.5
        Dropout after each hidden fully-connected layer.
    pooling : {"flatten", "avg", "max"}, default "flatten"
        ``"flatten"`` as in VGG (3x1x512 = 1536 features at 96x48).
    resize_to, rgb, invert
        As for :func:`karyoflow.models._applications.application_classifier`.

    Returns
    -------
    keras.Model
        Uncompiled model; the conv base is the nested sub-model ``vgg16``.
    """
    return application_classifier(
        "vgg16",
        keras.applications.VGG16,
        input_shape,
        num_classes,
        min_hw=MODEL_SPECS["vgg16"].min_input,
        resize_to=resize_to,
        rgb=rgb,
        pooling=pooling,
        fc_units=fc_units,
        dropout=dropout,
        invert=invert,
    )
