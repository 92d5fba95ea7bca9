"""Rule ``calibrate``: a trained classifier's temperature and review threshold, on val.

Writes ``calibration.json`` beside ``model.keras`` (read by ``evaluate``,
``predict_cells``, ``karyoflow predict`` and ``serve``), a reliability diagram and the
val review trade-off, and adds them to the training run in MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from karyoflow.fileutil import atomic_path

__all__ = ["calibrate_split", "run_calibration", "write_call_figures"]


def calibrate_split(
    proba: np.ndarray,
    labels: np.ndarray,
    cell_ids: np.ndarray,
    truth: Mapping[str, str],
    call: Mapping[str, Any],
    *,
    tta: str = "none",
) -> tuple[Any, Any, Any]:
    """Fit the temperature on one split, then choose the review threshold on its calls.

    Returns
    -------
    (Calibration, pandas.DataFrame, pandas.DataFrame)
        The calibration (with ``review_min_posterior`` when ``call.review.min_posterior``
        is ``"auto"``), the split's calls (:func:`karyoflow.evaluate.cells.call_cells`)
        and its review curve.
    """
    from dataclasses import replace

    from karyoflow.evaluate.calibration import fit_calibration
    from karyoflow.evaluate.cells import call_cells, choose_min_posterior, review_curve
    from karyoflow.evaluate.hypotheses import resolve_call_params

    cal = fit_calibration(proba, labels, fitted_on="val", tta=tta)
    par = resolve_call_params(call)
    cells, _ = call_cells(cal.apply(proba), cell_ids, y_true=labels, truth=truth, params=par)
    curve = review_curve(cells)
    review = par["review"]
    if review["min_posterior"] == "auto" and len(cells) and par["mode"] == "hypotheses":
        chosen = choose_min_posterior(curve, float(review["target_accuracy"]))
        cal = replace(cal, review_min_posterior=chosen, review_chosen_on="val")
    return cal, cells, curve


def run_calibration(
    *,
    model_file: str | Path,
    val_file: str | Path | Sequence[str | Path],
    manifest: str | Path | Sequence[str | Path],
    metrics_file: str | Path | None,
    call: Mapping[str, Any],
    tta: str,
    seed: int,
    tracking: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Calibrate one trained classifier on its val split and write ``outputs``
    (``calibration``, ``reliability``, ``review``).

    A dataset without a val split gets the identity (``T = 1``, ``fitted_on: none``)
    and a note in the log: its probabilities stay as the network gives them.
    """
    from karyoflow.engine import devices

    devices.configure(seed=seed, use_gpu=False)
    import keras

    from karyoflow.evaluate.cells import cell_truths
    from karyoflow.manifest import read_manifests
    from karyoflow.tasks.classification.data import load_split, predict_proba

    net = keras.models.load_model(model_file)
    val = load_split(val_file).originals()
    if len(val) == 0:
        log(f"[calibrate] {model_file}: no val split; probabilities left uncalibrated (T = 1)")
    proba = predict_proba(net, val, tta=tta) if len(val) else np.zeros((0, 24))
    manifests = [manifest] if isinstance(manifest, str | Path) else list(manifest)
    truth = cell_truths(read_manifests(manifests))
    from karyoflow.evaluate.calibration import with_domain

    cal, cells, _ = calibrate_split(proba, val.labels, val.cell_ids, truth, call, tta=tta)
    table = read_manifests(manifests)
    trained_on = ",".join(sorted({str(d) for d in table["dataset"].unique()}))
    cal = with_domain(cal, cal.apply(proba), val.cell_ids, trained_on)
    payload = cal.to_dict()
    with atomic_path(outputs["calibration"]) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    name = "/".join(Path(model_file).parts[-4:-1])
    chosen = cal.review_min_posterior if np.isfinite(cal.review_min_posterior) else None
    write_call_figures(
        proba, val.labels, cal, cells, outputs, split="val", name=name, chosen=chosen
    )
    log(
        f"[calibrate] {name}: T = {cal.temperature:.3f} on {cal.instances} val instances, "
        f"ECE {cal.ece_before:.4f} -> {cal.ece_after:.4f}"
        + (f"; review below posterior {chosen:g} (val)" if chosen is not None else "")
    )
    _log_to_training_run(metrics_file, tracking, payload, outputs, log)
    return payload


def write_call_figures(
    proba: np.ndarray,
    labels: np.ndarray,
    calibration: Any,
    cells: Any,
    outputs: Mapping[str, str | Path],
    *,
    split: str,
    name: str,
    chosen: float | None,
) -> None:
    """The reliability diagram (network vs calibrated) and the review trade-off (every
    reason vs the posterior alone) of one split's calls, to ``outputs["reliability"]``
    and ``outputs["review"]``."""
    from karyoflow.evaluate.calibration import expected_calibration_error, reliability_curve
    from karyoflow.evaluate.cells import review_curve
    from karyoflow.evaluate.plots import plot_reliability, plot_review_curve

    curves = {}
    if len(labels):
        calibrated = calibration.apply(proba)
        before = expected_calibration_error(proba, labels)
        after = expected_calibration_error(calibrated, labels)
        curves[f"network (ECE {before:.1%})"] = reliability_curve(proba, labels)
        curves[f"T = {calibration.temperature:.2f} (ECE {after:.1%})"] = reliability_curve(
            calibrated, labels
        )
    plot_reliability(curves, outputs["reliability"], title=f"{name}: {split} reliability")
    plot_review_curve(
        {
            f"{split}, every reason": review_curve(cells),
            f"{split}, posterior alone": review_curve(cells, other_reasons=False),
        },
        outputs["review"],
        chosen=chosen,
        title=f"{name}: review trade-off ({split})",
    )


def _log_to_training_run(
    metrics_file: str | Path | None,
    tracking: Mapping[str, Any],
    payload: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    log: Callable[[str], None],
) -> None:
    """Add the calibration to the MLflow run of the training job (if it has one)."""
    if not metrics_file or not Path(metrics_file).is_file():
        return
    run_id = json.loads(Path(metrics_file).read_text()).get("mlflow_run_id")
    if not run_id:
        return
    from mlflow.tracking import MlflowClient

    from karyoflow.engine import tracking as trk

    client = MlflowClient(trk.resolve_tracking_uri(tracking["tracking_uri"], tracking["results"]))
    for key in ("temperature", "ece_before", "ece_after", "nll_before", "nll_after"):
        value = payload.get(key)
        if isinstance(value, int | float) and np.isfinite(value):
            client.log_metric(run_id, f"calibration_{key}", float(value))
    for out in ("calibration", "reliability", "review"):
        client.log_artifact(run_id, str(outputs[out]))
    log(f"[calibrate] logged to the training run {run_id}")
