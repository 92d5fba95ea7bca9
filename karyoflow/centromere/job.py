"""Centromere training and evaluation jobs (rules ``train_centromere``,
``evaluate_centromere``): data -> model -> fit -> files + MLflow child runs, in the
same style as classification training (:mod:`karyoflow.train.job`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from karyoflow.centromere.data import DEFAULT_POINT_AUGMENT
from karyoflow.fileutil import atomic_path, files_sha256, write_json

__all__ = [
    "DEFAULT_CENTROMERE_TRAIN",
    "LOSSES",
    "REGISTRY_TASK",
    "make_loss",
    "resolve_centromere_params",
    "run_centromere_evaluation",
    "run_centromere_training",
]

#: Registry task of the centromere models: versions of ``karyoflow-centromere``.
REGISTRY_TASK = "centromere"

#: Loss names (``centromere.params.loss``): pixel-space losses on the (x, y) distance,
#: and ``mape`` (the published choice) for comparison.
LOSSES: tuple[str, ...] = ("l1", "l2", "huber", "euclidean", "mape")

#: Training options (``centromere.params``; per-model overrides in ``model_settings``).
DEFAULT_CENTROMERE_TRAIN: dict[str, Any] = {
    "epochs": 8,
    "batch_size": 64,
    "optimizer": "adamw",  # adam | adamw | sgd | rmsprop
    "learning_rate": 0.003,
    "weight_decay": 0.0001,
    "momentum": 0.9,
    "schedule": "cosine",  # constant | step | cosine | onecycle
    "warmup_epochs": 1,
    "step_every": 10,
    "step_factor": 0.1,
    "early_stopping_patience": 0,  # 0: keep the best epoch by val_loss, no stopping
    "loss": "l1",  # l1 | l2 | huber | euclidean | mape
    "huber_delta": 2.0,  # px
    "online_augment": dict(DEFAULT_POINT_AUGMENT),
    "threads": 0,
}


def resolve_centromere_params(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge option layers over :data:`DEFAULT_CENTROMERE_TRAIN` and check them.

    Examples
    --------
    >>> resolve_centromere_params({"epochs": 2}, {"loss": "huber"})["loss"]
    'huber'
    >>> resolve_centromere_params({"loss": "cosine"})
    Traceback (most recent call last):
    ...
    ValueError: loss 'cosine': choose from ['l1', 'l2', 'huber', 'euclidean', 'mape']
    """
    from karyoflow.train.trainer import OPTIMIZERS, SCHEDULES

    out = copy.deepcopy(DEFAULT_CENTROMERE_TRAIN)
    for layer in layers:
        for key, value in (layer or {}).items():
            if key not in out:
                raise ValueError(f"unknown centromere training option {key!r}")
            if key == "online_augment":
                unknown = set(value) - set(DEFAULT_POINT_AUGMENT)
                if unknown:
                    raise ValueError(f"unknown online_augment option {sorted(unknown)[0]!r}")
                out[key] = {**out[key], **value}
            else:
                out[key] = copy.deepcopy(value)
    if out["loss"] not in LOSSES:
        raise ValueError(f"loss {out['loss']!r}: choose from {list(LOSSES)}")
    if out["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer {out['optimizer']!r}: choose from {list(OPTIMIZERS)}")
    if out["schedule"] not in SCHEDULES:
        raise ValueError(f"schedule {out['schedule']!r}: choose from {list(SCHEDULES)}")
    if int(out["epochs"]) < 1 or int(out["batch_size"]) < 1 or float(out["learning_rate"]) <= 0:
        raise ValueError("epochs, batch_size and learning_rate must be positive")
    return out


def make_loss(name: str, huber_delta: float = 2.0):
    """The Keras loss for ``name`` (targets and predictions are ``(x, y)`` pixels).

    ``l1``: mean absolute pixel error over x and y; ``l2``: mean squared; ``huber``:
    quadratic below ``huber_delta`` px, linear above; ``euclidean``: mean distance;
    ``mape``: mean absolute percentage error of the coordinates (the published loss; it
    weighs the same pixel error differently by position and explodes near x = 0).
    """
    import keras
    from keras import ops

    if name == "l1":
        return keras.losses.MeanAbsoluteError()
    if name == "l2":
        return keras.losses.MeanSquaredError()
    if name == "huber":
        return keras.losses.Huber(delta=float(huber_delta))
    if name == "mape":
        return keras.losses.MeanAbsolutePercentageError()
    if name == "euclidean":

        def euclidean(y_true, y_pred):
            d = ops.sum(ops.square(y_pred - y_true), axis=-1)
            return ops.sqrt(d + 1e-6)

        return euclidean
    raise ValueError(f"loss {name!r}: choose from {list(LOSSES)}")


def _point_error_metric():
    import keras
    from keras import ops

    class PointError(keras.metrics.Mean):
        """Mean Euclidean pixel error."""

        def __init__(self, name="px_error", **kwargs):
            super().__init__(name=name, **kwargs)

        def update_state(self, y_true, y_pred, sample_weight=None):
            d = ops.sqrt(ops.sum(ops.square(ops.cast(y_pred, "float32") - y_true), axis=-1))
            return super().update_state(d, sample_weight=sample_weight)

    return PointError()


def _tags(job: Mapping[str, Any], kind: str, rule: str, setup_device: str) -> dict[str, str]:
    from karyoflow.train import tracking

    return {
        "karyoflow.kind": kind,
        "task": "centromere",
        "model": job["model"],
        "dataset": "+".join(job["datasets"]),
        "size": job["size"],
        "rule": rule,
        "wildcards": json.dumps({"cmodel": job["model"]}),
        "git_commit": tracking.git_commit(),
        "device": setup_device,
        **(job.get("tags") or {}),
    }


def run_centromere_training(
    job: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one centromere model and write its outputs.

    ``job`` keys: model, datasets (names), size, model_options, params (resolved by
    :func:`resolve_centromere_params`), seed, train_files, val_files, use_gpu,
    mixed_precision, tracking_uri, experiment, log_models, results, tags.
    ``outputs`` keys: model, metrics, history, curves.
    """
    from karyoflow.train import devices

    params = resolve_centromere_params(job["params"])
    setup = devices.configure_job(job, int(params.get("threads", 0)))
    import mlflow

    from karyoflow.centromere.data import load_centromere_split, make_point_dataset
    from karyoflow.centromere.metrics import centromere_metrics, chromosome_extent
    from karyoflow.evaluate.plots import plot_training_curves
    from karyoflow.models.centromere import build_centromere_model
    from karyoflow.train import tracking
    from karyoflow.train.trainer import make_optimizer, selection_callbacks

    name = f"centromere/{job['model']}"
    log(f"[train_centromere] {name} on {setup.describe()}")
    train = load_centromere_split(job["train_files"])
    val = load_centromere_split(job["val_files"]).originals()
    log(f"[train_centromere] train {train.describe()}; val {val.describe()}")
    for file, inst, reason in train.rejects + val.rejects:
        log(f"[train_centromere] left out {file}: {inst}: {reason}")
    if len(train) == 0:
        raise ValueError(
            f"{job['train_files'][0]}: no training rows with a known centromere "
            f"(datasets {job['datasets']})"
        )
    h, w = (int(v) for v in train.images.shape[1:3])
    model = build_centromere_model(
        job["model"], (h, w, 1), options=job.get("model_options") or {}, seed=int(job["seed"])
    )
    batch = int(params["batch_size"])
    steps = math.ceil(len(train) / batch)
    seed = int(job["seed"])
    train_ds = make_point_dataset(
        train, batch_size=batch, seed=seed, training=True, augment=params["online_augment"]
    )
    has_val = len(val) > 0
    val_ds = make_point_dataset(val, batch_size=256, seed=seed, training=False) if has_val else None
    model.compile(
        optimizer=make_optimizer(params, steps),
        loss=make_loss(params["loss"], params["huber_delta"]),
        metrics=[_point_error_metric()],
    )
    monitor = "val_px_error" if has_val else "px_error"
    cbs: list[Any] = [
        tracking.EpochMetrics(),
        *selection_callbacks(
            monitor, "min", int(params["early_stopping_patience"]), int(params["epochs"]), log
        ),
    ]

    uri = tracking.resolve_tracking_uri(job["tracking_uri"], job["results"])
    tags = _tags(job, "train_centromere", "train_centromere", setup.device)
    tags["data_hash"] = files_sha256([*job["train_files"], *job["val_files"]])
    parent = tracking.parent_run_id(job["results"])
    with tracking.child_run(
        uri,
        job["experiment"],
        name=name,
        parent=parent,
        tags=tags,
        results=job["results"],
        data_files=[str(f) for f in [*job["train_files"], *job["val_files"]]],
    ) as run:
        mlflow.log_params(
            tracking.flatten(
                {
                    "model": job["model"],
                    "datasets": list(job["datasets"]),
                    "size": job["size"],
                    "seed": job["seed"],
                    "model_options": job.get("model_options") or {},
                    "centromere": params,
                    "parameters": int(model.count_params()),
                    "train_images": len(train),
                    "val_images": len(val),
                }
            )
        )
        start = time.perf_counter()
        hist = model.fit(
            train_ds, validation_data=val_ds, epochs=int(params["epochs"]), callbacks=cbs, verbose=0
        )
        seconds = time.perf_counter() - start
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        scores = history.get(monitor, [0.0])
        best = int(np.argmin(scores))
        metrics: dict[str, Any] = {
            "best_epoch": best + 1,
            "epochs_run": len(scores),
            "train_seconds": round(seconds, 3),
            "train_images_per_second": round(len(train) * len(scores) / max(seconds, 1e-9), 1),
            "parameters": int(model.count_params()),
            "train_images": len(train),
            "val_images": len(val),
            "left_out": len(train.rejects) + len(val.rejects),
        }
        if has_val:
            pred = predict_points(model, val)
            summary, _ = centromere_metrics(pred, val.points, chromosome_extent(val.images))
            metrics.update({f"val_{k}": v for k, v in summary.items() if k != "n"})
        mlflow.log_metrics(
            {
                k: float(v)
                for k, v in metrics.items()
                if isinstance(v, int | float) and np.isfinite(v)
            }
        )
        write_json(outputs["history"], history)
        plot_training_curves(history, outputs["curves"], title=name)
        for path in (outputs["curves"], outputs["history"]):
            mlflow.log_artifact(str(path))
        tracking.save_model(model, outputs["model"], log=job.get("log_models", True))
        metrics["mlflow_run_id"] = run.info.run_id
        metrics["device"] = setup.device
        write_json(outputs["metrics"], metrics)
    val_text = (
        f"val median error {metrics.get('val_median_error_frac', float('nan')):.4f} of length"
    )
    log(f"[train_centromere] {name}: {val_text} ({seconds:.1f}s)")
    return metrics


def predict_points(model, data, batch_size: int = 256) -> np.ndarray:
    """Predicted ``(N, 2)`` points for ``data`` (a :class:`CentromereData`), in order."""
    from karyoflow.centromere.data import make_point_dataset

    if len(data) == 0:
        return np.zeros((0, 2), np.float32)
    ds = make_point_dataset(data, batch_size=batch_size, seed=0, training=False)
    return np.asarray(model.predict(ds.map(lambda x, y: x), verbose=0), dtype=np.float32)


def run_centromere_evaluation(
    job: Mapping[str, Any],
    model_file: str | Path,
    test_files: list[str],
    outputs: Mapping[str, str | Path],
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate a trained centromere model on the test split (originals only).

    ``outputs`` keys: metrics (JSON), per_class (CSV), predictions (CSV), figure (PNG).
    Metrics: mean / median / 90th-percentile error in pixels and as a fraction of the
    chromosome length, share within 5 % of the length, centromere-index error overall
    and per class.
    """
    from karyoflow.train import devices

    setup = devices.configure(seed=int(job["seed"]), use_gpu=False, threads=0)
    import keras
    import mlflow

    from karyoflow.centromere.data import load_centromere_split
    from karyoflow.centromere.figures import plot_centromere_predictions
    from karyoflow.centromere.metrics import (
        centromere_metrics,
        chromosome_extent,
        per_class_table,
    )
    from karyoflow.labels import LABELS
    from karyoflow.train import tracking

    name = f"centromere/{job['model']}/test"
    test = load_centromere_split(test_files).originals()
    log(f"[evaluate_centromere] {name}: {test.describe()}")
    model = keras.models.load_model(str(model_file), compile=False)
    start = time.perf_counter()
    pred = predict_points(model, test)
    seconds = time.perf_counter() - start
    summary, table = centromere_metrics(pred, test.points, chromosome_extent(test.images))
    table.insert(0, "instance_id", test.instance_ids)
    table.insert(1, "dataset", test.datasets)
    table.insert(2, "label", [LABELS[i] if 0 <= i < len(LABELS) else "" for i in test.labels])
    table["true_x"], table["true_y"] = test.points[:, 0], test.points[:, 1]
    table["pred_x"], table["pred_y"] = pred[:, 0], pred[:, 1]
    per_class = per_class_table(table, test.labels, list(LABELS))
    metrics: dict[str, Any] = {
        "model": job["model"],
        "datasets": list(job["datasets"]),
        "split": "test",
        **summary,
        "left_out": len(test.rejects),
        "predict_seconds": round(seconds, 3),
        "per_class_ci_mae": {r["label"]: r["ci_mae"] for r in per_class.to_dict("records")},
    }
    _write_csv(outputs["predictions"], table.round(4))
    _write_csv(outputs["per_class"], per_class.round(4))
    # Figure: the worst, median and best cases side by side would hide the typical case;
    # show up to 36 test crops in a fixed, spread-out order instead.
    n_fig = min(len(test), int(job.get("figure_count", 36)))
    pick = np.linspace(0, len(test) - 1, n_fig).round().astype(int) if n_fig else np.array([], int)
    titles = [f"{table['label'].iloc[i]} {table['error_frac'].iloc[i] * 100:.1f}%" for i in pick]
    plot_centromere_predictions(
        test.images[pick],
        pred[pick],
        outputs["figure"],
        true=test.points[pick],
        titles=titles,
        title=f"{job['model']} (test; caption: class, error as % of length)",
    )
    uri = tracking.resolve_tracking_uri(job["tracking_uri"], job["results"])
    tags = _tags(job, "evaluate_centromere", "evaluate_centromere", setup.device)
    tags["data_hash"] = files_sha256(test_files)
    parent = tracking.parent_run_id(job["results"])
    with tracking.child_run(
        uri,
        job["experiment"],
        name=name,
        parent=parent,
        tags=tags,
        results=job["results"],
        data_files=[str(f) for f in test_files],
    ) as run:
        mlflow.log_params(
            tracking.flatten(
                {"model": job["model"], "datasets": list(job["datasets"]), "size": job["size"]}
            )
        )
        mlflow.log_metrics(
            {
                f"test_{k}": float(v)
                for k, v in summary.items()
                if isinstance(v, int | float) and np.isfinite(v)
            }
        )
        tracking.register_evaluated(
            model_file,
            model,
            REGISTRY_TASK,
            "test_median_error_frac",
            summary["median_error_frac"],
            greater_is_better=False,
            job=job,
            tags={"model": job["model"], "datasets": ",".join(job["datasets"])},
            log=log,
        )
        metrics["mlflow_run_id"] = run.info.run_id
        write_json(outputs["metrics"], metrics)
        for key in ("metrics", "per_class", "predictions", "figure"):
            mlflow.log_artifact(str(outputs[key]))
    log(
        f"[evaluate_centromere] {name}: median error {summary['median_error_px']:.2f} px = "
        f"{summary['median_error_frac']:.4f} of length, within 5%: {summary['within_5pct']:.3f}"
    )
    return metrics


def _write_csv(path: str | Path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
