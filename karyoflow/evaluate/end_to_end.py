"""Rule ``evaluate_calls``: the karyotype call end to end, as a lab would measure it.

Every metaphase of the chosen splits goes through the whole of ``karyoflow predict`` —
image -> boxes -> preprocessing -> calibrated classifier -> karyotype call — twice:
from its annotated boxes, and from the image alone (the learned or the classical
detector). Per cell and pooled: chromosomes found (recall at IoU 0.5), chromosomes
placed correctly (found *and* given their annotated class, of all annotated), count
right, sex right, numerical call right, flagged for review, seconds per metaphase; and
for numerically normal against abnormal cells the specificity and sensitivity of the
abnormality call, per abnormality.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path

__all__ = ["BOX_SOURCES", "cell_metrics", "detector_rates", "pooled_metrics", "run_end_to_end"]

#: The two box sources: the annotation, and the image alone (a detector).
BOX_SOURCES: tuple[str, ...] = ("annotated", "detected")


def detector_rates(metrics_file: str | Path | None) -> dict[str, float]:
    """The call's artefact rates for boxes from a detector, from its val split.

    ``missing_rate`` = 1 - recall and ``extra_rate`` = 1 - precision on val, read from
    the learned detector's ``train_metrics.json`` (``val_recall``, ``val_precision``: at
    the threshold chosen on val) or the classical detector's ``metrics.json``
    (``val.recall``, ``val.precision``). Empty when there is no file or no val figure.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "train_metrics.json"
    >>> _ = f.write_text(json.dumps({"val_recall": 0.9, "val_precision": 0.95}))
    >>> {k: round(v, 3) for k, v in detector_rates(f).items()}
    {'missing_rate': 0.1, 'extra_rate': 0.05}
    """
    if not metrics_file or not Path(metrics_file).is_file():
        return {}
    data = json.loads(Path(metrics_file).read_text())
    val = data.get("val") if isinstance(data.get("val"), dict) else {}
    recall = data.get("val_recall", val.get("recall"))
    precision = data.get("val_precision", val.get("precision"))
    if not all(isinstance(v, int | float) and 0 < v <= 1 for v in (recall, precision)):
        return {}
    floor = 1e-4  # a perfect val split does not make a miss impossible
    return {
        "missing_rate": float(min(max(1.0 - recall, floor), 0.5)),
        "extra_rate": float(min(max(1.0 - precision, floor), 0.5)),
    }


def cell_metrics(
    pred: Any, true_boxes: np.ndarray, true_labels: Sequence[str], *, iou: float = 0.5
) -> dict[str, Any]:
    """Found / placed / count / sex of one predicted cell against its annotation.

    Parameters
    ----------
    pred : karyoflow.predict.CellPrediction
    true_boxes : numpy.ndarray, shape (m, 4)
    true_labels : sequence of str, length m
    iou : float
        IoU of a match.

    Returns
    -------
    dict
        ``annotated``, ``objects``, ``found`` (matched annotated boxes), ``placed``
        (matched and labelled with the annotated class; extra objects never count),
        ``count_right`` (objects == annotated), ``sex_true``, ``sex_called``,
        ``sex_right``.
    """
    from karyoflow.tasks.detection.evaluate import match_boxes

    res = match_boxes(true_boxes, pred.boxes, iou_threshold=iou)
    extra = np.zeros(len(pred.labels), bool) if pred.extra is None else pred.extra
    placed = sum(
        1 for t, d in res.pairs.tolist() if not extra[d] and pred.labels[d] == str(true_labels[t])
    )
    labels = [str(x) for x in true_labels]
    sex_true = "X" * labels.count("X") + "Y" * labels.count("Y")
    return {
        "annotated": len(labels),
        "objects": len(pred.labels),
        "found": int(res.tp),
        "placed": int(placed),
        "count_right": len(pred.labels) == len(labels),
        "sex_true": sex_true,
        "sex_called": pred.sex,
        "sex_right": pred.sex == sex_true,
    }


def pooled_metrics(cells: pd.DataFrame) -> dict[str, Any]:
    """Pooled figures of a per-cell table (:func:`run_end_to_end`'s ``cells.csv``).

    Returns
    -------
    dict
        ``cells``, ``found`` and ``placed`` (shares of all annotated chromosomes),
        ``count_right``, ``sex_right``, ``call_right`` (of cells with a comparable truth),
        ``flagged``, ``mean_cell_seconds``; ``specificity`` (normal cells called normal),
        ``sensitivity`` (numerically abnormal cells called abnormal), ``abnormal_exact``
        (abnormal cells given their exact call), ``normal_cells``, ``abnormal_cells``,
        ``unflagged_call_right``, ``wrong_unflagged``, and ``per_abnormality``
        (truth -> cells, called abnormal, exact).
    """

    def share(values: pd.Series) -> float | None:
        vals = pd.Series(values).dropna()
        return float(vals.astype(bool).mean()) if len(vals) else None

    if not len(cells):
        return {"cells": 0}
    known = cells[cells["match"].notna()]
    normal = cells[cells["truth_normal"] == True]  # noqa: E712 - object column with None
    abnormal = cells[cells["truth_normal"] == False]  # noqa: E712
    unflagged = known[~known["review"].astype(bool)]
    per = {}
    for truth, group in abnormal.groupby("truth"):
        per[str(truth)] = {
            "cells": len(group),
            "called_abnormal": int((~group["call_normal"].astype(bool)).sum()),
            "exact": int(group["match"].astype(bool).sum()),
        }
    annotated = int(cells["annotated"].sum())
    return {
        "cells": len(cells),
        "found": float(cells["found"].sum() / annotated) if annotated else None,
        "placed": float(cells["placed"].sum() / annotated) if annotated else None,
        "count_right": share(cells["count_right"]),
        "sex_right": share(cells["sex_right"]),
        "call_right": share(known["match"]),
        "flagged": share(cells["review"]),
        "unflagged_call_right": share(unflagged["match"]),
        "wrong_unflagged": int((~unflagged["match"].astype(bool)).sum()),
        "mean_cell_seconds": float(cells["seconds"].mean()),
        "normal_cells": len(normal),
        "abnormal_cells": len(abnormal),
        "specificity": share(normal["call_normal"]),
        "sensitivity": share(~abnormal["call_normal"].astype(bool)) if len(abnormal) else None,
        "abnormal_exact": share(abnormal["match"]) if len(abnormal) else None,
        "per_abnormality": per,
    }


def run_end_to_end(
    *,
    dataset: str,
    best_json: str | Path,
    manifest: str | Path,
    splits: Sequence[str],
    detector_model: str | Path | None,
    detector_metrics: str | Path | None = None,
    preprocess: Mapping[str, Any] | None,
    detect: Mapping[str, Any] | None,
    call: Mapping[str, Any] | None,
    cases: Mapping[str, Any] | None,
    tta: str,
    tracking: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Call every cell of ``splits`` from its annotated boxes and from the image alone.

    The image-only pass calls with the detector's own miss and false-box rates on val
    (:func:`detector_rates` of ``detector_metrics``) instead of the configured
    ``missing_rate`` / ``extra_rate``, when that file is given.

    ``outputs``: ``metrics`` (JSON: pooled figures per box source and split),
    ``cells`` (CSV, one row per cell and box source), ``cases`` (CSV), ``figure`` (PNG).
    """
    import time

    from karyoflow.evaluate.cells import cell_truths, configured_case_calls, truth_normal
    from karyoflow.evaluate.hypotheses import resolve_call_params
    from karyoflow.iscn import compare_karyotype, is_normal_iscn
    from karyoflow.manifest import read_manifest
    from karyoflow.predict import load_classifier, predict_cell
    from karyoflow.preprocess.chain import load_source

    best = json.loads(Path(best_json).read_text())["best"]
    model_path = Path(best_json).parent / best["model"] / best["point"] / "model.keras"
    classifier = load_classifier(model_path, tta=tta)
    detector = None
    kind = "classical"
    if detector_model:
        from karyoflow.tasks.detection.pipeline import learned_detector

        detector, _ = learned_detector(detector_model)
        kind = "learned"
    rates = detector_rates(detector_metrics)
    calls_by_source = {"annotated": dict(call or {}), "detected": {**dict(call or {}), **rates}}
    if rates:
        log(
            f"[calls] image-only pass: the detector's val rates, missing "
            f"{rates['missing_rate']:.3f}, extra {rates['extra_rate']:.3f} ({detector_metrics})"
        )
    df = read_manifest(manifest)
    rows = df[(df["kind"] == "metaphase") & df["split"].isin(list(splits))]
    truth = cell_truths(rows)
    cells = sorted(rows["cell_id"].astype(str).unique())
    log(
        f"[calls] {dataset}: {len(cells)} cells of {', '.join(splits)}; model {model_path} "
        f"(T = {classifier.calibration.temperature:.3f}); detector {kind}"
    )
    records: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {s: {} for s in BOX_SOURCES}
    start = time.perf_counter()
    for k, cell in enumerate(cells, start=1):
        part = rows[rows["cell_id"].astype(str) == cell]
        image = load_source(str(part["source"].iloc[0]))
        true_boxes = part[["x0", "y0", "x1", "y1"]].to_numpy(np.int64)
        true_labels = part["label"].astype(str).tolist()
        ref = truth.get(cell, "")
        for source in BOX_SOURCES:
            t0 = time.perf_counter()
            pred = predict_cell(
                image,
                classifier,
                boxes=true_boxes if source == "annotated" else None,
                preprocess=preprocess,
                detect=detect,
                call=calls_by_source[source],
                detector=detector if source == "detected" else None,
                source=cell,
            )
            seconds = time.perf_counter() - t0
            if pred.call is not None:
                calls[source][cell] = pred.call
            match = compare_karyotype(pred.iscn, ref) if ref and pred.iscn != "0" else None
            records.append(
                {
                    "boxes": source,
                    "cell": cell,
                    "split": str(part["split"].iloc[0]),
                    **cell_metrics(pred, true_boxes, true_labels),
                    "iscn": pred.iscn,
                    "posterior": (
                        round(pred.posterior, 6) if math.isfinite(pred.posterior) else None
                    ),
                    "runner_up": pred.runner_up,
                    "truth": ref,
                    "match": match,
                    "truth_normal": truth_normal(ref),
                    "call_normal": is_normal_iscn(pred.iscn),
                    "review": pred.review,
                    "reasons": "; ".join(pred.reasons),
                    "seconds": round(seconds, 3),
                }
            )
        if k % 10 == 0 or k == len(cells):
            rate = (time.perf_counter() - start) / k
            log(f"[calls {k}/{len(cells)}] {rate:.2f} s per cell (both box sources)")
    table = pd.DataFrame(records)
    metrics: dict[str, Any] = {
        "dataset": dataset,
        "splits": list(splits),
        "detector": kind,
        "detected_rates": rates or "config",
    }
    for source in BOX_SOURCES:
        part = table[table["boxes"] == source] if len(table) else table
        metrics[source] = {"all": pooled_metrics(part)}
        for split in splits:
            metrics[source][split] = pooled_metrics(part[part["split"] == split])
    with atomic_path(outputs["cells"]) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    case_tables = []
    for source in BOX_SOURCES:
        prior = resolve_call_params(calls_by_source[source])["prior"]
        t = configured_case_calls(calls[source], cases, prior=prior, truth=truth)
        case_tables.append(t.assign(boxes=source))
        several = t[t["cells"] > 1]
        metrics[source]["cases"] = {
            "cases": len(t),
            "multi_cell_cases": len(several),
            "case_right": (
                float(t["match"].dropna().astype(bool).mean()) if t["match"].notna().any() else None
            ),
        }
    cases_table = pd.concat(case_tables, ignore_index=True)
    with atomic_path(outputs["cases"]) as tmp:
        cases_table.to_csv(tmp, index=False, lineterminator="\n")
    _figure(metrics, outputs["figure"], title=f"{dataset}: calls end to end ({', '.join(splits)})")
    with atomic_path(outputs["metrics"]) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    _track(dataset, metrics, outputs, tracking, log)
    for source in BOX_SOURCES:
        m = metrics[source]["all"]
        log(
            f"[calls] {dataset} {source}: placed {_pct(m.get('placed'))}, call right "
            f"{_pct(m.get('call_right'))}, specificity {_pct(m.get('specificity'))}, "
            f"sensitivity {_pct(m.get('sensitivity'))}, flagged {_pct(m.get('flagged'))}"
        )
    return metrics


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _figure(metrics: Mapping[str, Any], path: str | Path, *, title: str) -> None:
    from matplotlib.figure import Figure

    from karyoflow.evaluate.plots import save_figure

    keys = [
        ("found", "found"),
        ("placed", "placed right"),
        ("count_right", "count right"),
        ("sex_right", "sex right"),
        ("call_right", "call right"),
        ("specificity", "specificity"),
        ("sensitivity", "sensitivity"),
        ("flagged", "flagged"),
    ]
    fig = Figure(figsize=(8.6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.38
    x = np.arange(len(keys))
    for j, source in enumerate(BOX_SOURCES):
        m = metrics[source]["all"]
        vals = [100 * (m.get(k) if m.get(k) is not None else np.nan) for k, _ in keys]
        bars = ax.bar(x + (j - 0.5) * width, vals, width, label=f"{source} boxes")
        for b, v in zip(bars, vals, strict=True):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=7)
    ax.set_xticks(x, [label for _, label in keys], rotation=20, fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of cells (found / placed: of chromosomes)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _track(
    dataset: str,
    metrics: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    tracking: Mapping[str, Any],
    log: Callable[[str], None],
) -> None:
    from karyoflow.engine import tracking as trk

    uri = trk.resolve_tracking_uri(tracking["tracking_uri"], tracking["results"])
    tags = {
        "karyoflow.kind": "evaluate_calls",
        "dataset": dataset,
        "rule": "evaluate_calls",
        "wildcards": json.dumps({"dataset": dataset}),
        "git_commit": trk.git_commit(),
    }
    with trk.child_run(
        uri,
        tracking["experiment"],
        name=f"{dataset}/calls",
        parent=trk.parent_run_id(tracking["results"]),
        tags=tags,
        results=tracking["results"],
        data_files=[],
    ) as run:
        import mlflow

        flat = {
            f"{source}_{k}": float(v)
            for source in BOX_SOURCES
            for k, v in metrics[source]["all"].items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        mlflow.log_metrics(flat)
        for out in ("metrics", "cells", "cases", "figure"):
            mlflow.log_artifact(str(outputs[out]))
        log(f"[calls] MLflow run {run.info.run_id}")
