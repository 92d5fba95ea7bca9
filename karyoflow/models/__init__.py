"""The networks of every task (Keras 3), all built from scratch -- nothing is downloaded.

Every model takes ``float32`` images of shape ``(batch, H, W, 1)`` with raw ``0..255`` grey
values (it rescales them itself, see :mod:`karyoflow.models._common`). Classifiers return a
float32 softmax over the classes; centromere models a point, segmentation models a
per-pixel softmax, the detector heat maps. :data:`MODEL_SPECS` is the one table of them;
use :func:`build_model` to build one by name (each network's function lives in its
module: ``karyoflow.models.resnet.resnet18``...).

The names below are imported on first use, so that reading the model table
(:mod:`karyoflow.models.table`, when the workflow builds its DAG) does not import Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "MODELS": "registry",
    "MODEL_SPECS": "table",
    "build_model": "registry",
    "default_input_size": "registry",
    "measure_throughput": "registry",
    "min_input_size": "registry",
    "model_options": "registry",
    "models_for": "table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
