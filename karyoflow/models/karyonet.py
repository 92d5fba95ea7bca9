"""``karyonet_fast``: a compact CNN tuned for accuracy per CPU-minute on chromosome images.

Design (default 96x48 input, ``width=1``, ``depth=1``)
------------------------------------------------------
=========  ===================================  ===========  ======
stage      block                                out (HxWxC)  stride
=========  ===================================  ===========  ======
stem       conv 3x3, BN, ReLU                   48x24x16     2x2
1          fused-MBConv x1 (expand 1)           24x12x24     2x2
2          fused-MBConv x2 (expand 3, residual) 12x6x40      2x2
3          fused-MBConv x1 (expand 1)           12x3x64      1x2
4          fused-MBConv x1 (expand 1)           12x3x96      1x1
head       conv 1x1, BN, ReLU                   12x3x128
band head  GAP (128) ++ row profile (12 x 16)   320
=========  ===================================  ===========  ======

About 0.15 M parameters and ~8 M multiply-adds per 96x48 image.

* **Fused-MBConv blocks** (EfficientNetV2): ``conv 3x3 (expand) -> BN -> ReLU -> conv 1x1
  (project) -> BN`` (+ identity when the shape allows). Measured on the 2-core CPU,
  MobileNetV2-style blocks (1x1 expand + depthwise 3x3) in the last stages made training
  ~40 % *slower* despite fewer multiply-adds -- TensorFlow's CPU depthwise kernels,
  especially their gradients, are memory bound and per-op overhead dominates at 12x6 -- so
  every block is fused, and the network is kept shallow rather than deep and thin.
* **Aspect-aware downsampling**: after 12x6 only the *width* is halved, so the last stages
  keep 12 rows (8 input pixels each) along the chromosome's long axis, where G-bands run.
* **Band head**: besides global average pooling the head keeps a *profile* -- the features
  averaged across the width, reduced to 16 channels per row and flattened -- so the classifier
  sees *where* along the (oriented, short-arm-up) chromosome each band pattern lies, like the
  classical density-profile features, for 12*16*24 extra weights. It needs a static height.
* Optional squeeze-excitation (``se=True``); off by default: it cost ~30 % of the training
  throughput on the 2-core CPU.
* ReLU (cheaper than swish on a CPU), BatchNorm everywhere, dropout before the logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from karyoflow.models._common import classifier_head, grey_input, input_size_check
from karyoflow.models.table import MODEL_SPECS

__all__ = ["karyonet_fast"]


# (out_channels, blocks, first stride (h, w), expansion)
_STAGES: tuple[tuple[int, int, tuple[int, int], int], ...] = (
    (24, 1, (2, 2), 1),
    (40, 2, (2, 2), 3),
    (64, 1, (1, 2), 1),
    (96, 1, (1, 1), 1),
)
_STEM = 16
_HEAD = 128
_PROFILE = 16


def _channels(c: float, divisor: int = 8) -> int:
    """Round ``c`` to a multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(c + divisor / 2) // divisor * divisor)


def _conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel: int,
    stride: int | tuple[int, int],
    name: str,
    act: str | None = "relu",
) -> keras.KerasTensor:
    x = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if act:
        x = layers.Activation(act, name=f"{name}_{act}")(x)
    return x


def _squeeze_excite(x: keras.KerasTensor, reduced: int, name: str) -> keras.KerasTensor:
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    s = layers.Conv2D(reduced, 1, activation="relu", name=f"{name}_se_reduce")(s)
    s = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_se_expand")(s)
    return layers.Multiply(name=f"{name}_se")([x, s])


def _fused_mbconv(
    x: keras.KerasTensor,
    out: int,
    stride: tuple[int, int],
    expansion: int,
    se: bool,
    act: str,
    name: str,
) -> keras.KerasTensor:
    c_in = x.shape[-1]
    y = _conv_bn(x, _channels(c_in * expansion), 3, stride, f"{name}_expand", act)
    if se:
        y = _squeeze_excite(y, max(4, c_in // 4), name)
    y = _conv_bn(y, out, 1, 1, f"{name}_project", act=None)
    if stride == (1, 1) and c_in == out:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def karyonet_fast(
    input_shape: Sequence[int] = (*MODEL_SPECS["karyonet_fast"].default_input, 1),
    num_classes: int = 24,
    *,
    width: float = 1.0,
    depth: float = 1.0,
    dropout: float = 0.2,
    se: bool = False,
    band_head: bool = True,
    activation: str = "relu",
    invert: bool = True,
) -> keras.Model:
    """Build ``karyonet_fast`` (see the module docstring for the architecture).

    Parameters
    ----------
    input_shape : sequence of int, default (96, 48, 1)
        ``(H, W, 1)``; raw 0..255 grey values (rescaled inside the model).
    num_classes : int, default 24
        Number of classes.
    width : float, default 1.0
        Channel multiplier (channels rounded to multiples of 8).
    depth : float, default 1.0
        Block-count multiplier per stage (rounded up).
    dropout : float, default 0.2
        Dropout before the logits.
    se : bool, default False
        Squeeze-excitation in every block.
    band_head : bool, default True
        Add the per-row profile features to global average pooling (needs a static height).
    activation : str, default "relu"
        Activation of all hidden layers (e.g. ``"swish"``).
    invert : bool, default True
        See :func:`karyoflow.models._common.grey_input`.

    Returns
    -------
    keras.Model
        Uncompiled model, ``(batch, H, W, 1) -> (batch, num_classes)`` softmax.
    """
    if width <= 0 or depth <= 0:
        raise ValueError(f"karyonet_fast: width and depth must be > 0, got {width}, {depth}")
    shape = input_size_check("karyonet_fast", input_shape, MODEL_SPECS["karyonet_fast"].min_input)
    inputs, x = grey_input(shape, invert=invert)
    x = _conv_bn(x, _channels(_STEM * width), 3, 2, "stem", activation)
    for s, (out, blocks, stride, expansion) in enumerate(_STAGES, start=1):
        out_c = _channels(out * width)
        for b in range(max(1, math.ceil(blocks * depth))):
            x = _fused_mbconv(
                x,
                out_c,
                stride if b == 0 else (1, 1),
                expansion,
                se,
                activation,
                name=f"stage{s}_block{b + 1}",
            )
    x = _conv_bn(x, _channels(_HEAD * width), 1, 1, "head", activation)
    pooled = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if band_head:
        rows = layers.AveragePooling2D(pool_size=(1, x.shape[2]), name="band_rows")(x)
        rows = _conv_bn(rows, _PROFILE, 1, 1, "band_profile", activation)
        profile = layers.Flatten(name="band_flatten")(rows)
        pooled = layers.Concatenate(name="band_concat")([pooled, profile])
    outputs = classifier_head(pooled, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name="karyonet_fast")
