"""The engine: one way to train and evaluate every task.

- :mod:`~karyoflow.engine.job`: :class:`Job`, the frozen description of a rule job.
- :mod:`~karyoflow.engine.run`: :func:`run_train` and :func:`run_evaluate`.
- :mod:`~karyoflow.engine.task`: the :class:`Task` interface and what its methods return.
- :mod:`~karyoflow.engine.fit`: optimizers, schedules, best-epoch selection, the loops.
- :mod:`~karyoflow.engine.params`: the option-table merge every task uses.
- :mod:`~karyoflow.engine.tracking`: MLflow runs, provenance, the model registry.
- :mod:`~karyoflow.engine.devices`: GPU claim, seeds, op determinism.
- :mod:`~karyoflow.engine.views`: test-time views.
"""

from __future__ import annotations

from karyoflow.engine.job import Job

__all__ = ["Job"]
