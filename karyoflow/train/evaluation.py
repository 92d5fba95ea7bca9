"""Rule ``evaluate``: a model's best grid point on the test split, by cell.

Top-1 accuracy, per-class precision/recall/F1, confusion matrix, Denver-group accuracy,
hierarchical (group first) accuracy, and karyotype-level decoding with an ISCN summary
per cell compared with the dataset's truth where it has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path

__all__ = ["REGISTRY_TASK", "run_evaluation"]

#: Registry task of the classifiers: versions of ``karyoflow-classification``.
REGISTRY_TASK = "classification"


def _best_model_file(
    grid_csv: str | Path, model: str, model_files: Sequence[str], select_by: str
) -> tuple[str, str]:
    from karyoflow.train.grid import best_points

    table = pd.read_csv(grid_csv)
    point = best_points(table[table["model"] == model], select_by)["per_model"][model]
    for path in model_files:
        if Path(path).parent.name == point:
            return point, str(path)
    raise FileNotFoundError(f"{grid_csv}: no model file for {model} at {point}")


def run_evaluation(
    *,
    dataset: str,
    model: str,
    grid_csv: str | Path,
    model_files: Sequence[str],
    test_file: str | Path,
    manifest: str | Path,
    select_by: str,
    decode: Mapping[str, Any],
    seed: int,
    tta: str = "none",
    tracking: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate and write ``metrics.json``, ``per_class.csv``, ``cells.csv``, confusion PNG.

    ``decode``: karyotype-decoding options (the ``evaluate`` config section; its ``tta``
    key is ignored here); ``tta``: test-time views averaged
    (:data:`karyoflow.train.views.TTA_MODES`).
    """
    from karyoflow.train import devices

    devices.configure(seed=seed, use_gpu=False)
    import keras

    from karyoflow.evaluate.karyotype import karyotype_report
    from karyoflow.evaluate.metrics import classification_report
    from karyoflow.evaluate.plots import plot_confusion_matrix
    from karyoflow.labels import LABELS
    from karyoflow.manifest import read_manifest
    from karyoflow.train import tracking as trk
    from karyoflow.train.data import load_split
    from karyoflow.train.trainer import predict_proba

    point, path = _best_model_file(grid_csv, model, model_files, select_by)
    log(f"[evaluate] {dataset} {model}: best point {point} ({path})")
    net = keras.models.load_model(path)
    test = load_split(test_file).originals()
    proba = predict_proba(net, test, tta=tta)
    report = classification_report(test.labels, proba.argmax(1), num_classes=len(LABELS))
    df = read_manifest(manifest)
    truth = {
        str(c): str(t)
        for c, t in df.groupby("cell_id")["cell_truth"].first().items()
        if t  # cells without truth are compared with the ISCN of their true labels
    }
    decode_kw = {k: v for k, v in decode.items() if v is not None and k != "tta"}
    kar = karyotype_report(test.labels, proba, test.cell_ids, truth, **decode_kw)
    metrics = {
        "dataset": dataset,
        "model": model,
        "point": point,
        "test_instances": len(test),
        "test_cells": int(kar["n_cells"]),
        "accuracy": report["accuracy"],
        "denver_accuracy": report["denver_accuracy"],
        "macro_f1": report["macro_f1"],
        "accuracy_hierarchical": kar["accuracy_hierarchical"],
        "accuracy_decoded": kar["accuracy_decoded"],
        "karyotype_cells_comparable": kar["n_comparable"],
        "karyotype_match_flat": kar["karyotype_match_flat"],
        "karyotype_match_decoded": kar["karyotype_match_decoded"],
        "decode": decode_kw,
        "tta": tta,
    }
    per_class = pd.DataFrame([{"label": lab, **vals} for lab, vals in report["per_class"].items()])
    cells = pd.DataFrame(kar["cells"])
    with atomic_path(outputs["per_class"]) as tmp:
        per_class.to_csv(tmp, index=False, lineterminator="\n")
    with atomic_path(outputs["cells"]) as tmp:
        cells.to_csv(tmp, index=False, lineterminator="\n")
    plot_confusion_matrix(
        np.asarray(report["confusion_matrix"]),
        list(LABELS),
        outputs["confusion"],
        title=f"{dataset} / {model} ({point}): test accuracy {report['accuracy']:.3f}",
    )
    uri = trk.resolve_tracking_uri(tracking["tracking_uri"], tracking["results"])
    tags = {
        "karyoflow.kind": "evaluate",
        "model": model,
        "dataset": dataset,
        "grid_point": point,
        "rule": "evaluate",
        "wildcards": json.dumps({"dataset": dataset, "model": model}),
        "git_commit": trk.git_commit(),
    }
    name = f"{dataset}/{model}/evaluate"
    parent = trk.parent_run_id(tracking["results"])
    with trk.child_run(
        uri,
        tracking["experiment"],
        name=name,
        parent=parent,
        tags=tags,
        results=tracking["results"],
        data_files=[test_file, path],
    ) as run:
        import mlflow

        numeric = {f"test_{k}": float(v) for k, v in metrics.items() if _is_number(v)}
        mlflow.log_metrics(numeric)
        for out in ("per_class", "cells", "confusion"):
            mlflow.log_artifact(str(outputs[out]))
        trk.register_evaluated(
            path,
            net,
            REGISTRY_TASK,
            "test_accuracy",
            float(metrics["accuracy"]),
            greater_is_better=True,
            job=tracking,
            tags={"dataset": dataset, "model": model, "grid_point": point},
            log=log,
        )
        metrics["mlflow_run_id"] = run.info.run_id
    with atomic_path(outputs["metrics"]) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    log(
        f"[evaluate] {dataset} {model}: accuracy {metrics['accuracy']:.4f}, decoded "
        f"{metrics['accuracy_decoded']:.4f}, Denver {metrics['denver_accuracy']:.4f}, "
        f"karyotype match {metrics['karyotype_match_flat']} -> "
        f"{metrics['karyotype_match_decoded']}"
    )
    return metrics


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
