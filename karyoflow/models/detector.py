"""A learned chromosome detector for whole metaphases (Keras 3, from scratch).

:func:`centernet` is a small CenterNet-style network ("objects as points"): an
encoder-decoder with skip connections that maps a grey metaphase ``(batch, H, W, 1)``
(raw ``0..255``, dark chromosomes on a light background; rescaled and inverted inside)
to a map at 1/``stride`` of the input with 5 channels per cell:

* channel 0 - the probability that a chromosome's box centre lies in the cell (sigmoid);
* channels 1-2 - the sub-cell offset ``(dx, dy)`` of that centre, in cells;
* channels 3-4 - ``log`` of the box width and height, in cells.

Centres of crossing and touching chromosomes are distinct points even where their
pixels form one connected blob, which is what the classical watershed detector
(:mod:`karyoflow.tasks.detection.segment`) cannot separate. The encoding and decoding of boxes
live in :mod:`karyoflow.tasks.detection.centernet`.

>>> m = centernet((64, 64, 1), filters=(8, 8, 8, 8))
>>> m.output_shape
(None, 16, 16, 5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from karyoflow.models._common import grey_input

__all__ = ["centernet"]


def _conv(x, filters: int, name: str, *, stride: int = 1, dilation: int = 1):
    x = layers.Conv2D(
        filters,
        3,
        strides=stride,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def centernet(
    input_shape: tuple[int | None, int | None, int] = (None, None, 1),
    *,
    filters: Sequence[int] = (16, 32, 64, 96),
    head: int = 32,
    invert: bool = True,
    prior: float = 0.1,
    name: str = "centernet",
) -> keras.Model:
    """Build the CenterNet-style detector (output stride 4).

    Parameters
    ----------
    input_shape : tuple, default (None, None, 1)
        ``(H, W, 1)``; ``None`` accepts any size, but ``H`` and ``W`` must be multiples
        of 16 at call time (the encoder halves the size four times).
    filters : sequence of 4 int, default (16, 32, 64, 96)
        Channels at strides 2, 4, 8 and 16. The stride-16 stage has a dilated second
        convolution, so its receptive field covers a long bent chromosome and its
        crossings.
    head : int, default 32
        Channels of the 3x3 convolution in front of each output head.
    invert : bool, default True
        The input is dark-on-light (set ``False`` for light-on-dark images).
    prior : float, default 0.1
        Initial centre probability (bias of the heat-map head), as in the paper.
    name : str, default "centernet"
        Model name.

    Returns
    -------
    keras.Model
        Output ``(batch, H/4, W/4, 5)``: centre probability, offset, log size.
    """
    if len(filters) != 4:
        raise ValueError(f"centernet: filters must have 4 entries, got {list(filters)}")
    f2, f4, f8, f16 = (int(f) for f in filters)
    if min(f2, f4, f8, f16, head) < 1:
        raise ValueError("centernet: filters and head must be positive")
    if not 0.0 < prior < 1.0:
        raise ValueError(f"centernet: prior must be in (0, 1), got {prior}")
    inputs, x = grey_input(tuple(input_shape), invert=invert)  # type: ignore[arg-type]
    s2 = _conv(x, f2, "s2", stride=2)
    s4 = _conv(_conv(s2, f4, "s4a", stride=2), f4, "s4b")
    s8 = _conv(_conv(s4, f8, "s8a", stride=2), f8, "s8b")
    s16 = _conv(_conv(s8, f16, "s16a", stride=2), f16, "s16b", dilation=2)
    s16 = _conv(s16, f16, "s16c", dilation=4)
    u8 = layers.UpSampling2D(2, interpolation="bilinear", name="up8")(s16)
    u8 = _conv(layers.Concatenate(name="cat8")([u8, s8]), f8, "dec8")
    u4 = layers.UpSampling2D(2, interpolation="bilinear", name="up4")(u8)
    u4 = _conv(layers.Concatenate(name="cat4")([u4, s4]), f4, "dec4")
    h = _conv(u4, head, "heat_head")
    heat = layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(-math.log((1 - prior) / prior)),
        name="heat",
        dtype="float32",
    )(h)
    g = _conv(u4, head, "box_head")
    box = layers.Conv2D(4, 1, name="box", dtype="float32")(g)
    out = layers.Concatenate(name="centernet_out", dtype="float32")([heat, box])
    return keras.Model(inputs, out, name=name)
