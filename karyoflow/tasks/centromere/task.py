"""The centromere task: centromere localisation by regression (rules
``train_centromere``, ``evaluate_centromere``).

Rows with a known centromere from the train splits of the configured datasets; the
epoch of lowest validation pixel error is kept; test metrics are pixel and
length-relative errors and the centromere index per class
(:mod:`karyoflow.tasks.centromere.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from karyoflow.engine.fit import FIT_DEFAULTS, FitData, TrainResult, check_fit_params
from karyoflow.engine.job import Job
from karyoflow.engine.params import merge_params
from karyoflow.engine.run import run_name
from karyoflow.engine.task import Evaluation, Registered, Splits, Validation, read_train_val
from karyoflow.fileutil import atomic_path
from karyoflow.tasks.centromere.data import DEFAULT_POINT_AUGMENT

__all__ = [
    "DEFAULT_CENTROMERE_TRAIN",
    "LOSSES",
    "REGISTRY_TASK",
    "TASK",
    "make_loss",
    "predict_points",
    "resolve_centromere_params",
]

#: Registry task of the centromere models: versions of ``karyoflow-centromere``.
REGISTRY_TASK = "centromere"

#: Loss names (``centromere.params.loss``): pixel-space losses on the (x, y) distance,
#: and ``mape`` (the published choice) for comparison.
LOSSES: tuple[str, ...] = ("l1", "l2", "huber", "euclidean", "mape")

#: Training options (``centromere.params``; per-model overrides in ``model_settings``).
DEFAULT_CENTROMERE_TRAIN: dict[str, Any] = {
    **FIT_DEFAULTS,
    "epochs": 8,
    "early_stopping_patience": 0,  # 0: keep the best epoch by val px error, no stopping
    "loss": "l1",  # l1 | l2 | huber | euclidean | mape
    "huber_delta": 2.0,  # px
    "online_augment": dict(DEFAULT_POINT_AUGMENT),
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
    out = merge_params(
        DEFAULT_CENTROMERE_TRAIN,
        *layers,
        what="centromere training option",
        nested=["online_augment"],
    )
    if out["loss"] not in LOSSES:
        raise ValueError(f"loss {out['loss']!r}: choose from {list(LOSSES)}")
    check_fit_params(out)
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


def predict_points(model, data, batch_size: int = 256) -> np.ndarray:
    """Predicted ``(N, 2)`` points for ``data`` (a :class:`CentromereData`), in order."""
    from karyoflow.tasks.centromere.data import make_point_dataset

    if len(data) == 0:
        return np.zeros((0, 2), np.float32)
    ds = make_point_dataset(data, batch_size=batch_size, seed=0, training=False)
    return np.asarray(model.predict(ds.map(lambda x, y: x), verbose=0), dtype=np.float32)


class Centromere:
    """Centromere localisation (:class:`karyoflow.engine.task.Task`): a point
    regressor trained on every chromosome with a known centromere, kept at the epoch of
    lowest validation pixel error."""

    name, registry, params_key, unit = "centromere", REGISTRY_TASK, "centromere", "images"
    resolve_params = staticmethod(resolve_centromere_params)
    run_names = MappingProxyType(
        {"train": "centromere/{model}", "evaluate": "centromere/{model}/test"}
    )

    def load(self, job: Job, params: Mapping[str, Any], log) -> Splits:
        from karyoflow.tasks.centromere.data import load_centromere_split

        train, val = read_train_val(
            job,
            load_centromere_split,
            log,
            empty=f"no training rows with a known centromere (datasets {job.dataset})",
        )
        for file, inst, reason in train.rejects + val.rejects:
            log(f"left out {file}: {inst}: {reason}")
        return Splits(
            train,
            val,
            counts={
                "train_images": len(train),
                "val_images": len(val),
                "left_out": len(train.rejects) + len(val.rejects),
            },
            data_files=[*job.files("train"), *job.files("val")],
        )

    def build(self, job: Job, splits: Splits, params: Mapping[str, Any]):
        from karyoflow.models.registry import build_model

        h, w = (int(v) for v in splits.train.images.shape[1:3])
        return build_model(job.model, (h, w, 1), options=dict(job.options), seed=job.seed)

    def fit_data(self, model, splits: Splits, params: Mapping[str, Any], seed: int) -> FitData:
        from karyoflow.tasks.centromere.data import make_point_dataset

        batch = int(params["batch_size"])
        train, val = splits.train, splits.val
        train_ds = make_point_dataset(
            train, batch_size=batch, seed=seed, training=True, augment=params["online_augment"]
        )
        val_ds = (
            make_point_dataset(val, batch_size=256, seed=seed, training=False) if len(val) else None
        )
        return FitData(train_ds, -(-len(train) // batch), len(train), val=val_ds)

    def compile_args(self, model, splits: Splits, params: Mapping[str, Any]) -> dict:
        return {
            "loss": make_loss(params["loss"], params["huber_delta"]),
            "metrics": [_point_error_metric()],
        }

    def monitor(self, splits: Splits, params: Mapping[str, Any]) -> tuple[str, str]:
        return ("val_px_error" if len(splits.val) else "px_error"), "min"

    def validate(
        self, model, splits, params, result: TrainResult, outputs: Mapping[str, Any], log
    ) -> Validation:
        from karyoflow.tasks.centromere.metrics import centromere_metrics, chromosome_extent

        val = splits.val
        if not len(val):
            return Validation({}, summary="no validation rows")
        summary, _ = centromere_metrics(
            predict_points(model, val), val.points, chromosome_extent(val.images)
        )
        metrics = {f"val_{k}": v for k, v in summary.items() if k != "n"}
        frac = metrics.get("val_median_error_frac", float("nan"))
        return Validation(metrics, summary=f"val median error {frac:.4f} of length")

    def evaluate(self, job: Job, outputs: Mapping[str, Any], log) -> Evaluation:
        """Test-split errors (originals only): mean / median / 90th-percentile error in
        pixels and as a fraction of the chromosome length, share within 5 % of the
        length, centromere-index error overall and per class; ``outputs``: per_class,
        predictions (CSV), figure (PNG)."""
        import keras

        from karyoflow.labels import LABELS
        from karyoflow.tasks.centromere.data import load_centromere_split
        from karyoflow.tasks.centromere.figures import plot_centromere_predictions
        from karyoflow.tasks.centromere.metrics import (
            centromere_metrics,
            chromosome_extent,
            per_class_table,
        )

        test_files = job.files("test")
        test = load_centromere_split(test_files).originals()
        log(f"{run_name(self, job, 'evaluate')}: {test.describe()}")
        model_file = job.file("model")
        model = keras.models.load_model(model_file, compile=False)
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
        datasets = job.dataset.split("+")
        metrics: dict[str, Any] = {
            "model": job.model,
            "datasets": datasets,
            "split": "test",
            **summary,
            "left_out": len(test.rejects),
            "predict_seconds": round(seconds, 3),
            "per_class_ci_mae": {r["label"]: r["ci_mae"] for r in per_class.to_dict("records")},
        }
        _write_csv(outputs["predictions"], table.round(4))
        _write_csv(outputs["per_class"], per_class.round(4))
        # the worst, median and best cases side by side would hide the typical case:
        # up to figure_count test crops in a fixed, spread-out order instead
        n_fig = min(len(test), int(job.settings.get("figure_count", 36)))
        pick = (
            np.linspace(0, len(test) - 1, n_fig).round().astype(int) if n_fig else np.array([], int)
        )
        titles = [
            f"{table['label'].iloc[i]} {table['error_frac'].iloc[i] * 100:.1f}%" for i in pick
        ]
        plot_centromere_predictions(
            test.images[pick],
            pred[pick],
            outputs["figure"],
            true=test.points[pick],
            titles=titles,
            title=f"{job.model} (test; caption: class, error as % of length)",
        )
        from karyoflow.engine.run import finite_numbers

        return Evaluation(
            metrics,
            logged=finite_numbers(summary, "test_"),
            data_files=test_files,
            registered=Registered(
                model_file,
                model,
                "test_median_error_frac",
                summary["median_error_frac"],
                greater_is_better=False,
                tags={"model": job.model, "datasets": ",".join(datasets)},
            ),
            params={"model": job.model, "datasets": datasets, "size": job.size},
            summary=(
                f"{run_name(self, job, 'evaluate')}: median error "
                f"{summary['median_error_px']:.2f} px = {summary['median_error_frac']:.4f} "
                f"of length, within 5%: {summary['within_5pct']:.3f}"
            ),
        )


#: The centromere task object the rules run (:func:`karyoflow.tasks.task_for`).
TASK = Centromere()


def _write_csv(path: str | Path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
