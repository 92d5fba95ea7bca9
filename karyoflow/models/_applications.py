"""Wrap a :mod:`keras.applications` convolutional base (built from scratch) as a classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import layers

from karyoflow.models._common import classifier_head, grey_input, input_size_check, tile_to_rgb

__all__ = ["application_classifier"]


def application_classifier(
    name: str,
    base_fn: Callable[..., keras.Model],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    min_hw: tuple[int, int],
    resize_to: Sequence[int] | None = None,
    rgb: bool = False,
    pooling: str = "avg",
    fc_units: Sequence[int] = (),
    dropout: float = 0.0,
    invert: bool = True,
) -> keras.Model:
    """Grey input -> (resize) -> ``base_fn(weights=None, include_top=False)`` -> head.

    Parameters
    ----------
    name : str
        Model name.
    base_fn : callable
        A :mod:`keras.applications` constructor, e.g. ``keras.applications.ResNet50``.
    input_shape : sequence of int
        ``(H, W, 1)``.
    num_classes : int
        Number of classes.
    min_hw : tuple of int
        Smallest ``(H, W)`` the base accepts (keras checks it too).
    resize_to : sequence of int, optional
        ``(H, W)`` to bilinearly resize the images to inside the model (e.g. to reach the
        base's minimum size); default: feed them unchanged.
    rgb : bool, default False
        Repeat the grey channel to 3 channels (only needed to load 3-channel weights; the
        bases are built with ``weights=None`` so 1 channel is accepted and is cheaper).
    pooling : {"avg", "max", "flatten"}, default "avg"
        How the last feature map becomes a vector.
    fc_units : sequence of int, default ()
        Hidden dense layers (ReLU) of the head, each followed by ``dropout``.
    dropout : float, default 0.0
        Dropout after each hidden dense layer and before the logits.
    invert : bool, default True
        See :func:`karyoflow.models._common.grey_input`.

    Returns
    -------
    keras.Model
        Uncompiled model.
    """
    shape = tuple(input_shape)
    if resize_to is not None:
        input_size_check(name, shape, (1, 1))
        target = input_size_check(name, (*tuple(resize_to), 1), min_hw)
    else:
        target = input_size_check(name, shape, min_hw)
        shape = target
    inputs, x = grey_input(shape, invert=invert)
    if resize_to is not None:
        x = layers.Resizing(target[0], target[1], interpolation="bilinear", name="resize")(x)
    channels = 1
    if rgb:
        x = tile_to_rgb(x)
        channels = 3
    base = base_fn(
        include_top=False, weights=None, input_shape=(target[0], target[1], channels), pooling=None
    )
    x = base(x)
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    elif pooling == "flatten":
        x = layers.Flatten(name="flatten")(x)
    else:
        raise ValueError(f"{name}: pooling must be 'avg', 'max' or 'flatten', got {pooling!r}")
    for i, units in enumerate(fc_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    # The hidden layers already end in dropout; only add it before the logits when there are none.
    outputs = classifier_head(x, num_classes, dropout=0.0 if fc_units else dropout)
    return keras.Model(inputs, outputs, name=name)
