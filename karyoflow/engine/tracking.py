"""MLflow tracking: store set-up, one parent run per workflow invocation, child runs.

Default store: sqlite under ``results/mlflow/mlflow.db`` with artifacts in
``results/mlflow/artifacts``; a team server via the config's ``mlflow.tracking_uri``
or ``MLFLOW_TRACKING_URI``. The store is initialised once (rule ``mlflow_init`` /
the Snakefile's ``onstart``) before parallel jobs touch it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CHAMPION",
    "CONFIG_HASH_ENV",
    "PARENT_ENV",
    "TRACKING_ENV",
    "EpochMetrics",
    "Registration",
    "artifact_dir",
    "child_run",
    "config_hash",
    "default_tracking_uri",
    "dvc_md5",
    "end_parent_run",
    "evaluation_summary",
    "flatten",
    "git_commit",
    "init_store",
    "logged_model_uri",
    "parent_run_id",
    "register_best",
    "register_evaluated",
    "registered_name",
    "resolve_tracking_uri",
    "save_model",
    "start_parent_run",
    "store_lock",
]

#: Environment variable carrying the parent run id to the jobs.
PARENT_ENV = "KARYOFLOW_MLFLOW_PARENT_RUN"
#: Environment variable carrying the workflow's config hash to the jobs (set by the Snakefile).
CONFIG_HASH_ENV = "KARYOFLOW_CONFIG_HASH"
#: Every environment variable that points MLflow and the workflow's runs somewhere: a
#: process started with them logs where they point, not to its configured store.
TRACKING_ENV: tuple[str, ...] = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    PARENT_ENV,
    CONFIG_HASH_ENV,
)
#: Registry alias of the best version of each task's model.
CHAMPION = "champion"


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


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on a sqlite store (``<db>.lock`` beside it, ``flock``) while
    it is created or migrated: MLflow's schema set-up is not safe when two processes
    do it at once (alembic "duplicate column", a half-migrated database). Other URIs
    (an ``mlflow server``) need no lock. ``flock`` holds between processes of one
    machine (and on NFS v4); a store shared by several machines belongs on a server."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def init_store(uri: str, experiment: str, results: str | Path = "results") -> str:
    """Create the store (sqlite schema) and the experiment if needed, under
    :func:`store_lock`; the experiment's id."""
    _quiet()
    from mlflow.tracking import MlflowClient

    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)  # creates / migrates the schema
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


def artifact_dir(path: str | Path, root: str | Path = "results") -> str | None:
    """Artifact folder that keeps a result file's place under ``root``.

    Several jobs write files of the same name (``evaluate/<dataset>/<model>/metrics.json``);
    logged into one run they would overwrite each other, so each goes into the folder it
    has under the results root.

    Examples
    --------
    >>> artifact_dir("results/evaluate/voc/karyonet_fast/metrics.json")
    'evaluate/voc/karyonet_fast'
    >>> artifact_dir("results/grid.csv") is None
    True
    >>> artifact_dir("/elsewhere/summary.json", "results")
    'elsewhere'
    """
    path, root = Path(path), Path(root)
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.parent.name) / path.name if path.parent.name else Path(path.name)
    parent = rel.parent.as_posix()
    return None if parent in ("", ".") else parent


def end_parent_run(
    uri: str,
    run_id: str,
    status: str = "FINISHED",
    artifacts: list[str | Path] = (),
    *,
    results: str | Path = "results",
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Attach result files (the workflow summary tables) and close the parent run.

    Each file keeps its folder under ``results`` as its artifact path (see
    :func:`artifact_dir`), so same-named tables of different jobs do not collide.
    ``metrics`` (workflow-level numbers, e.g. each model's test accuracy) are logged too.
    """
    _quiet()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for path in artifacts:
        if Path(path).exists():
            client.log_artifact(run_id, str(path), artifact_path=artifact_dir(path, results))
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, float(value))
    client.set_terminated(run_id, status=status)


def evaluation_summary(paths: list[str | Path]) -> dict[str, float]:
    """Workflow-level metrics for the parent run from evaluation ``metrics.json`` files.

    ``{"<dataset>/<model>/test_<metric>": value}`` for the headline numbers of every
    ``metrics.json`` among ``paths`` that names its dataset and model.
    """
    keys = ("accuracy", "accuracy_decoded", "denver_accuracy", "macro_f1")
    out: dict[str, float] = {}
    for path in paths:
        path = Path(path)
        if path.name != "metrics.json" or not path.exists():
            continue
        data = json.loads(path.read_text())
        if not {"dataset", "model"} <= data.keys():
            continue
        for key in keys:
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{data['dataset']}/{data['model']}/test_{key}"] = float(value)
    return out


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
    data_files: list[str | Path] | None = None,
) -> Iterator[Any]:
    """``with child_run(...) as run:`` — an active MLflow run nested under ``parent``.

    Creates the store and experiment when a job runs without the workflow's ``onstart``
    (e.g. ``snakemake --until train`` on a cluster node).

    Every child run carries the provenance tags: ``git_commit`` (unless given),
    ``config_hash`` (from ``KARYOFLOW_CONFIG_HASH``, set by the Snakefile) and, for
    ``data_files``, ``dvc_data_hash`` (:func:`dvc_md5`, the hash DVC records for the
    files). Callers add ``rule`` and ``wildcards`` (the Snakemake job).
    """
    _quiet()
    import mlflow

    experiment_id = init_store(uri, experiment, results)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    all_tags = dict(tags or {})
    all_tags.setdefault("git_commit", git_commit())
    if os.environ.get(CONFIG_HASH_ENV):
        all_tags.setdefault("config_hash", os.environ[CONFIG_HASH_ENV])
    if data_files:
        all_tags.setdefault("dvc_data_hash", dvc_md5(data_files))
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


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the config as canonical JSON.

    Examples
    --------
    >>> config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
    True
    >>> len(config_hash({}))
    16
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def dvc_md5(paths: list[str | Path] | str | Path) -> str:
    """The content hash DVC records for data: MD5 of a file, ``<md5>.dir`` of a folder.

    One path gives exactly what ``dvc.lock`` / a ``.dvc`` file would record for it; several
    paths give the MD5 of their ``<md5>  <name>`` lines in sorted order (one stable tag).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = f.write_text("hi")
    >>> dvc_md5(f)
    '49f68a5c8493ec2c0bf489821c21fc3b'
    """
    if isinstance(paths, str | Path):
        path = Path(paths)
        if path.is_dir():
            entries = [
                {"md5": _md5_file(p), "relpath": p.relative_to(path).as_posix()}
                for p in sorted(path.rglob("*"))
                if p.is_file()
            ]
            entries.sort(key=lambda e: e["relpath"])
            text = json.dumps(entries, sort_keys=True)
            return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() + ".dir"
        return _md5_file(path)
    lines = sorted(f"{dvc_md5(p)}  {Path(p).name}" for p in paths)
    if len(lines) == 1:
        return lines[0].split()[0]
    return hashlib.md5("\n".join(lines).encode(), usedforsecurity=False).hexdigest()


def registered_name(task: str) -> str:
    """Registry name of a task's model: ``karyoflow-<task>``.

    Examples
    --------
    >>> registered_name("classification")
    'karyoflow-classification'
    """
    return f"karyoflow-{task}"


@dataclasses.dataclass(frozen=True)
class Registration:
    """Result of :func:`register_best`."""

    name: str  #: registered model, ``karyoflow-<task>``
    version: str  #: the new version
    champion: bool  #: whether the ``champion`` alias now points at it
    previous: float | None  #: the former champion's metric value (None: there was none)


def _is_better(value: float, previous: float | None, greater_is_better: bool) -> bool:
    if previous is None or not math.isfinite(previous):
        return True
    if not math.isfinite(value):
        return False
    return value > previous if greater_is_better else value < previous


def register_best(
    model_uri: str,
    task: str,
    metric_name: str,
    value: float,
    greater_is_better: bool = True,
    *,
    tracking_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
    lock: str | Path | None = None,
) -> Registration:
    """Register a model as a new version of ``karyoflow-<task>``; move ``champion`` if better.

    The version carries the tags ``metric_name``, ``metric_value`` and
    ``greater_is_better`` (plus ``tags``). The ``champion`` alias moves to the new
    version only when there is no champion yet, the champion has no value for
    ``metric_name``, or ``value`` beats the champion's value strictly.

    Parameters
    ----------
    model_uri : str
        A logged model: ``runs:/<run id>/model`` or ``models:/<model id>``.
    task : str
        ``classification``, ``centromere``, ``segmentation``, ...
    metric_name, value : str, float
        The comparison metric (e.g. ``test_accuracy``) and this model's value.
    greater_is_better : bool
        False for losses and errors.
    tracking_uri : str, optional
        Store (tracking and registry); default: the current MLflow tracking URI.
    tags : mapping, optional
        Extra version tags (dataset, model, ...).
    lock : path, optional
        A lock file serialising the compare-and-move among parallel jobs on one machine.

    Returns
    -------
    Registration
        Registered name, new version, whether it is the champion, the previous value.

    Examples
    --------
    In a job that has logged a model in the active run::

        info = mlflow.keras.log_model(net, name="model")
        reg = register_best(info.model_uri, "centromere", "test_mae", 1.7,
                            greater_is_better=False)
        print(reg.name, reg.version, "champion" if reg.champion else "")
    """
    _quiet()
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    name = registered_name(task)
    client = MlflowClient()
    value = float(value)
    version_tags = {
        "metric_name": metric_name,
        "metric_value": repr(value),
        "greater_is_better": str(bool(greater_is_better)).lower(),
        **{k: str(v) for k, v in (tags or {}).items()},
    }
    with _file_lock(lock):
        version = mlflow.register_model(model_uri, name, tags=version_tags)
        previous = None
        try:
            champ = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            champ = None
        if champ is not None and champ.tags.get("metric_name") == metric_name:
            with contextlib.suppress(TypeError, ValueError):
                previous = float(champ.tags.get("metric_value"))
        better = _is_better(value, previous, greater_is_better)
        if better:
            client.set_registered_model_alias(name, CHAMPION, str(version.version))
    return Registration(name, str(version.version), better, previous)


def save_model(model: Any, path: str | Path, *, log: bool = True) -> str | None:
    """Save a Keras model to ``path`` atomically; log it to the active MLflow run.

    Parameters
    ----------
    model : keras.Model
        The trained network.
    path : path
        Destination (any suffix; written through a ``.keras`` temporary file).
    log : bool
        Also ``mlflow.keras.log_model(model, name="model")`` into the active run
        (the registry registers logged models).

    Returns
    -------
    str or None
        The logged model's URI, or None when not logged.
    """
    from karyoflow.fileutil import atomic_path

    with atomic_path(path) as tmp:
        keras_path = tmp.with_suffix(".keras")
        model.save(keras_path)
        keras_path.replace(tmp)
    if not log:
        return None
    import mlflow.keras

    return mlflow.keras.log_model(model, name="model").model_uri


def logged_model_uri(model_file: str | Path, model: Any, experiment: str) -> str:
    """URI of the model its training run logged, or log ``model`` into the active run.

    The training job writes ``metrics.json`` (with ``mlflow_run_id``) beside its model
    file; when that run is in this store's ``experiment`` and logged a model, its URI is
    returned, so the registry points at the training run. Otherwise (another store, or
    logging was off when it trained) the model is logged into the current run.
    """
    import mlflow

    train_metrics = Path(model_file).with_name("metrics.json")
    if train_metrics.exists():
        run_id = json.loads(train_metrics.read_text()).get("mlflow_run_id")
        found_experiment = mlflow.get_experiment_by_name(experiment)
        if run_id and found_experiment is not None:
            from mlflow.exceptions import MlflowException

            try:
                found = mlflow.search_logged_models(
                    experiment_ids=[found_experiment.experiment_id],
                    filter_string=f"source_run_id = '{run_id}'",
                    output_format="list",
                )
            except MlflowException:
                found = []
            if found:
                return found[0].model_uri
    import mlflow.keras

    return mlflow.keras.log_model(model, name="model").model_uri


def register_evaluated(
    model_file: str | Path,
    model: Any,
    task: str,
    metric_name: str,
    value: float,
    *,
    greater_is_better: bool,
    job: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    log: Any = print,
) -> Registration | None:
    """Register an evaluated model as a version of ``karyoflow-<task>`` (evaluate rules).

    Call inside the evaluation's active child run. ``job`` holds the tracking settings
    (``tracking_uri``, ``experiment``, ``results``, ``log_models``); nothing is registered
    when ``log_models`` is false (the registry holds logged models). The run is tagged
    with the registered name and version, and ``champion`` when the alias moved.
    """
    if not job.get("log_models", True):
        return None
    import mlflow

    uri = resolve_tracking_uri(job.get("tracking_uri"), job["results"])
    reg = register_best(
        logged_model_uri(model_file, model, job["experiment"]),
        task,
        metric_name,
        float(value),
        greater_is_better,
        tracking_uri=uri,
        tags=tags,
        lock=Path(job["results"]) / "mlflow" / "registry.lock",
    )
    mlflow.set_tags(
        {"registered_model": reg.name, "registered_version": reg.version}
        | ({"champion": "true"} if reg.champion else {})
    )
    log(
        f"[registry] {reg.name} version {reg.version}: {metric_name} {float(value):.4g}"
        + (f" ({CHAMPION})" if reg.champion else f" (champion has {reg.previous})")
    )
    return reg


@contextlib.contextmanager
def _file_lock(path: str | Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    import fcntl

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
