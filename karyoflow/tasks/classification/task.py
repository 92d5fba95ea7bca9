"""The classification task: 24-class chromosome classifiers (rules ``train``, ``evaluate``).

Training: the preprocessed train split (originals and offline copies) through
``tf.data`` with online augmentation, class weights, label smoothing and mixup; the
epoch of best ``monitor`` is kept; validation accuracy, Denver-group accuracy and
macro-F1 with a confusion matrix. Evaluation: a model's best grid point on the test
split - per-class metrics, karyotype-level decoding, calibrated whole-cell calls with
their review trade-off and case calls (:mod:`karyoflow.evaluate.cells`).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.engine.fit import FIT_DEFAULTS, FitData, TrainResult, check_fit_params
from karyoflow.engine.job import Job
from karyoflow.engine.params import merge_params
from karyoflow.engine.task import Evaluation, Registered, Splits, Validation, read_train_val
from karyoflow.fileutil import atomic_path, files_sha256, write_json
from karyoflow.tasks.classification.data import DEFAULT_ONLINE_AUGMENT, IMAGES_IN_MEMORY_MB

__all__ = ["DEFAULT_TRAIN", "REGISTRY_TASK", "TASK", "resolve_train_params"]

#: Registry task of the classifiers: versions of ``karyoflow-classification``.
REGISTRY_TASK = "classification"

#: Training options (``train.params`` in the config; per-model overrides allowed).
DEFAULT_TRAIN: dict[str, Any] = {
    **FIT_DEFAULTS,
    "epochs": 10,
    "early_stopping_patience": 5,  # 0: off
    "monitor": "val_accuracy",
    "class_weights": "balanced",  # balanced | none
    "source_weights": "none",  # balanced: every source dataset of a union weighs the same
    "label_smoothing": 0.1,
    "mixup": 0.0,  # Beta(alpha, alpha); 0: off
    "online_augment": dict(DEFAULT_ONLINE_AUGMENT),
    "size_features": False,  # relative length/area as a second model input
    # a split whose images take more MB is read from its files batch by batch
    "images_in_memory_mb": IMAGES_IN_MEMORY_MB,
}


def resolve_train_params(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge option layers over :data:`DEFAULT_TRAIN` and check them.

    Examples
    --------
    >>> resolve_train_params({"epochs": 2}, {"online_augment": {"hflip": 0.0}})["epochs"]
    2
    >>> resolve_train_params({"epocs": 3})
    Traceback (most recent call last):
    ...
    ValueError: unknown training option 'epocs'
    """
    out = merge_params(DEFAULT_TRAIN, *layers, what="training option", nested=["online_augment"])
    check_fit_params(out)
    for key in ("class_weights", "source_weights"):
        if out[key] not in ("balanced", "none"):
            raise ValueError(f"{key} {out[key]!r}: choose balanced or none")
    return out


class Classification:
    """24-class chromosome classification (:class:`karyoflow.engine.task.Task`).

    Trains on the preprocessed crops of one dataset at one grid point (``tf.data`` with
    online augmentation, class weights, label smoothing, mixup; optional size input);
    validation accuracy, Denver-group accuracy and macro-F1 with a confusion matrix;
    evaluation of the best grid point with karyotype calls (module docstring).
    """

    name, registry, params_key, unit = "classification", REGISTRY_TASK, "train", "images"
    resolve_params = staticmethod(resolve_train_params)
    run_names = MappingProxyType(
        {
            "train": "{dataset}/{model}/{point}",
            "evaluate": "{dataset}/{model}/evaluate",
            "evaluate_external": "{dataset}/{model}/external/{external}",
        }
    )

    # ------------------------------------------------------------------ training

    def load(self, job: Job, params: Mapping[str, Any], log) -> Splits:
        from karyoflow.tasks.classification.data import load_split

        limit = float(params["images_in_memory_mb"])
        train, val = read_train_val(job, lambda files: load_split(files, limit), log)
        cells = job.settings.get("train_cells")
        if cells:  # a point of a learning curve: the first n training cells
            train = train.cells(int(cells), job.seed)
            log(f"train on {len(set(train.cell_ids))} of its cells ({len(train)} images)")
        # a union of datasets: one file per source and split, one manifest per source
        names = [Path(f).parent.parent.name for f in job.files("train")]
        sources = {}  # per member of a union its data hash (one dataset: the run's data_hash)
        if len(names) > 1:
            log(f"union of {len(names)} datasets: {', '.join(names)}")
            pairs = zip(names, job.files("train"), job.files("val"), strict=True)
            sources = {name: files_sha256([f, v]) for name, f, v in pairs}
        return Splits(
            train,
            val,
            counts={
                "train_images": len(train),
                "train_cells": len(set(train.cell_ids)),
                "val_images": len(val),
            },
            data_files=[*job.files("train"), *job.files("val")],
            logged={"sources": sources} if sources else {},
            tags={
                "grid_point": job.wildcards.get("point", ""),
                "manifest_hash": files_sha256(job.files("manifest")),
                "sources": ",".join(names),
            },
        )

    def build(self, job: Job, splits: Splits, params: Mapping[str, Any]):
        from karyoflow.labels import LABELS
        from karyoflow.models.registry import build_model

        height, width = splits.train.images.shape[1:3]
        with _local_weights(job) as weights:
            return build_model(
                job.model,
                (int(height), int(width), 1),
                len(LABELS),
                options=dict(job.options),
                weights=weights,
                seed=job.seed,
                size_features=2 if params.get("size_features") else 0,
            )

    def fit_data(self, model, splits: Splits, params: Mapping[str, Any], seed: int) -> FitData:
        from karyoflow.labels import LABELS
        from karyoflow.models.registry import uses_size_input
        from karyoflow.tasks.classification.data import (
            class_weights,
            make_dataset,
            source_weights,
        )

        train, val = splits.train, splits.val
        batch = int(params["batch_size"])
        per_class = class_weights(train.labels, len(LABELS), params["class_weights"])
        weights = np.array([per_class[int(c)] for c in train.labels], np.float32)
        weights *= source_weights(train.sources, params["source_weights"])
        weighted = params["class_weights"] != "none" or params["source_weights"] != "none"
        sized = uses_size_input(model)
        train_ds = make_dataset(
            train,
            batch_size=batch,
            seed=seed,
            training=True,
            num_classes=len(LABELS),
            augment=params["online_augment"],
            label_smoothing=float(params["label_smoothing"]),
            mixup=float(params["mixup"]),
            sample_weights=weights if weighted else None,
            size_features=sized,
        )
        val_ds = (
            make_dataset(val, batch_size=256, seed=seed, training=False, size_features=sized)
            if len(val)
            else None
        )
        return FitData(train_ds, math.ceil(len(train) / batch), len(train), val=val_ds)

    def compile_args(self, model, splits: Splits, params: Mapping[str, Any]) -> dict:
        import keras

        return {
            "loss": keras.losses.CategoricalCrossentropy(),
            "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")],
        }

    def monitor(self, splits: Splits, params: Mapping[str, Any]) -> tuple[str, str]:
        monitor = params["monitor"] if len(splits.val) else params["monitor"].replace("val_", "")
        return monitor, "min" if "loss" in monitor else "max"

    def validate(
        self, model, splits, params, result: TrainResult, outputs: Mapping[str, Any], log
    ) -> Validation:
        from karyoflow.evaluate.metrics import classification_report
        from karyoflow.evaluate.plots import placeholder_png, plot_confusion_matrix
        from karyoflow.labels import LABELS
        from karyoflow.tasks.classification.data import predict_proba

        val = splits.val
        proba = predict_proba(model, val) if len(val) else np.zeros((0, len(LABELS)))
        report = classification_report(val.labels, proba.argmax(1), num_classes=len(LABELS))
        metrics = {
            "val_accuracy": float(report["accuracy"]) if len(val) else float("nan"),
            "val_denver_accuracy": float(report.get("denver_accuracy", float("nan"))),
            "val_macro_f1": float(report.get("macro_f1", float("nan"))),
        }
        val_loss = result.history.get("val_loss")
        if val_loss:
            metrics["val_loss"] = float(val_loss[result.best_epoch])
        if len(val):
            metrics.update(per_source_accuracy(val.labels, proba.argmax(1), val.sources, "val_"))
        if len(val):
            plot_confusion_matrix(
                np.asarray(report["confusion_matrix"]),
                list(LABELS),
                outputs["confusion"],
                title=f"{Path(outputs['model']).parent.name} (validation)",
            )
        else:
            placeholder_png(outputs["confusion"], "no validation split")
        report_path = Path(outputs["metrics"]).with_name("val_report.json")
        write_json(report_path, report)
        return Validation(
            metrics, [str(report_path)], summary=f"val_accuracy={metrics['val_accuracy']:.4f}"
        )

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, job: Job, outputs: Mapping[str, Any], log) -> Evaluation:
        """Test metrics of the model's best grid point (``job.settings``: ``select_by``,
        ``decode`` - the ``evaluate`` config section - ``tta``, and ``register``: false
        for an external test set, whose result does not make a registry version)."""
        import keras

        from karyoflow.evaluate.karyotype import karyotype_report
        from karyoflow.evaluate.metrics import classification_report
        from karyoflow.evaluate.plots import plot_confusion_matrix
        from karyoflow.labels import LABELS
        from karyoflow.manifest import read_manifests
        from karyoflow.tasks.classification.data import load_split, predict_proba

        settings = job.settings
        decode, tta = settings["decode"], settings.get("tta", "none")
        point, path = _best_model_file(
            job.file("grid"), job.model, job.files("models"), settings["select_by"]
        )
        log(f"{job.dataset} {job.model}: best point {point} ({path})")
        net = keras.models.load_model(path)
        test = load_split(job.files("test")).originals()
        proba = predict_proba(net, test, tta=tta)
        report = classification_report(test.labels, proba.argmax(1), num_classes=len(LABELS))
        df = read_manifests(job.files("manifest"))
        truth = {
            str(c): str(t)
            for c, t in df.groupby("cell_id")["cell_truth"].first().items()
            if t  # cells without truth are compared with the ISCN of their true labels
        }
        decode_kw = {
            k: v
            for k, v in decode.items()
            if v is not None and k in ("extra_copy_penalty", "max_copies")
        }
        kar = karyotype_report(test.labels, proba, test.cell_ids, truth, **decode_kw)
        name = f"{job.dataset} / {job.model} ({point})"
        calls = _evaluate_calls(
            proba, test, df, path, job.files("calibrations"), decode, name, outputs
        )
        metrics = {
            "dataset": job.dataset,
            "model": job.model,
            "point": point,
            "test_instances": len(test),
            "test_cells": int(kar["n_cells"]),
            "accuracy": report["accuracy"],
            "denver_accuracy": report["denver_accuracy"],
            "macro_f1": report["macro_f1"],
            "accuracy_hierarchical": kar["accuracy_hierarchical"],
            "accuracy_decoded": kar["accuracy_decoded"],
            **per_source_accuracy(test.labels, proba.argmax(1), test.sources),
            "karyotype_cells_comparable": kar["n_comparable"],
            "karyotype_match_flat": kar["karyotype_match_flat"],
            "karyotype_match_decoded": kar["karyotype_match_decoded"],
            **calls["metrics"],
            "decode": decode_kw,
            "tta": tta,
        }
        per_class = pd.DataFrame(
            [{"label": lab, **vals} for lab, vals in report["per_class"].items()]
        )
        cells = pd.DataFrame(kar["cells"]).merge(
            calls["cells"].add_prefix("call_").rename(columns={"call_cell": "cell"}),
            on="cell",
            how="left",
        )
        _write_csv(outputs["per_class"], per_class)
        _write_csv(outputs["cells"], cells)
        plot_confusion_matrix(
            np.asarray(report["confusion_matrix"]),
            list(LABELS),
            outputs["confusion"],
            title=f"{job.dataset} / {job.model} ({point}): test accuracy {report['accuracy']:.3f}",
        )
        from karyoflow.engine.run import finite_numbers

        cal = calls["metrics"]
        return Evaluation(
            metrics,
            logged=finite_numbers(metrics, "test_"),
            data_files=[*job.files("test"), path],
            registered=None
            if not settings.get("register", True)
            else Registered(
                path,
                net,
                "test_accuracy",
                float(metrics["accuracy"]),
                greater_is_better=True,
                tags={
                    "dataset": job.dataset,
                    "model": job.model,
                    "grid_point": point,
                    "calibration_temperature": f"{cal['calibration_temperature']:g}",
                    "review_min_posterior": f"{cal['review_min_posterior']:g}",
                },
            ),
            tags={"grid_point": point},
            summary=(
                f"{job.dataset} {job.model}: accuracy {metrics['accuracy']:.4f}, decoded "
                f"{metrics['accuracy_decoded']:.4f}, Denver {metrics['denver_accuracy']:.4f}, "
                f"karyotype match {metrics['karyotype_match_flat']} -> "
                f"{metrics['karyotype_match_decoded']} (assignment) / "
                f"{metrics['karyotype_match_call']} (call; {metrics['call_flagged_share']} "
                f"flagged, {metrics['call_unflagged_match']} of the rest exact); ECE "
                f"{metrics['ece_before']:.4f} -> {metrics['ece_after']:.4f}"
            ),
        )


#: The classification task object the rules run (:func:`karyoflow.tasks.task_for`).
TASK = Classification()


@contextlib.contextmanager
def _local_weights(job: Job) -> Iterator[str | None]:
    """The job's ``weights`` as a local file: a path as it is; an MLflow model URI
    (``runs:/...``, ``models:/name/3``) or ``champion`` (the registry alias of
    ``karyoflow-classification``) saved to a temporary ``.keras`` file first."""
    source = job.weights
    if not source or (source != "champion" and ":/" not in source) or Path(source).exists():
        yield source
        return
    from karyoflow.engine import tracking
    from karyoflow.predict.classifier import load_classifier

    uri = tracking.resolve_tracking_uri(job.tracking.get("tracking_uri"), job.results)
    model = load_classifier(source, tracking_uri=uri).model
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "init.keras"
        model.save(path)
        yield str(path)


def per_source_accuracy(
    labels: np.ndarray, pred: np.ndarray, sources: np.ndarray | None, prefix: str = ""
) -> dict[str, float]:
    """Top-1 accuracy of every source dataset of a union on its own rows,
    ``{"<prefix>accuracy_<source>": ...}``; empty for rows of one source.

    Examples
    --------
    >>> per_source_accuracy(np.array([1, 2, 3]), np.array([1, 0, 3]), np.array(["a", "a", "b"]))
    {'accuracy_a': 0.5, 'accuracy_b': 1.0}
    """
    if sources is None or len(set(sources)) < 2:
        return {}
    out = {}
    for source in sorted(set(sources)):
        rows = np.asarray(sources) == source
        out[f"{prefix}accuracy_{source}"] = float((pred[rows] == labels[rows]).mean())
    return out


def _write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def _best_model_file(
    grid_csv: str | Path, model: str, model_files: Sequence[str], select_by: str
) -> tuple[str, str]:
    from karyoflow.tasks.classification.grid import best_points

    table = pd.read_csv(grid_csv)
    point = best_points(table[table["model"] == model], select_by)["per_model"][model]
    for path in model_files:
        if Path(path).parent.name == point:
            return point, str(path)
    raise FileNotFoundError(f"{grid_csv}: no model file for {model} at {point}")


def _evaluate_calls(
    proba: np.ndarray,
    test: Any,
    manifest: pd.DataFrame,
    model_path: str,
    calibration_files: Sequence[str],
    settings: Mapping[str, Any],
    name: str,
    outputs: Mapping[str, str | Path],
) -> dict[str, Any]:
    """Calibrated probabilities, the hypothesis call of every test cell, review
    trade-off and case calls; writes ``cases``, ``reliability``, ``review``."""
    from karyoflow.evaluate.calibration import (
        expected_calibration_error,
        load_calibration,
        negative_log_likelihood,
    )
    from karyoflow.evaluate.cells import call_cells, cell_truths, configured_case_calls
    from karyoflow.evaluate.hypotheses import resolve_call_params, review_threshold
    from karyoflow.tasks.classification.calibrate import write_call_figures

    match = [c for c in calibration_files if Path(c).parent == Path(model_path).parent]
    cal = load_calibration(match[0] if match else None)
    calibrated = cal.apply(proba)
    par = resolve_call_params(settings.get("call"))
    threshold = review_threshold(par["review"]["min_posterior"], cal)
    par["review"]["min_posterior"] = threshold
    truth = cell_truths(manifest)
    cells, calls = call_cells(
        calibrated, test.cell_ids, y_true=test.labels, truth=truth, params=par
    )
    known_truth = {c: t for c, t in zip(cells["cell"], cells["truth"], strict=True) if t}
    case_table = configured_case_calls(
        calls, settings.get("cases"), prior=par["prior"], truth=known_truth
    )
    with atomic_path(outputs["cases"]) as tmp:
        case_table.to_csv(tmp, index=False, lineterminator="\n")
    y = test.labels
    write_call_figures(
        proba, y, cal, cells, outputs, split="test", name=name,
        chosen=threshold,
    )  # fmt: skip
    known = cells[cells["match"].notna()] if len(cells) else cells
    unflagged = known[~known["review"]] if len(known) else known
    normal = cells[cells["truth_normal"] == True] if len(cells) else cells  # noqa: E712
    abnormal = cells[cells["truth_normal"] == False] if len(cells) else cells  # noqa: E712
    metrics = {
        "calibration_temperature": float(cal.temperature),
        "calibration_fitted_on": cal.fitted_on,
        "ece_before": expected_calibration_error(proba, y),
        "ece_after": expected_calibration_error(calibrated, y),
        "nll_before": negative_log_likelihood(proba, y),
        "nll_after": negative_log_likelihood(calibrated, y),
        "call_mode": par["mode"],
        "karyotype_match_call": _share(known["match"]) if len(known) else None,
        "call_accuracy_decoded": (
            float(cells["correct"].sum() / len(test)) if len(test) and len(cells) else None
        ),
        "review_min_posterior": float(threshold),
        "call_flagged_share": float(cells["review"].mean()) if len(cells) else None,
        "call_unflagged_cells": len(unflagged),
        "call_unflagged_match": _share(unflagged["match"]) if len(unflagged) else None,
        "call_wrong_unflagged": int((~unflagged["match"].astype(bool)).sum()),
        "call_specificity": _share(normal["call_normal"]) if len(normal) else None,
        "call_sensitivity": _share(~abnormal["call_normal"].astype(bool))
        if len(abnormal)
        else None,
        "cases": len(case_table),
        "case_match": (
            _share(case_table["match"].dropna())
            if len(case_table) and case_table["match"].notna().any()
            else None
        ),
    }
    return {"metrics": metrics, "cells": cells}


def _share(values: pd.Series) -> float | None:
    vals = pd.Series(values).dropna()
    return float(vals.astype(bool).mean()) if len(vals) else None
