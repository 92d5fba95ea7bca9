"""Detection parameters and evaluation of a detector against a VOC manifest.

:data:`DEFAULT_PARAMS` holds every tunable (``detector``: the keyword arguments of
:func:`karyoflow.tasks.detection.segment.detect_chromosomes`; ``iou_threshold`` and
``matching`` of :func:`karyoflow.tasks.detection.evaluate.match_boxes`; ``ap_floor`` of the
precision-recall curve of a learned detector);
:func:`resolve_params` merges a config's ``detect.params`` over them.
:func:`evaluate_manifest` runs the detector on every metaphase of a manifest and
compares with its boxes - the logic of the ``detect_evaluate`` rule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.engine.params import merge_params
from karyoflow.imageio import read_image
from karyoflow.tasks.detection.evaluate import (
    MatchResult,
    PRCurve,
    average_precision,
    match_boxes,
    summarise_cells,
)
from karyoflow.tasks.detection.plots import overlay_detections, side_by_side
from karyoflow.tasks.detection.segment import Detections, detect_chromosomes, detector_defaults

__all__ = [
    "DEFAULT_PARAMS",
    "DetectionRun",
    "detection_report",
    "evaluate_manifest",
    "keep_scores",
    "learned_detector",
    "metrics_by_split",
    "overlay_figure",
    "pr_curves",
    "resolve_params",
    "run_detect_evaluate",
]

#: ``detector``: keyword arguments of :func:`detect_chromosomes` (from its signature);
#: ``iou_threshold``: smallest IoU of a match; ``matching``: ``hungarian`` | ``greedy``;
#: ``ap_floor``: a learned detector is also decoded down to this score, for its
#: precision-recall curve and average precision (the operating point stays its own
#: threshold).
DEFAULT_PARAMS: dict[str, Any] = {
    "detector": detector_defaults(),
    "iou_threshold": 0.5,
    "matching": "hungarian",
    "ap_floor": 0.05,
}


def resolve_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``params`` over :data:`DEFAULT_PARAMS` and check them.

    Raises
    ------
    ValueError
        Naming the first unknown key (dotted) or bad value.

    Examples
    --------
    >>> p = resolve_params({"detector": {"saddle_ratio": 0.7}})
    >>> p["detector"]["saddle_ratio"], p["iou_threshold"]
    (0.7, 0.5)
    >>> resolve_params({"detector": {"sadle": 1}})
    Traceback (most recent call last):
    ...
    ValueError: unknown detection parameter 'detector.sadle'
    """
    out = merge_params(DEFAULT_PARAMS, params, what="detection parameter", nested=["detector"])
    if not 0.0 < float(out["iou_threshold"]) <= 1.0:
        raise ValueError("iou_threshold must be in (0, 1]")
    if out["matching"] not in ("hungarian", "greedy"):
        raise ValueError("matching must be 'hungarian' or 'greedy'")
    if not 0.0 < float(out["ap_floor"]) <= 1.0:
        raise ValueError("ap_floor must be in (0, 1]")
    det = out["detector"]
    if det["method"] not in ("otsu", "adaptive"):
        raise ValueError("detector.method must be 'otsu' or 'adaptive'")
    if det["polarity"] not in ("auto", "dark_on_light", "light_on_dark"):
        raise ValueError(f"detector.polarity: unknown mode {det['polarity']!r}")
    if not 0.0 < float(det["saddle_ratio"]) <= 1.0:
        raise ValueError("detector.saddle_ratio must be in (0, 1]")
    if not 0.0 < float(det["hysteresis"]) <= 1.0:
        raise ValueError("detector.hysteresis must be in (0, 1]")
    return out


@dataclass
class DetectionRun:
    """What :func:`evaluate_manifest` measured."""

    #: one row per image: cell_id, split, dataset, source, n_true, n_detected, tp, fp, fn,
    #: count_error, recall, precision, ms
    per_cell: pd.DataFrame
    #: cell_id -> detections / matching (kept only when asked)
    detections: dict[str, Detections]
    matches: dict[str, MatchResult]
    #: cell_id -> (true boxes, every scored detection, scores); filled when the run
    #: had a ``score_threshold`` (a learned detector decoded below its operating point)
    scored: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: smallest IoU of a match
    iou_threshold: float = 0.5


def keep_scores(det: Detections, threshold: float) -> Detections:
    """The detections scoring at least ``threshold`` (boxes-only results: no labels).

    Examples
    --------
    >>> d = Detections(np.array([[0, 0, 2, 2], [3, 3, 5, 5]]), np.zeros((6, 6), np.int32),
    ...                np.array([0.9, 0.2]), np.array([4, 4]))
    >>> len(keep_scores(d, 0.5)), len(keep_scores(d, 0.1))
    (1, 2)
    """
    keep = np.asarray(det.scores) >= float(threshold)
    return replace(det, boxes=det.boxes[keep], scores=det.scores[keep], areas=det.areas[keep])


def _true_boxes(rows: pd.DataFrame) -> np.ndarray:
    return rows[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)


def evaluate_manifest(
    manifest: pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    *,
    cells: list[str] | None = None,
    keep: bool | Callable[[str], bool] = False,
    log: Callable[[str], None] = lambda _m: None,
    detector: Callable[[np.ndarray], Detections] | None = None,
    score_threshold: float | None = None,
) -> DetectionRun:
    """Detect chromosomes in every metaphase of ``manifest`` and match its boxes.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Manifest rows of kind ``metaphase`` (others are ignored); one image per
        ``source``, its boxes are the truth.
    params : mapping, optional
        Over :data:`DEFAULT_PARAMS` (:func:`resolve_params`).
    cells : list of str, optional
        Only these cell ids.
    keep : bool or callable, optional
        Keep the detections of every cell (True) or of the cells it accepts.
    log : callable, optional
        Progress messages.
    detector : callable, optional
        ``image -> Detections`` in place of the classical detector with
        ``params["detector"]`` (e.g. :func:`learned_detector`).
    score_threshold : float, optional
        Operating point of a detector that returns detections below it (a learned one
        decoded down to ``ap_floor``): detections scoring less are not matched, but all
        are kept in ``scored`` for :func:`pr_curves`.

    Returns
    -------
    DetectionRun
        ``ms`` is the wall time of detection alone (image decoding excluded),
        ``cpu_ms`` the CPU time of this process meanwhile (all its threads).
    """
    p = resolve_params(params)
    detect = detector or (lambda image: detect_chromosomes(image, **p["detector"]))
    rows = manifest[manifest["kind"] == "metaphase"]
    if cells is not None:
        rows = rows[rows["cell_id"].astype(str).isin({str(c) for c in cells})]
    records, dets, matches, scored = [], {}, {}, {}
    groups = list(rows.groupby("source", sort=True))
    for k, (source, group) in enumerate(groups):
        cell = str(group["cell_id"].iloc[0])
        image = read_image(source)
        start, cpu = time.perf_counter(), time.process_time()
        det = detect(image)
        ms = 1000.0 * (time.perf_counter() - start)
        cpu_ms = 1000.0 * (time.process_time() - cpu)
        truth = _true_boxes(group)
        if score_threshold is not None:
            scored[cell] = (truth, np.asarray(det.boxes, np.float64), np.asarray(det.scores))
            det = keep_scores(det, score_threshold)
        res = match_boxes(truth, det.boxes, iou_threshold=p["iou_threshold"], method=p["matching"])
        records.append(
            {
                "cell_id": cell,
                "split": str(group["split"].iloc[0]) if "split" in group else "",
                "dataset": str(group["dataset"].iloc[0]) if "dataset" in group else "",
                "source": str(source),
                "n_true": res.n_true,
                "n_detected": res.n_detected,
                "tp": res.tp,
                "fp": res.fp,
                "fn": res.fn,
                "count_error": res.count_error,
                "recall": res.tp / res.n_true if res.n_true else float("nan"),
                "precision": res.tp / res.n_detected if res.n_detected else float("nan"),
                "ms": round(ms, 2),
                "cpu_ms": round(cpu_ms, 2),
            }
        )
        matches[cell] = res
        if keep is True or (callable(keep) and keep(cell)):
            dets[cell] = det
        if (k + 1) % 50 == 0:
            log(f"detect: {k + 1}/{len(groups)} images")
    columns = ["cell_id", "split", "dataset", "source", "n_true", "n_detected", "tp", "fp", "fn"]
    columns += ["count_error", "recall", "precision", "ms", "cpu_ms"]
    table = pd.DataFrame(records, columns=columns)
    return DetectionRun(table, dets, matches, scored, float(p["iou_threshold"]))


def _split_groups(run: DetectionRun) -> dict[str, list[str]]:
    """Cell ids of ``all``, each split present and ``val+test`` (when either is); for
    the images of several datasets (a union) also ``test:<dataset>`` per dataset."""
    splits = dict(zip(run.per_cell["cell_id"], run.per_cell["split"], strict=True))
    cells = list(run.matches)
    groups = {"all": cells}
    for name in ("train", "val", "test"):
        chosen = [c for c in cells if splits.get(c) == name]
        if chosen:
            groups[name] = chosen
    held = [c for c in cells if splits.get(c) in ("val", "test")]
    if held:
        groups["val+test"] = held
    if "dataset" in run.per_cell and run.per_cell["dataset"].nunique() > 1:
        owner = dict(zip(run.per_cell["cell_id"], run.per_cell["dataset"], strict=True))
        for name in sorted(set(owner.values())):
            chosen = [c for c in groups.get("test", []) if owner[c] == name]
            if chosen:
                groups[f"test:{name}"] = chosen
    return groups


def pr_curves(run: DetectionRun) -> dict[str, PRCurve]:
    """Precision-recall curves (:func:`average_precision`) of ``all``, each split and
    ``val+test``; empty when the run kept no scored detections (``score_threshold``)."""
    if not run.scored:
        return {}
    out = {}
    for name, cells in _split_groups(run).items():
        items = [run.scored[c] for c in cells if c in run.scored]
        out[name] = average_precision(
            [t for t, _, _ in items],
            [d for _, d, _ in items],
            [s for _, _, s in items],
            iou_threshold=run.iou_threshold,
        )
    return out


def metrics_by_split(run: DetectionRun) -> dict[str, Any]:
    """Summaries (:func:`summarise_cells`) over all images, per split and val+test.

    Also the detection time per image (mean, median, max; wall and CPU ms), and, when
    the run kept scored detections below the operating point, the average precision
    of each group (``ap``: AP50 at IoU 0.5) and the recall reached at the lowest
    score kept (``recall_at_floor``).

    Examples
    --------
    >>> m = pd.DataFrame({"cell_id": [], "split": [], "ms": [], "cpu_ms": []})
    >>> metrics_by_split(DetectionRun(m, {}, {}))["all"]["cells"]
    0
    """
    out: dict[str, Any] = {
        name: summarise_cells([run.matches[c] for c in cells])
        for name, cells in _split_groups(run).items()
    }
    for name, curve in pr_curves(run).items():
        out[name]["ap"] = curve.ap if np.isfinite(curve.ap) else None
        out[name]["recall_at_floor"] = float(curve.recall[-1]) if curve.recall.size else 0.0
    for key, col in (("ms_per_image", "ms"), ("cpu_ms_per_image", "cpu_ms")):
        ms = run.per_cell[col].to_numpy(dtype=float)
        out[key] = {
            "mean": float(ms.mean()) if ms.size else None,
            "median": float(np.median(ms)) if ms.size else None,
            "max": float(ms.max()) if ms.size else None,
        }
    return out


def _pick_cells(per_cell: pd.DataFrame, n: int) -> list[str]:
    """Cells with the lowest, median and highest recall (ties by id), at most ``n``."""
    if per_cell.empty or n <= 0:
        return []
    ranked = per_cell.sort_values(["recall", "cell_id"], kind="stable")["cell_id"].tolist()
    if n == 1:
        return [ranked[len(ranked) // 2]]
    idx = np.unique(np.rint(np.linspace(0, len(ranked) - 1, n)).astype(int))
    return [ranked[i] for i in idx]


def overlay_figure(
    manifest: pd.DataFrame,
    run: DetectionRun,
    params: Mapping[str, Any] | None = None,
    *,
    n_cells: int = 3,
    height: int = 700,
    detector: Callable[[np.ndarray], Detections] | None = None,
) -> np.ndarray:
    """RGB figure: true vs detected boxes on the lowest/median/highest-recall cells.

    Detection is re-run on the chosen cells (with ``params``, or ``detector``) to draw
    their masks.
    """
    p = resolve_params(params)
    detect = detector or (lambda image: detect_chromosomes(image, **p["detector"]))
    chosen = _pick_cells(run.per_cell, n_cells)
    panels = []
    for cell in chosen:
        rows = manifest[
            (manifest["cell_id"].astype(str) == cell) & (manifest["kind"] == "metaphase")
        ]
        image = read_image(rows["source"].iloc[0])
        det = run.detections.get(cell) or detect(image)
        res = run.matches[cell]
        title = f"{cell}: {res.tp}/{res.n_true} found, {res.fp} false, {res.n_detected} detected"
        panels.append(
            overlay_detections(
                image, _true_boxes(rows), det.boxes, labels=det.labels, match=res, title=title
            )
        )
    return side_by_side(panels, height=height)


def learned_detector(
    model_path: str | Path, *, floor: float | None = None
) -> tuple[Callable[[np.ndarray], Detections], dict]:
    """``image -> Detections`` from a trained detector (``model.keras`` + ``detector.json``).

    The learned detector gives boxes only: the label image of the result is empty (no
    masks) and ``areas`` are the box areas. With ``floor``, boxes are decoded down to
    that score (or the detector's threshold, if lower) instead of the operating
    threshold of ``detector.json`` - for a precision-recall curve
    (:func:`evaluate_manifest` with ``score_threshold``).

    Returns
    -------
    detect : callable
    settings : dict
        The detector's ``detector.json`` (scale, threshold, polarity...).
    """
    from karyoflow.tasks.detection.learned import detect_learned, needs_inversion
    from karyoflow.tasks.detection.task import load_detector

    model, settings = load_detector(model_path)
    threshold = float(settings["threshold"])
    if floor is not None:
        threshold = min(threshold, float(floor))

    from karyoflow.preprocess.intensity import to_grey

    def detect(image: np.ndarray) -> Detections:
        grey = to_grey(np.asarray(image))
        boxes, scores = detect_learned(
            model,
            grey,
            scale=float(settings["scale"]),
            threshold=threshold,
            invert=needs_inversion(grey, settings.get("polarity", "auto")),
            tta=int(settings.get("tta", 1)),  # detectors trained before tta: one view
            scales=settings.get("scales", [1.0]),  # ... before scales: one scale
            fusion_iou=float(settings.get("fusion_iou", 0.55)),
        )
        ib = np.rint(boxes).astype(int).reshape(-1, 4)
        areas = (ib[:, 2] - ib[:, 0]) * (ib[:, 3] - ib[:, 1])
        return Detections(ib, np.zeros(grey.shape[:2], np.int32), scores, areas)

    return detect, settings


def run_detect_evaluate(*, outputs: Mapping[str, str], **report: Any) -> dict[str, Any]:
    """The ``detect_evaluate`` rule (the classical detector): metrics.json beside the
    per_cell.csv and overlay.png of :func:`detection_report` (``report``: its other
    keyword arguments)."""
    from karyoflow.fileutil import atomic_path

    metrics = detection_report(outputs=outputs, **report)
    with atomic_path(outputs["metrics"]) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    return metrics


def detection_report(
    *,
    dataset: str,
    manifest: str | Path | Sequence[str | Path],
    params: Mapping[str, Any] | None,
    overlay_cells: int,
    outputs: Mapping[str, str],
    threads: int = 1,
    log: Callable[[str], None] = print,
    model: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a detector on every metaphase of a VOC manifest (or of several: a union
    of datasets, each one's test split also on its own); writes per_cell.csv,
    overlay.png and, for a learned detector, the precision-recall figure.

    Parameters
    ----------
    outputs : mapping
        ``per_cell``, ``overlay`` paths, and ``pr`` (the precision-recall figure) with
        a learned detector.
    threads : int
        OpenCV threads.
    model : path, optional
        A trained learned detector (``model.keras``, rule ``train_detector``) to
        evaluate instead of the classical one (rule ``detect_learned_evaluate``).

    Returns
    -------
    dict
        Recall, precision, count error (and AP for the learned detector) over all
        images, per split and val+test; timing; the detector's parameters.
    """
    import cv2

    from karyoflow.fileutil import atomic_path
    from karyoflow.manifest import read_manifests

    cv2.setNumThreads(max(int(threads), 1))
    p = resolve_params(params)
    table = read_manifests([manifest] if isinstance(manifest, str | Path) else list(manifest))
    detector, settings, operating = None, None, None
    if model is not None:
        detector, settings = learned_detector(model, floor=p["ap_floor"])
        operating = float(settings["threshold"])
    run = evaluate_manifest(table, p, log=log, detector=detector, score_threshold=operating)
    if run.per_cell.empty:
        raise ValueError(f"{dataset}: no metaphase images in {manifest}")
    metrics = {
        "dataset": dataset,
        "detector": "learned" if model is not None else "classical",
        "images": len(run.per_cell),
        "iou_threshold": p["iou_threshold"],
        "matching": p["matching"],
        "params": settings if settings is not None else p["detector"],
        **metrics_by_split(run),
    }
    if operating is not None and outputs.get("pr"):
        from karyoflow.evaluate.plots import plot_precision_recall

        with atomic_path(outputs["pr"]) as tmp:
            plot_precision_recall(
                pr_curves(run), tmp, operating=operating, title=f"{dataset}: learned detector"
            )
    with atomic_path(outputs["per_cell"]) as tmp:
        run.per_cell.round(4).to_csv(tmp, index=False)
    shown = detector
    if detector is not None and operating is not None:
        full = detector

        def shown(image: np.ndarray) -> Detections:
            return keep_scores(full(image), operating)

    fig = overlay_figure(table, run, p, n_cells=overlay_cells, detector=shown)
    with atomic_path(outputs["overlay"]) as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(fig, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("could not encode the overlay figure")
        tmp.write_bytes(buf.tobytes())
    a = metrics["all"]
    ap = f", AP50 {a['ap']:.3f}" if "ap" in a else ""
    log(
        f"detect {dataset} ({metrics['detector']}): {metrics['images']} images, "
        f"recall {a['recall']}, "
        f"precision {a['precision']}{ap}, |count error| {a['count_error_abs_mean']}, "
        f"{metrics['ms_per_image']['mean']:.0f} ms/image"
    )
    return metrics
