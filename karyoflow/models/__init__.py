"""Chromosome classifiers (Keras 3), all built from scratch -- nothing is downloaded.

Every model takes ``float32`` images of shape ``(batch, H, W, 1)`` with raw ``0..255`` grey
values (it rescales them itself, see :mod:`karyoflow.models._common`) and returns a float32
softmax over the classes. Use :func:`build_model` to build one by name.
"""

from __future__ import annotations

from karyoflow.models.hu2019 import hu2019
from karyoflow.models.inception import inception_v3
from karyoflow.models.karyonet import karyonet_fast
from karyoflow.models.registry import (
    MODELS,
    build_model,
    default_input_size,
    measure_throughput,
    min_input_size,
    model_options,
)
from karyoflow.models.resnet import resnet18, resnet50
from karyoflow.models.vgg import vgg16

__all__ = [
    "MODELS",
    "build_model",
    "default_input_size",
    "hu2019",
    "inception_v3",
    "karyonet_fast",
    "measure_throughput",
    "min_input_size",
    "model_options",
    "resnet18",
    "resnet50",
    "vgg16",
]
