"""The tasks: what differs between training and evaluating each kind of model.

Each task lives in ``karyoflow/tasks/<task>/``: a ``task.py`` with its option table and
its task object (the interface :class:`karyoflow.engine.task.Task`), beside its science
modules (data pipelines, losses, metrics, decoding, figures). The engine
(:mod:`karyoflow.engine`) runs them all the same way.

>>> sorted(TASK_MODULES)
['centromere', 'classification', 'detection', 'segmentation']
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TASK_MODULES", "task_for"]

#: Task name -> (module, task object) in that module.
TASK_MODULES: dict[str, tuple[str, str]] = {
    "classification": ("karyoflow.tasks.classification.task", "CLASSIFICATION"),
    "centromere": ("karyoflow.tasks.centromere.task", "CENTROMERE"),
    "segmentation": ("karyoflow.tasks.segmentation.task", "SEGMENTATION"),
    "detection": ("karyoflow.tasks.detection.task", "DETECTION"),
}


def task_for(name: str) -> Any:
    """The task object of ``name`` (its module imported on first use).

    Raises
    ------
    ValueError
        An unknown task.
    """
    try:
        module, attr = TASK_MODULES[name]
    except KeyError:
        raise ValueError(
            f"unknown task {name!r}; choose one of: {', '.join(TASK_MODULES)}"
        ) from None
    return getattr(importlib.import_module(module), attr)
