"""One training job (rule ``train``): data -> model -> fit -> files + MLflow child run."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from karyoflow.fileutil import atomic_path, file_sha256, files_sha256, write_json

__all__ = ["TrainJob", "grid_points", "point_id", "run_training"]


def point_id(optimizer: str, learning_rate: float) -> str:
    """Grid point name used in paths and MLflow run names.

    Examples
    --------
    >>> point_id("adamw", 0.003)
    'adamw-lr0.003'
    """
    return f"{optimizer}-lr{float(learning_rate):g}"


def grid_points(grid: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """``{point id: {"optimizer": ..., "learning_rate": ...}}`` for every combination."""
    out = {}
    for opt in grid["optimizer"]:
        for lr in grid["learning_rate"]:
            out[point_id(opt, lr)] = {"optimizer": opt, "learning_rate": float(lr)}
    return out


class TrainJob(dict):
    """Everything one job needs (plain dict, built by the rule's params)."""


def run_training(
    job: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one (dataset, model, grid point) and write its outputs.

    ``job`` keys: dataset, model, point, size, model_options, weights, params (resolved
    training options), seed, train_files, val_files, manifest (path, for its hash),
    use_gpu, mixed_precision, tracking_uri, experiment, log_models, results, tags.
    ``outputs`` keys: model, metrics, history, curves, confusion.
    """
    from karyoflow.train import devices

    setup = devices.configure_job(job, int(job["params"].get("threads", 0)))
    log(f"[train] {job['dataset']} {job['model']} {job['point']} on {setup.describe()}")
    from karyoflow.evaluate.metrics import classification_report
    from karyoflow.evaluate.plots import plot_confusion_matrix, plot_training_curves
    from karyoflow.labels import LABELS
    from karyoflow.models.registry import build_model
    from karyoflow.train import tracking
    from karyoflow.train.data import describe, load_split
    from karyoflow.train.trainer import predict_proba, train_model

    train = load_split(job["train_files"])
    val = load_split(job["val_files"]).originals()
    log(f"[train] train {describe(train)}; val {describe(val)}")
    height, width = train.images.shape[1:3]
    model = build_model(
        job["model"],
        (int(height), int(width), 1),
        len(LABELS),
        options=job.get("model_options") or {},
        weights=job.get("weights"),
        seed=int(job["seed"]),
        size_features=2 if job["params"].get("size_features") else 0,
    )
    data_hash = files_sha256([*job["train_files"], *job["val_files"]])
    manifest_hash = file_sha256(job["manifest"])[:16]
    tags = {
        "karyoflow.kind": "train",
        "model": job["model"],
        "dataset": job["dataset"],
        "grid_point": job["point"],
        "size": job["size"],
        "rule": "train",
        "wildcards": json.dumps(
            {"dataset": job["dataset"], "model": job["model"], "point": job["point"]}
        ),
        "git_commit": tracking.git_commit(),
        "data_hash": data_hash,
        "manifest_hash": manifest_hash,
        "device": setup.device,
        **(job.get("tags") or {}),
    }
    parent = tracking.parent_run_id(job["results"])
    name = f"{job['dataset']}/{job['model']}/{job['point']}"
    uri = tracking.resolve_tracking_uri(job["tracking_uri"], job["results"])
    with tracking.child_run(
        uri,
        job["experiment"],
        name=name,
        parent=parent,
        tags=tags,
        results=job["results"],
        data_files=[*job["train_files"], *job["val_files"]],
    ) as run:
        import mlflow

        mlflow.log_params(
            tracking.flatten(
                {
                    "model": job["model"],
                    "size": job["size"],
                    "seed": job["seed"],
                    "model_options": job.get("model_options") or {},
                    "weights": job.get("weights"),
                    "train": job["params"],
                    "parameters": int(model.count_params()),
                    "train_images": len(train),
                    "val_images": len(val),
                }
            )
        )
        result = train_model(
            model,
            train,
            val,
            job["params"],
            int(job["seed"]),
            callbacks=[tracking.EpochMetrics()],
            log=log,
        )
        proba = predict_proba(model, val) if len(val) else np.zeros((0, len(LABELS)))
        report = classification_report(val.labels, proba.argmax(1), num_classes=len(LABELS))
        metrics = {
            "val_accuracy": float(report["accuracy"]) if len(val) else float("nan"),
            "val_denver_accuracy": float(report.get("denver_accuracy", float("nan"))),
            "val_macro_f1": float(report.get("macro_f1", float("nan"))),
            "best_epoch": result.best_epoch + 1,
            "epochs_run": result.epochs_run,
            "train_seconds": round(result.seconds, 3),
            "train_images_per_second": round(result.images_per_second, 1),
            "parameters": int(model.count_params()),
        }
        best_val_loss = result.history.get("val_loss")
        if best_val_loss:
            metrics["val_loss"] = float(best_val_loss[result.best_epoch])
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        write_json(outputs["history"], result.history)
        plot_training_curves(result.history, outputs["curves"], title=name)
        if len(val):
            plot_confusion_matrix(
                np.asarray(report["confusion_matrix"]),
                list(LABELS),
                outputs["confusion"],
                title=f"{name} (validation)",
            )
        else:
            _placeholder_png(outputs["confusion"], "no validation split")
        report_path = Path(outputs["metrics"]).with_name("val_report.json")
        write_json(report_path, report)
        for path in (outputs["curves"], outputs["confusion"], outputs["history"], report_path):
            mlflow.log_artifact(str(path))
        tracking.save_model(model, outputs["model"], log=job.get("log_models", True))
        metrics["mlflow_run_id"] = run.info.run_id
        metrics["device"] = setup.device
        write_json(outputs["metrics"], metrics)
    log(f"[train] {name}: val_accuracy={metrics['val_accuracy']:.4f} ({result.seconds:.1f}s)")
    return metrics


def _placeholder_png(path: str | Path, text: str) -> None:
    import cv2

    img = np.full((60, 300), 255, np.uint8)
    cv2.putText(img, text, (8, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1, cv2.LINE_AA)
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp.with_suffix(".png")), img)
        tmp.with_suffix(".png").replace(tmp)
