"""MLflow tracking: store set-up, one parent run per workflow invocation, child runs.

Default store: sqlite under ``results/mlflow/mlflow.db`` with artifacts in
``results/mlflow/artifacts``; a team server via the config's ``mlflow.tracking_uri``
or ``MLFLOW_TRACKING_URI``. The store is initialised once (rule ``mlflow_init`` /
the Snakefile's ``onstart``) before parallel jobs touch it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PARENT_ENV",
    "EpochMetrics",
    "child_run",
    "default_tracking_uri",
    "end_parent_run",
    "flatten",
    "git_commit",
    "init_store",
    "parent_run_id",
    "resolve_tracking_uri",
    "start_parent_run",
]

#: Environment variable carrying the parent run id to the jobs.
PARENT_ENV = "KARYOFLOW_MLFLOW_PARENT_RUN"


def default_tracking_uri(results: str | Path = "results") -> str:
    """``sqlite:///<abs results>/mlflow/mlflow.db``."""
    return f"sqlite:///{(Path(results) / 'mlflow' / 'mlflow.db').resolve()}"


def resolve_tracking_uri(configured: str | None, results: str | Path = "results") -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the config's URI, else the sqlite default."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured or default_tracking_uri(results)


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def init_store(uri: str, experiment: str, results: str | Path = "results") -> str:
    """Create the store (sqlite schema) and the experiment if needed; its id."""
    _quiet()
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:"):
        artifacts = (Path(results) / "mlflow" / "artifacts").resolve()
        artifacts.mkdir(parents=True, exist_ok=True)
        location = artifacts.as_uri()
    return client.create_experiment(experiment, artifact_location=location)


def start_parent_run(
    uri: str, experiment: str, *, name: str, tags: Mapping[str, str] | None = None
) -> str:
    """Create the workflow invocation's parent run; its id."""
    _quiet()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"{uri}: no experiment {experiment!r}; run init_store first")
    run = client.create_run(
        exp.experiment_id, run_name=name, tags={"karyoflow.kind": "workflow", **(tags or {})}
    )
    return run.info.run_id


def end_parent_run(
    uri: str, run_id: str, status: str = "FINISHED", artifacts: list[str | Path] = ()
) -> None:
    """Attach result files (the workflow summary tables) and close the parent run."""
    _quiet()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for path in artifacts:
        if Path(path).exists():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status=status)


def parent_run_id(results: str | Path = "results") -> str | None:
    """The current parent run: from the environment, else the file ``onstart`` wrote."""
    found = os.environ.get(PARENT_ENV)
    if found:
        return found
    marker = Path(results) / "mlflow" / "parent_run.json"
    if marker.exists():
        return json.loads(marker.read_text()).get("run_id")
    return None


@contextlib.contextmanager
def child_run(
    uri: str,
    experiment: str,
    *,
    name: str,
    parent: str | None,
    tags: Mapping[str, str] | None = None,
    results: str | Path = "results",
) -> Iterator[Any]:
    """``with child_run(...) as run:`` — an active MLflow run nested under ``parent``.

    Creates the store and experiment when a job runs without the workflow's ``onstart``
    (e.g. ``snakemake --until train`` on a cluster node).
    """
    _quiet()
    import mlflow

    experiment_id = init_store(uri, experiment, results)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    all_tags = dict(tags or {})
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    with mlflow.start_run(run_name=name, tags=all_tags) as run:
        yield run


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b": "value"}`` strings for ``mlflow.log_params``.

    Examples
    --------
    >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": None})
    {'a.b': '1', 'a.c': '[1, 2]', 'd': 'None'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            out[name] = text[:500]
    return out


def git_commit(cwd: str | Path = ".") -> str:
    """The checkout's commit (with ``-dirty`` when modified), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


class EpochMetrics:
    """Keras callback logging every epoch's metrics to the active MLflow run."""

    def __new__(cls):
        import keras
        import mlflow

        class _EpochMetrics(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                clean = {k: float(v) for k, v in (logs or {}).items() if v is not None}
                mlflow.log_metrics(clean, step=epoch + 1)

        return _EpochMetrics()
