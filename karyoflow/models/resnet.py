"""ResNet18 (basic blocks, written here: keras has none) and ResNet50 (``keras.applications``).

Both are built from scratch; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from karyoflow.models._applications import application_classifier
from karyoflow.models._common import classifier_head, grey_input, input_size_check
from karyoflow.models.table import MODEL_SPECS

__all__ = [
    "resnet18",
    "resnet50",
]


def _basic_block(x: keras.KerasTensor, filters: int, stride: int, name: str) -> keras.KerasTensor:
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    conv1 = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_c1"
    )
    y = conv1(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_c2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet18(
    input_shape: Sequence[int] = (*MODEL_SPECS["resnet18"].default_input, 1),
    num_classes: int = 24,
    *,
    base_filters: int = 64,
    blocks: Sequence[int] = (2, 2, 2, 2),
    dropout: float = 0.0,
    invert: bool = True,
) -> keras.Model:
    """ResNet18 (He et al. 2016) with basic blocks, from scratch.

    Parameters
    ----------
    input_shape : sequence of int, default (96, 48, 1)
        ``(H, W, 1)``; raw 0..255 grey values.
    num_classes : int, default 24
        Number of classes.
    base_filters : int, default 64
        Filters of the stem and first stage; doubled in each later stage.
    blocks : sequence of int, default (2, 2, 2, 2)
        Basic blocks per stage (``(3, 4, 6, 3)`` gives ResNet34).
    dropout : float, default 0.0
        Dropout before the logits.
    invert : bool, default True
        See :func:`karyoflow.models._common.grey_input`.

    Returns
    -------
    keras.Model
        Uncompiled model.
    """
    shape = input_size_check("resnet18", input_shape, MODEL_SPECS["resnet18"].min_input)
    inputs, x = grey_input(shape, invert=invert)
    x = layers.Conv2D(base_filters, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(
        x
    )
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, n in enumerate(blocks):
        filters = base_filters * 2**stage
        for b in range(n):
            stride = 2 if (stage > 0 and b == 0) else 1
            x = _basic_block(x, filters, stride, name=f"stage{stage + 1}_block{b + 1}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classifier_head(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name="resnet18")


def resnet50(
    input_shape: Sequence[int] = (*MODEL_SPECS["resnet50"].default_input, 1),
    num_classes: int = 24,
    *,
    dropout: float = 0.0,
    resize_to: Sequence[int] | None = None,
    rgb: bool = False,
    invert: bool = True,
) -> keras.Model:
    """ResNet50 conv base (``keras.applications.ResNet50(weights=None)``) + GAP + dense.

    Parameters
    ----------
    input_shape : sequence of int, default (96, 48, 1)
        ``(H, W, 1)``; both at least 32 unless ``resize_to`` is given.
    num_classes : int, default 24
        Number of classes.
    dropout : float, default 0.0
        Dropout before the logits.
    resize_to, rgb, invert
        As for :func:`karyoflow.models._applications.application_classifier`.

    Returns
    -------
    keras.Model
        Uncompiled model; the conv base is the nested sub-model ``resnet50``.
    """
    return application_classifier(
        "resnet50",
        keras.applications.ResNet50,
        input_shape,
        num_classes,
        min_hw=MODEL_SPECS["resnet50"].min_input,
        resize_to=resize_to,
        rgb=rgb,
        pooling="avg",
        dropout=dropout,
        invert=invert,
    )
