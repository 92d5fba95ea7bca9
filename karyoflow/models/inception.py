"""InceptionV3 conv base (``keras.applications.InceptionV3(weights=None)``) + GAP + dense."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from karyoflow.models._applications import application_classifier
from karyoflow.models.table import MODEL_SPECS

__all__ = ["inception_v3"]


def inception_v3(
    input_shape: Sequence[int] = (*MODEL_SPECS["inception_v3"].default_input, 1),
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
    resize_to, rgb, invert
        As for :func:`karyoflow.models._applications.application_classifier`.

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
        min_hw=MODEL_SPECS["inception_v3"].min_input,
        resize_to=resize_to,
        rgb=rgb,
        pooling="avg",
        dropout=dropout,
        invert=invert,
    )
