"""The chromosome CNN of Hu et al. (2019).

Hu, X., Yi, W., Jiang, L., et al. "Classification of metaphase chromosomes using deep
convolutional neural network." *Journal of Computational Biology* 26(5), 2019,
doi:10.1089/cmb.2018.0212.

The paper describes "6 convolutional layers, 3 pooling layers, 4 dropout layers and 2 fully
connected layers" with a 24-way softmax, trained with RMSprop (learning rate 1e-3) on
220x100 (HxW) chromosome images. Three blocks of ``conv 3x3 -> conv 5x5`` (ReLU), max-pool
2x2 and dropout 0.25, then dense 256 (ReLU), dropout 0.5 and the softmax reproduce that
layout. The abstract does not give the filter counts; this implementation uses 32/64/128
(doubling per block, the usual choice) -- configurable through ``filters``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from karyoflow.models._common import classifier_head, grey_input, input_size_check
from karyoflow.models.table import MODEL_SPECS

__all__ = ["hu2019"]


def hu2019(
    input_shape: Sequence[int] = (*MODEL_SPECS["hu2019"].default_input, 1),
    num_classes: int = 24,
    *,
    filters: Sequence[int] = (32, 64, 128),
    dropout_conv: float = 0.25,
    dropout_dense: float = 0.5,
    dense_units: int = 256,
    invert: bool = True,
) -> keras.Model:
    """Build the Hu et al. (2019) CNN from scratch.

    Parameters
    ----------
    input_shape : sequence of int, default (220, 100, 1)
        ``(H, W, 1)``; raw 0..255 grey values (rescaled inside the model).
    num_classes : int, default 24
        Number of output classes.
    filters : sequence of int, default (32, 64, 128)
        Filters of the two convolutions in each block (one entry per block).
    dropout_conv : float, default 0.25
        Dropout after each pooling layer.
    dropout_dense : float, default 0.5
        Dropout after the hidden dense layer.
    dense_units : int, default 256
        Units of the hidden dense layer.
    invert : bool, default True
        Rescale as ``1 - v/255`` (True) or ``v/255`` (False); see :mod:`._common`.

    Returns
    -------
    keras.Model
        Uncompiled model, ``(batch, H, W, 1) -> (batch, num_classes)`` softmax.

    Notes
    -----
    The paper trains with ``keras.optimizers.RMSprop(learning_rate=1e-3)`` and categorical
    cross-entropy.
    """
    shape = input_size_check("hu2019", input_shape, MODEL_SPECS["hu2019"].min_input)
    inputs, x = grey_input(shape, invert=invert)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{i}_conv3x3")(x)
        x = layers.Conv2D(f, 5, padding="same", activation="relu", name=f"block{i}_conv5x5")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = layers.Dropout(dropout_conv, name=f"block{i}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    outputs = classifier_head(x, num_classes, dropout=dropout_dense)
    return keras.Model(inputs, outputs, name="hu2019")
