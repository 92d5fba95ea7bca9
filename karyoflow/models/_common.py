"""Building blocks shared by every model in :mod:`karyoflow.models`.

Input convention (all models)
-----------------------------
Models take grey images as ``float32`` tensors of shape ``(batch, H, W, 1)`` holding the raw
``0..255`` values read from HDF5 (no scaling by the caller). The first layer of every model is
a :class:`keras.layers.Rescaling` that maps them to ``[0, 1]``. By default it also *inverts*
them (``x -> 1 - x / 255``): the preprocessed chromosomes are dark on a light, padded
background, so after inversion the background and the padding are ``0`` -- the same value the
convolutions' zero padding uses -- and the chromosome (its dark G-bands brightest) carries
the signal. Pass ``invert=False`` to any model to only divide by 255.

Output convention (all models)
------------------------------
A ``Dense(num_classes)`` layer named ``logits`` followed by an
``Activation("softmax", dtype="float32")`` layer named ``probs``, so the output is a float32
probability vector even under a ``mixed_float16`` / ``mixed_bfloat16`` policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

__all__ = ["classifier_head", "grey_input", "input_size_check", "tile_to_rgb"]


def input_size_check(
    name: str, input_shape: Sequence[int | None], min_hw: tuple[int, int]
) -> tuple[int, int, int]:
    """Validate ``input_shape`` as ``(H, W, 1)`` with ``H, W`` at least ``min_hw``.

    Parameters
    ----------
    name : str
        Model name, used in error messages.
    input_shape : sequence of int
        ``(H, W, C)``; ``C`` must be 1 (grey images).
    min_hw : tuple of int
        Smallest ``(H, W)`` the architecture accepts.

    Returns
    -------
    tuple of int
        ``input_shape`` as a tuple of ints.

    Raises
    ------
    ValueError
        If the shape is not ``(H, W, 1)`` with static ``H, W >= min_hw``.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] != 1:
        raise ValueError(f"{name}: input_shape must be (H, W, 1) for grey images, got {shape}")
    h, w = shape[0], shape[1]
    if h is None or w is None:
        raise ValueError(f"{name}: input_shape needs a static height and width, got {shape}")
    if h < min_hw[0] or w < min_hw[1]:
        raise ValueError(
            f"{name}: input {h}x{w} (HxW) is smaller than the minimum "
            f"{min_hw[0]}x{min_hw[1]} of this architecture; resize the images or pass "
            f"options={{'resize_to': (H, W)}} where the model supports it"
        )
    return (int(h), int(w), 1)


def grey_input(
    input_shape: tuple[int, int, int], *, invert: bool = True, name: str = "image"
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Create the model input and rescale raw ``0..255`` grey values to ``[0, 1]``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W, 1)``.
    invert : bool, default True
        Map ``v -> 1 - v / 255`` (background becomes 0) instead of ``v -> v / 255``.
    name : str, default "image"
        Name of the :class:`keras.Input`.

    Returns
    -------
    inputs, x : keras.KerasTensor
        The input tensor and the rescaled tensor.
    """
    inputs = keras.Input(shape=input_shape, name=name)
    if invert:
        x = layers.Rescaling(scale=-1.0 / 255.0, offset=1.0, name="rescale_invert")(inputs)
    else:
        x = layers.Rescaling(scale=1.0 / 255.0, name="rescale")(inputs)
    return inputs, x


def tile_to_rgb(x: keras.KerasTensor) -> keras.KerasTensor:
    """Repeat a 1-channel tensor to 3 channels (for 3-channel weight files).

    Parameters
    ----------
    x : keras.KerasTensor
        ``(batch, H, W, 1)``.

    Returns
    -------
    keras.KerasTensor
        ``(batch, H, W, 3)``.
    """
    return layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x])


def classifier_head(
    x: keras.KerasTensor, num_classes: int, *, dropout: float = 0.0
) -> keras.KerasTensor:
    """Optional dropout, ``Dense(num_classes)`` logits and a float32 softmax.

    Parameters
    ----------
    x : keras.KerasTensor
        ``(batch, features)``.
    num_classes : int
        Number of classes.
    dropout : float, default 0.0
        Dropout rate before the last dense layer (0 = none).

    Returns
    -------
    keras.KerasTensor
        ``(batch, num_classes)`` float32 probabilities.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(x)
