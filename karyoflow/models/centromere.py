"""Centromere localisation models: one chromosome image in, the centromere ``(x, y)`` out.

Both models follow the input convention of :mod:`karyoflow.models._common` (raw 0..255
grey ``(H, W, 1)``, inverted and rescaled inside) and output a float32 ``(batch, 2)``
tensor named ``point``: ``(x, y)`` in **pixel-centre coordinates of the input image**
(pixel ``i`` spans ``[i - 0.5, i + 0.5]``), the convention of the preprocessed HDF5
``centromere`` dataset. Losses are therefore pixel distances.

Only standard Keras layers are used, so ``model.keras`` files load without custom
objects.

Built by name through :func:`karyoflow.models.registry.build_model`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from karyoflow.models._common import grey_input, input_size_check
from karyoflow.models.table import MODEL_SPECS

__all__ = [
    "centromere_cnn",
    "centromere_heatmap",
]


def centromere_cnn(
    input_shape: tuple[int, int, int],
    *,
    filters: tuple[int, ...] = (16, 32, 64, 64),
    dense: int = 128,
    dropout: float = 0.2,
    invert: bool = True,
) -> keras.Model:
    """The published regressor: four conv layers, a dense layer, a 2-unit linear head.

    Each of the four stages is conv 3x3 (same padding, ReLU) + 2x2 max-pool; then
    flatten, ``Dense(dense, relu)``, dropout and ``Dense(2)`` with a linear activation.
    The two linear outputs are in units of half the image size around its centre and
    are mapped to pixels by a fixed (untrainable) rescaling, so the head starts at the
    image centre and its weights see well-scaled targets.

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W, 1)``, at least 16 x 16.
    filters : tuple of int, default (16, 32, 64, 64)
        Channels of the four conv layers.
    dense : int, default 128
        Units of the hidden dense layer (0: none).
    dropout : float, default 0.2
        Dropout before the head.
    invert : bool, default True
        See :func:`karyoflow.models._common.grey_input`.

    Returns
    -------
    keras.Model
        Output ``point``: float32 ``(batch, 2)`` ``(x, y)`` in input pixels.

    Examples
    --------
    >>> m = centromere_cnn((32, 16, 1))
    >>> m.output_shape, len([l for l in m.layers if isinstance(l, keras.layers.Conv2D)])
    ((None, 2), 4)
    """
    h, w, _ = input_size_check(
        "centromere_cnn", input_shape, MODEL_SPECS["centromere_cnn"].min_input
    )
    if len(filters) != 4:
        raise ValueError(f"centromere_cnn: filters must list 4 conv widths, got {filters!r}")
    inputs, x = grey_input((h, w, 1), invert=invert)
    for i, f in enumerate(filters):
        x = layers.Conv2D(int(f), 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    if dense:
        x = layers.Dense(int(dense), activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(float(dropout), name="head_dropout")(x)
    x = layers.Dense(2, activation="linear", name="linear_head", dtype="float32")(x)
    point = _to_pixels(x, h, w)
    return keras.Model(inputs, point, name="centromere_cnn")


def _to_pixels(x: keras.KerasTensor, h: int, w: int) -> keras.KerasTensor:
    """``(u, v)`` in half-sizes around the centre -> ``(x, y)`` pixels (fixed layer)."""
    scale = layers.Dense(2, use_bias=True, trainable=False, name="point", dtype="float32")
    out = scale(x)
    scale.set_weights(
        [np.diag([w / 2.0, h / 2.0]).astype("float32"), np.array([(w - 1) / 2.0, (h - 1) / 2.0])]
    )
    return out


def _conv_bn(x: keras.KerasTensor, filters: int, name: str, stride: int = 1) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=name)(x)
    # momentum 0.9: the moving statistics settle within the few epochs of a small run
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def centromere_heatmap(
    input_shape: tuple[int, int, int],
    *,
    width: int = 16,
    stride: int = 4,
    temperature: float = 1.0,
    invert: bool = True,
) -> keras.Model:
    """Heat-map regression with a soft-argmax: a small U-Net-like net, then E[(x, y)].

    A stride-2 stem and three encoder stages (conv-BN-ReLU pairs with ``width``,
    ``2 width`` and ``4 width`` channels at 1/2, 1/4 and 1/8 of the input), a decoder
    back to ``1/stride`` of the input joined with the encoder's skip connections, and a
    1x1 conv to one logit map. A softmax over all its positions gives a probability map;
    the output is its expected position (soft-argmax), computed by a fixed Dense layer
    whose kernel holds the pixel-centre coordinates of every heat-map cell, so the
    prediction is sub-pixel even on a coarse map. The map is trained end to end by a
    pixel-space loss on ``(x, y)``; no heat-map target is needed.

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W, 1)``; H and W must be divisible by 8.
    width : int, default 16
        Channels of the first stage.
    stride : int, default 4
        Heat-map resolution: 2 (half), 4 (quarter) or 8 (eighth of the input).
    temperature : float, default 1.0
        Logits are divided by it before the softmax.
    invert : bool, default True
        See :func:`karyoflow.models._common.grey_input`.

    Returns
    -------
    keras.Model
        As :func:`centromere_cnn`: output ``point``, ``(x, y)`` in input pixels.

    Examples
    --------
    >>> m = centromere_heatmap((32, 16, 1), width=8)
    >>> m.output_shape
    (None, 2)
    """
    h, w, _ = input_size_check(
        "centromere_heatmap", input_shape, MODEL_SPECS["centromere_cnn"].min_input
    )
    if stride not in (2, 4, 8):
        raise ValueError(f"centromere_heatmap: stride must be 2, 4 or 8, got {stride}")
    if h % 8 or w % 8:
        raise ValueError(f"centromere_heatmap: input {h}x{w} must be divisible by 8")
    inputs, x = grey_input((h, w, 1), invert=invert)
    c = int(width)
    s2 = _conv_bn(_conv_bn(x, c, "stem", stride=2), c, "enc2")  # 1/2
    s4 = _conv_bn(_conv_bn(s2, 2 * c, "enc4a", stride=2), 2 * c, "enc4b")  # 1/4
    s8 = _conv_bn(_conv_bn(s4, 4 * c, "enc8a", stride=2), 4 * c, "enc8b")  # 1/8
    y = s8
    skips = {2: s2, 4: s4}
    level = 8
    while level > stride:
        level //= 2
        y = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(y)
        y = layers.Concatenate(name=f"skip{level}")([y, skips[level]])
        y = _conv_bn(y, c, f"dec{level}")
    logits = layers.Conv2D(1, 1, name="heatmap_logits", dtype="float32")(y)
    hh, ww = h // stride, w // stride
    flat = layers.Reshape((hh * ww,), name="flatten_map")(logits)
    if temperature != 1.0:
        flat = layers.Rescaling(1.0 / float(temperature), name="temperature")(flat)
    prob = layers.Softmax(name="heatmap", dtype="float32")(flat)
    soft_argmax = layers.Dense(2, use_bias=False, trainable=False, name="point", dtype="float32")
    point = soft_argmax(prob)
    soft_argmax.set_weights([_grid_coordinates(hh, ww, stride)])
    return keras.Model(inputs, point, name="centromere_heatmap")


def _grid_coordinates(hh: int, ww: int, stride: int) -> np.ndarray:
    """``(hh * ww, 2)`` pixel-centre ``(x, y)`` of every heat-map cell, row-major.

    A cell of stride ``s`` covers input pixels ``s*j .. s*j + s - 1``; its centre is
    ``s*j + (s - 1) / 2``.

    Examples
    --------
    >>> _grid_coordinates(2, 2, 2).tolist()
    [[0.5, 0.5], [2.5, 0.5], [0.5, 2.5], [2.5, 2.5]]
    """
    ys, xs = np.mgrid[0:hh, 0:ww].astype(np.float32)
    off = (stride - 1) / 2.0
    return np.stack([xs.ravel() * stride + off, ys.ravel() * stride + off], axis=1)
