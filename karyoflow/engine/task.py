"""What a task gives the engine: the parts of training and evaluation that differ.

A task is a small object (one per ``karyoflow/tasks/<task>/task.py``) with the
attributes and methods of :class:`Task`; the engine (:mod:`karyoflow.engine.run`) does
everything else - devices, the tracked MLflow run, the fit, saving, registration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from karyoflow.engine.fit import FitData, TrainResult
from karyoflow.engine.job import Job

__all__ = ["Evaluation", "Registered", "Splits", "Task", "Validation", "read_train_val"]

Log = Callable[[str], None]


@dataclass
class Splits:
    """A task's training and validation data.

    Attributes
    ----------
    train, val : Any
        Whatever the task's ``fit_data`` and ``validate`` read.
    counts : dict
        Sizes logged as params and written to the metrics (``train_images``...).
    data_files : list of str
        The files read (``data_hash`` and ``dvc_data_hash`` tags).
    logged : dict
        Further params to log (class pixel weights...).
    tags : dict
        Further MLflow tags (``grid_point``, ``size`` from the data...).
    state : dict
        The task's own values for this job, kept between its calls (the engine does
        not read them).
    """

    train: Any
    val: Any
    counts: dict[str, int]
    data_files: list[str]
    logged: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Validation:
    """Validation metrics of the kept epoch, the extra files written, a log line."""

    metrics: dict[str, Any]
    artifacts: list[str] = field(default_factory=list)
    summary: str = ""


@dataclass
class Registered:
    """The model an evaluation registers, and by which test metric."""

    model_file: str
    model: Any
    metric: str
    value: float
    greater_is_better: bool
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What an evaluation measured.

    Attributes
    ----------
    metrics : dict
        Written to the ``metrics`` output (the run id is added).
    logged : dict
        Numbers logged to MLflow (non-finite ones are left out).
    data_files : list of str
        Files read (provenance tags).
    registered : Registered, optional
        The model to register as a version of ``karyoflow-<registry>``.
    params, tags : dict
        Params and further tags of the run.
    summary : str
        The closing log line.
    """

    metrics: dict[str, Any]
    logged: dict[str, float]
    data_files: list[str]
    registered: Registered | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    summary: str = ""


def read_train_val(
    job: Job,
    read: Callable[[list[str]], Any],
    log: Log,
    *,
    empty: str = "the training split is empty",
) -> tuple[Any, Any]:
    """The ``train`` and ``val`` inputs of ``job`` read by ``read`` (files -> split),
    the validation split kept to its originals (``.originals()``: no offline copies).

    Raises
    ------
    ValueError
        An empty training split: ``<first train file>: <empty>``.
    """
    train = read(job.files("train"))
    val = read(job.files("val")).originals()
    log(f"train {train.describe()}; val {val.describe()}")
    if len(train) == 0:
        raise ValueError(f"{job.files('train')[0]}: {empty}")
    return train, val


class Task(Protocol):
    """The interface of a task (structural: no base class to inherit).

    Attributes
    ----------
    name : str
        The ``task`` tag (``classification``...).
    registry : str
        Registry task: evaluated models become versions of ``karyoflow-<registry>``.
    params_key : str
        Prefix of the training options among the run's params (``train.epochs``).
    unit : str
        What a training sample is, for ``train_<unit>_per_second``.
    run_names : mapping
        MLflow run names: ``"train"``, ``"evaluate"`` (and any rule name) -> a template
        of the job's ``dataset``, ``model`` and wildcards
        (:func:`karyoflow.engine.run.run_name`).
    resolve_params : callable
        ``(*layers) -> dict``: the task's option table merged with ``layers`` and checked.
    """

    name: str
    registry: str
    params_key: str
    unit: str
    run_names: Mapping[str, str]
    resolve_params: Callable[..., dict[str, Any]]

    def load(self, job: Job, params: Mapping[str, Any], log: Log) -> Splits:
        """Training and validation data (a one-line error naming the file when empty)."""
        ...

    def build(self, job: Job, splits: Splits, params: Mapping[str, Any]) -> Any:
        """The (uncompiled) model, from the job's weights when it names some."""
        ...

    def fit_data(self, model: Any, splits: Splits, params: Mapping[str, Any], seed: int) -> FitData:
        """What :func:`karyoflow.engine.fit.fit_model` runs on."""
        ...

    def compile_args(self, model: Any, splits: Splits, params: Mapping[str, Any]) -> dict:
        """``loss`` and ``metrics`` for ``model.compile`` (the engine adds the optimizer)."""
        ...

    def monitor(self, splits: Splits, params: Mapping[str, Any]) -> tuple[str, str]:
        """The history key and ``"min"`` / ``"max"`` that choose the kept epoch."""
        ...

    def validate(
        self,
        model: Any,
        splits: Splits,
        params: Mapping[str, Any],
        result: TrainResult,
        outputs: Mapping[str, Any],
        log: Log,
    ) -> Validation:
        """Metrics of the kept epoch on the validation data; extra outputs written."""
        ...

    def evaluate(self, job: Job, outputs: Mapping[str, Any], log: Log) -> Evaluation:
        """Test metrics and figures of a trained model (the rule's outputs but
        ``metrics``, which the engine writes)."""
        ...
