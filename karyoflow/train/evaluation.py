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
    calibration_files: Sequence[str] = (),
    tta: str = "none",
    tracking: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate and write ``metrics.json``, ``per_class.csv``, ``cells.csv``,
    ``cases.csv``, the confusion matrix, reliability diagram and review trade-off.

    ``decode``: the ``evaluate`` config section (assignment-decoder options, ``call``
    and ``cases``; its ``tta`` key is ignored here); ``tta``: test-time views averaged
    (:data:`karyoflow.train.views.TTA_MODES`); ``calibration_files``: the
    ``calibration.json`` of each grid point (the chosen point's is applied).
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
    decode_kw = {
        k: v
        for k, v in decode.items()
        if v is not None and k in ("extra_copy_penalty", "max_copies")
    }
    kar = karyotype_report(test.labels, proba, test.cell_ids, truth, **decode_kw)
    calls = _evaluate_calls(
        proba, test, df, path, calibration_files, decode, dataset, model, point, outputs
    )
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
        **calls["metrics"],
        "decode": decode_kw,
        "tta": tta,
    }
    per_class = pd.DataFrame([{"label": lab, **vals} for lab, vals in report["per_class"].items()])
    cells = pd.DataFrame(kar["cells"]).merge(
        calls["cells"].add_prefix("call_").rename(columns={"call_cell": "cell"}),
        on="cell",
        how="left",
    )
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
        for out in ("per_class", "cells", "cases", "confusion", "reliability", "review"):
            mlflow.log_artifact(str(outputs[out]))
        trk.register_evaluated(
            path,
            net,
            REGISTRY_TASK,
            "test_accuracy",
            float(metrics["accuracy"]),
            greater_is_better=True,
            job=tracking,
            tags={
                "dataset": dataset,
                "model": model,
                "grid_point": point,
                "calibration_temperature": f"{calls['metrics']['calibration_temperature']:g}",
                "review_min_posterior": f"{calls['metrics']['review_min_posterior']:g}",
            },
            log=log,
        )
        metrics["mlflow_run_id"] = run.info.run_id
    with atomic_path(outputs["metrics"]) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    log(
        f"[evaluate] {dataset} {model}: accuracy {metrics['accuracy']:.4f}, decoded "
        f"{metrics['accuracy_decoded']:.4f}, Denver {metrics['denver_accuracy']:.4f}, "
        f"karyotype match {metrics['karyotype_match_flat']} -> "
        f"{metrics['karyotype_match_decoded']} (assignment) / "
        f"{metrics['karyotype_match_call']} (call; {metrics['call_flagged_share']} flagged, "
        f"{metrics['call_unflagged_match']} of the rest exact); ECE "
        f"{metrics['ece_before']:.4f} -> {metrics['ece_after']:.4f}"
    )
    return metrics


def _evaluate_calls(
    proba: np.ndarray,
    test: Any,
    manifest: pd.DataFrame,
    model_path: str,
    calibration_files: Sequence[str],
    settings: Mapping[str, Any],
    dataset: str,
    model: str,
    point: str,
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
    from karyoflow.train.calibrate import write_call_figures

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
        proba, y, cal, cells, outputs, split="test", name=f"{dataset} / {model} ({point})",
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
