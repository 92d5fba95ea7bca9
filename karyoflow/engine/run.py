"""The two jobs every task runs: :func:`run_train` and :func:`run_evaluate`.

They own what is the same for every task - device set-up and seeding, the tracked
MLflow child run (provenance tags, parent, params), the fit with the shared callbacks
and schedules, best-epoch selection, history and curves, saving, the registry - and ask
the task (:class:`karyoflow.engine.task.Task`) for the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from karyoflow.engine.job import Job
from karyoflow.engine.task import Task
from karyoflow.fileutil import files_sha256, write_json

__all__ = ["finite_numbers", "run_evaluate", "run_name", "run_train", "tracked_run"]

Log = Callable[[str], None]


def finite_numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite real numbers of ``values`` (booleans and text left out), as floats.

    Examples
    --------
    >>> finite_numbers({"a": 1, "b": float("nan"), "c": "x", "d": True, "e": 0.5}, "test_")
    {'test_a': 1.0, 'test_e': 0.5}
    """
    return {
        f"{prefix}{k}": float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
    }


def run_name(task: Task, job: Job, stage: str) -> str:
    """The MLflow run name of ``stage`` (``"train"`` or ``"evaluate"``): the task's
    ``run_names`` template of the job's rule (a rule of its own, as
    ``evaluate_external``), else of the stage, filled with the job's dataset, model and
    wildcards.

    Examples
    --------
    >>> class T:
    ...     run_names = {"train": "{dataset}/{model}/{point}", "evaluate": "{dataset}/{model}"}
    >>> job = Job("classification", "train", "voc", "hu2019", wildcards={"point": "sgd-lr0.1"})
    >>> run_name(T(), job, "train"), run_name(T(), job, "evaluate")
    ('voc/hu2019/sgd-lr0.1', 'voc/hu2019')
    """
    by_rule = task.run_names.get(job.rule) if job.rule not in ("train", "evaluate") else None
    template = by_rule or task.run_names[stage]
    return template.format(**{**job.wildcards, "dataset": job.dataset, "model": job.model})


def _prefixed(log: Log, rule: str) -> Log:
    return lambda message: log(f"[{rule}] {message}")


@contextlib.contextmanager
def tracked_run(
    task: Task,
    job: Job,
    stage: str,
    device: str,
    data_files: list[str],
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """The job's MLflow child run under the workflow's parent run, with the tags every
    run carries: kind and rule (the rule name), task, model, dataset, size, wildcards,
    git commit, device, data hash (and the provenance tags of
    :func:`karyoflow.engine.tracking.child_run`)."""
    from karyoflow.engine import tracking

    all_tags = {
        "karyoflow.kind": job.rule,
        "task": task.name,
        "model": job.model,
        "dataset": job.dataset,
        "size": job.size,
        "rule": job.rule,
        "wildcards": job.wildcards_tag(),
        "git_commit": tracking.git_commit(),
        "device": device,
        "data_hash": files_sha256(data_files),
        **(tags or {}),
        **job.tags,
    }
    results = job.results
    with tracking.child_run(
        tracking.resolve_tracking_uri(job.tracking.get("tracking_uri"), results),
        job.tracking["experiment"],
        name=run_name(task, job, stage),
        parent=tracking.parent_run_id(results),
        tags=all_tags,
        results=results,
        data_files=data_files,
    ) as run:
        yield run


def run_train(
    task: Task, job: Job, outputs: Mapping[str, str | Path], *, log: Log = print
) -> dict[str, Any]:
    """Train ``task``'s model for ``job`` and write its outputs.

    Parameters
    ----------
    task : Task
        What differs (data, model, loss, validation).
    job : Job
        The rule job.
    outputs : mapping
        ``model``, ``metrics``, ``history``, ``curves`` and the task's extra outputs
        (logged as artifacts with the curves and history).

    Returns
    -------
    dict
        The metrics written to ``outputs["metrics"]`` (with ``mlflow_run_id``, ``device``).
    """
    import mlflow

    from karyoflow.engine import devices, tracking
    from karyoflow.engine.fit import fit_model, make_optimizer
    from karyoflow.evaluate.plots import plot_training_curves

    params = task.resolve_params(job.params)
    setup = devices.configure(
        seed=job.seed,
        use_gpu=job.use_gpu,
        mixed_precision=job.mixed_precision,
        threads=int(params.get("threads", 0)),
        lock_dir=Path(job.results) / ".gpu-locks",
    )
    say = _prefixed(log, job.rule)
    name = run_name(task, job, "train")
    say(f"{name} on {setup.describe()}")
    splits = task.load(job, params, say)
    model = task.build(job, splits, params)
    fit = task.fit_data(model, splits, params, job.seed)
    model.compile(
        optimizer=make_optimizer(params, fit.steps_per_epoch),
        **task.compile_args(model, splits, params),
    )
    monitor, mode = task.monitor(splits, params)
    n_params = int(model.count_params())
    with tracked_run(task, job, "train", setup.device, splits.data_files, splits.tags) as run:
        mlflow.log_params(
            tracking.flatten(
                {
                    "model": job.model,
                    "dataset": job.dataset,
                    "size": job.size,
                    "seed": job.seed,
                    "model_options": dict(job.options),
                    "weights": job.weights,
                    task.params_key: params,
                    "parameters": n_params,
                    **splits.counts,
                    **splits.logged,
                }
            )
        )
        result = fit_model(
            model,
            fit,
            params,
            monitor=monitor,
            mode=mode,
            callbacks=[tracking.EpochMetrics()],
            log=say,
        )
        metrics: dict[str, Any] = {
            "best_epoch": result.best_epoch + 1,
            "epochs_run": result.epochs_run,
            "train_seconds": round(result.seconds, 3),
            f"train_{task.unit}_per_second": round(result.images_per_second, 1),
            "parameters": n_params,
            **splits.counts,
        }
        checked = task.validate(model, splits, params, result, outputs, say)
        metrics.update(checked.metrics)
        mlflow.log_metrics(finite_numbers(metrics))
        write_json(outputs["history"], result.history)
        curves = {k: v for k, v in result.history.items() if k.replace("val_", "") != "threshold"}
        plot_training_curves(curves, outputs["curves"], title=name)
        for key, path in outputs.items():
            if key not in ("model", "metrics"):
                mlflow.log_artifact(str(path))
        for path in checked.artifacts:
            mlflow.log_artifact(str(path))
        tracking.save_model(model, outputs["model"], log=job.tracking.get("log_models", True))
        metrics["mlflow_run_id"] = run.info.run_id
        metrics["device"] = setup.device
        write_json(outputs["metrics"], metrics)
    done = f"{checked.summary}, " if checked.summary else ""
    say(
        f"{name}: {done}best epoch {metrics['best_epoch']} of {metrics['epochs_run']} "
        f"({result.seconds:.1f}s)"
    )
    return metrics


def run_evaluate(
    task: Task, job: Job, outputs: Mapping[str, str | Path], *, log: Log = print
) -> dict[str, Any]:
    """Evaluate a trained model of ``task`` on the test data: the task writes its
    tables and figures, the engine the metrics file, the tracked run (metrics,
    artifacts: every output) and the registry version.

    Returns
    -------
    dict
        The metrics written to ``outputs["metrics"]`` (with ``mlflow_run_id``).
    """
    import mlflow

    from karyoflow.engine import devices, tracking

    setup = devices.configure(seed=job.seed, use_gpu=False)
    say = _prefixed(log, job.rule)
    ev = task.evaluate(job, outputs, say)
    metrics = dict(ev.metrics)
    with tracked_run(task, job, "evaluate", setup.device, ev.data_files, ev.tags) as run:
        if ev.params:
            mlflow.log_params(tracking.flatten(ev.params))
        mlflow.log_metrics(finite_numbers(ev.logged))
        for key, path in outputs.items():
            if key != "metrics":
                mlflow.log_artifact(str(path))
        reg = ev.registered
        if reg is not None:
            tracking.register_evaluated(
                reg.model_file,
                reg.model,
                task.registry,
                reg.metric,
                reg.value,
                greater_is_better=reg.greater_is_better,
                job={**job.tracking, "results": job.results},
                tags=reg.tags,
                log=log,
            )
        metrics["mlflow_run_id"] = run.info.run_id
    write_json(outputs["metrics"], metrics)
    if ev.summary:
        say(ev.summary)
    return metrics
