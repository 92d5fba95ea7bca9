"""Semantic segmentation models for overlapping chromosome pairs (Keras 3, from scratch).

Every model takes raw ``0..255`` grey images ``(batch, H, W, 1)`` (rescaled and, by
default, inverted inside, as the classifiers do: see :mod:`karyoflow.models._common`) and
returns a float32 per-pixel softmax ``(batch, H, W, num_classes)``; ``H`` and ``W`` must
be multiples of ``2 ** depth``.

* :func:`segnet` - encoder-decoder without skip connections: conv blocks with max
  pooling, mirrored by upsampling and conv blocks, dropout after each block (the layout
  of the published Keras SegNet for overlapping pairs, with plain upsampling instead of
  pooling indices).
* :func:`unet` - the same encoder with skip connections (concatenation) to the decoder.

Built by name through :func:`karyoflow.models.registry.build_model`.
"""

from __future__ import annotations

import keras
from keras import layers

from karyoflow.models._common import grey_input

__all__ = [
    "segnet",
    "unet",
]


def _check_shape(name: str, input_shape: tuple[int, ...], depth: int) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] != 1 or shape[0] is None or shape[1] is None:
        raise ValueError(f"{name}: input_shape must be (H, W, 1), got {shape}")
    step = 2**depth
    if shape[0] % step or shape[1] % step:
        raise ValueError(
            f"{name}: input {shape[0]}x{shape[1]} must be a multiple of {step} "
            f"(2 ** depth, depth={depth}); choose overlaps/generate size accordingly"
        )
    return int(shape[0]), int(shape[1]), 1


def _block(x, filters: int, convs: int, batch_norm: bool, name: str):
    for i in range(convs):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{i + 1}"
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i + 1}")(x)
    return x


def _head(x, num_classes: int):
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(x)


def _encoder_decoder(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    filters: int,
    depth: int,
    convs: int,
    dropout: float,
    batch_norm: bool,
    invert: bool,
    skips: bool,
) -> keras.Model:
    shape = _check_shape(name, input_shape, depth)
    if filters < 1 or depth < 1 or convs < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: filters, depth, convs >= 1 and 0 <= dropout < 1")
    inputs, x = grey_input(shape, invert=invert)
    kept = []
    for level in range(depth):
        x = _block(x, filters * 2**level, convs, batch_norm, f"enc{level + 1}")
        kept.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"enc{level + 1}_dropout")(x)
    x = _block(x, filters * 2**depth, convs, batch_norm, "bottleneck")
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        width = filters * 2**level
        if skips:
            x = layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level + 1}")(x)
            x = layers.Concatenate(name=f"skip{level + 1}")([x, kept[level]])
        else:
            x = layers.UpSampling2D(2, name=f"up{level + 1}")(x)
        x = _block(x, width, convs, batch_norm, f"dec{level + 1}")
        if dropout and level:
            x = layers.Dropout(dropout, name=f"dec{level + 1}_dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name=name)


def unet(
    input_shape: tuple[int, int, int],
    num_classes: int = 4,
    *,
    filters: int = 16,
    depth: int = 3,
    convs: int = 2,
    dropout: float = 0.1,
    batch_norm: bool = False,
    invert: bool = True,
) -> keras.Model:
    """U-Net: ``depth`` down/up levels with skip connections.

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W, 1)``, ``H`` and ``W`` multiples of ``2 ** depth``.
    num_classes : int, default 4
        Background, first chromosome, second chromosome, overlap.
    filters : int, default 16
        Filters of the first level (doubled at every level down).
    depth : int, default 3
        Pooling levels.
    convs : int, default 2
        3x3 convolutions per block.
    dropout : float, default 0.1
        After every encoder block, the bottleneck and every decoder block but the last.
    batch_norm : bool, default False
        Batch normalisation after every convolution (about half the CPU speed).
    invert : bool, default True
        Input ``v -> 1 - v / 255`` (bright-field: background 0), else ``v / 255``.

    Returns
    -------
    keras.Model
        Output ``(batch, H, W, num_classes)`` float32 softmax.

    Examples
    --------
    >>> m = unet((32, 32, 1), filters=4, depth=2)
    >>> m.output_shape
    (None, 32, 32, 4)
    """
    return _encoder_decoder(
        "unet",
        input_shape,
        num_classes,
        filters=filters,
        depth=depth,
        convs=convs,
        dropout=dropout,
        batch_norm=batch_norm,
        invert=invert,
        skips=True,
    )


def segnet(
    input_shape: tuple[int, int, int],
    num_classes: int = 4,
    *,
    filters: int = 16,
    depth: int = 3,
    convs: int = 2,
    dropout: float = 0.1,
    batch_norm: bool = False,
    invert: bool = True,
) -> keras.Model:
    """SegNet-style encoder-decoder: max pooling down, upsampling up, no skips.

    Parameters are those of :func:`unet`.

    Examples
    --------
    >>> m = segnet((32, 32, 1), filters=4, depth=2)
    >>> m.output_shape
    (None, 32, 32, 4)
    """
    return _encoder_decoder(
        "segnet",
        input_shape,
        num_classes,
        filters=filters,
        depth=depth,
        convs=convs,
        dropout=dropout,
        batch_norm=batch_norm,
        invert=invert,
        skips=False,
    )
