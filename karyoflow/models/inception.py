"""InceptionV3 conv base (``keras.applications.InceptionV3(weights=None)``) + GAP + dense."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from karyoflow.models._applications import application_classifier

__all__ = ["DEFAULT_INPUT_SIZE", "MIN_INPUT_SIZE", "inception_v3"]

# keras.applications.InceptionV3 rejects inputs under 75x75: its stem and reduction blocks use
# 'valid' 3x3 convolutions and pools (75 -> 37 -> 35 -> 17 -> 8 -> 3 -> 1), so smaller inputs
# would collapse to nothing. The default keeps the 2:1 (HxW) aspect ratio of the other models'
# 96x48 at the smallest legal width: 150x75.
DEFAULT_INPUT_SIZE = (150, 75)
MIN_INPUT_SIZE = (75, 75)


def inception_v3(
    input_shape: Sequence[int] = (*DEFAULT_INPUT_SIZE, 1),
    num_classes: int = 24,
    *,
    dropout: float = 0.0,
    resize_to: Sequence[int] | None = None,
    rgb: bool = False,
    invert: bool = True,
) -> keras.Model:
    """InceptionV3 (Szegedy et al. 2016) from scratch for grey chromosome images.

    Parameters
    ----------
    input_shape : sequence of int, default (150, 75, 1)
        ``(H, W, 1)``; both at least 75 unless ``resize_to`` is given (e.g. feed 96x48 images
        with ``resize_to=(150, 75)``).
    num_classes : int, default 24
        Number of classes.
    dropout : float, default 0.0
        Dropout before the logits.
    resize_to : sequence of int, optional
        Resize ``(H, W)`` inside the model first.
    rgb : bool, default False
        Tile grey to 3 channels (for 3-channel weight files).
    invert : bool, default True
        See :func:`karyoflow.models._common.grey_input`.

    Returns
    -------
    keras.Model
        Uncompiled model; the conv base is the nested sub-model ``inception_v3``.
    """
    return application_classifier(
        "inception_v3",
        keras.applications.InceptionV3,
        input_shape,
        num_classes,
        min_hw=MIN_INPUT_SIZE,
        resize_to=resize_to,
        rgb=rgb,
        pooling="avg",
        dropout=dropout,
        invert=invert,
    )
