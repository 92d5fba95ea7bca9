"""The tasks: what differs between training and evaluating each kind of model.

Each task is a package ``karyoflow/tasks/<task>/`` whose ``task.py`` holds its option
table and its task object ``TASK`` (the interface :class:`karyoflow.engine.task.Task`),
beside its science modules (data pipelines, losses, metrics, decoding, figures). The
engine (:mod:`karyoflow.engine`) runs them all the same way; a new package here is a
new task (:func:`task_names` lists them).

>>> task_names()
['centromere', 'classification', 'detection', 'segmentation']
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Any

__all__ = ["task_for", "task_names"]


def task_names() -> list[str]:
    """The tasks: every package of :mod:`karyoflow.tasks` with a ``task`` module."""
    here = importlib.import_module(__name__).__path__
    return sorted(
        m.name
        for m in pkgutil.iter_modules(here)
        if m.ispkg and importlib.util.find_spec(f"{__name__}.{m.name}.task") is not None
    )


def task_for(name: str) -> Any:
    """The task object of ``name`` (``karyoflow.tasks.<name>.task.TASK``).

    Raises
    ------
    ValueError
        An unknown task.
    """
    if name not in task_names():
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(task_names())}")
    return importlib.import_module(f"{__name__}.{name}.task").TASK
