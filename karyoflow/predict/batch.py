"""Many cells: a manifest's metaphases (rule ``predict_cells``), image folders and
files (``karyoflow predict``), and their case calls."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path
from karyoflow.predict.cell import predict_cell, read_boxes
from karyoflow.predict.classifier import Classifier, load_classifier
from karyoflow.predict.render import write_prediction
from karyoflow.progress import eta

__all__ = [
    "predict_manifest_cells",
    "predict_paths",
    "run_predict_cells",
    "write_case_calls",
]


def predict_manifest_cells(
    manifest: pd.DataFrame,
    classifier: Classifier,
    out_dir: str | Path,
    *,
    split: str | None = "test",
    boxes: str = "manifest",
    preprocess: Mapping[str, Any] | None = None,
    detect: Mapping[str, Any] | None = None,
    decode: bool = True,
    call: Mapping[str, Any] | None = None,
    cases: Mapping[str, Any] | None = None,
    summary: str | Path | None = None,
    log: Callable[[str], None] = print,
    detector: Callable[[np.ndarray], Any] | None = None,
) -> pd.DataFrame:
    """Predict every metaphase (cell) of a manifest split into ``out_dir/<cell>/``.

    ``boxes="manifest"`` uses the annotated boxes, ``"detect"`` the detector (the
    unannotated case: ``detector`` if given, e.g. a learned one, else the classical
    one with ``detect``). The summary table (also ``out_dir/summary.csv``) compares each
    cell's ISCN with its truth where the manifest has one (``cell_truth``); it is
    written to ``summary`` (default ``out_dir/summary.csv``); the case calls of the
    cells (``cases``: config ``evaluate.cases``) to ``out_dir/cases.csv``.
    """
    from karyoflow.evaluate.cells import cell_truths
    from karyoflow.iscn import compare_karyotype
    from karyoflow.preprocess.chain import load_source

    if boxes not in ("manifest", "detect"):
        raise ValueError(f"boxes must be 'manifest' or 'detect', not {boxes!r}")
    rows = manifest[manifest["kind"] == "metaphase"]
    if split is not None:
        rows = rows[rows["split"] == split]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    calls: dict[str, Any] = {}
    numerical = cell_truths(rows)
    cells = sorted(rows["cell_id"].astype(str).unique())
    for k, cell in enumerate(cells, start=1):
        part = rows[rows["cell_id"].astype(str) == cell]
        source = str(part["source"].iloc[0])
        truth = part["cell_truth"].iloc[0] if "cell_truth" in part else None
        truth = None if truth is None or (isinstance(truth, float) and math.isnan(truth)) else truth
        given = part[["x0", "y0", "x1", "y1"]].to_numpy(np.int64) if boxes == "manifest" else None
        pred = predict_cell(
            load_source(source),
            classifier,
            boxes=given,
            preprocess=preprocess,
            detect=detect,
            decode=decode,
            call=call,
            source=source,
            detector=detector,
        )
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cell)
        write_prediction(pred, out / safe)
        if pred.call is not None:
            calls[cell] = pred.call
        ref = numerical.get(cell) or truth
        match = compare_karyotype(pred.iscn, ref) if ref and pred.iscn != "0" else None
        records.append(
            {
                "cell_id": cell,
                "source": source,
                "boxes": boxes,
                "annotated": len(part),
                "objects": pred.objects,
                "count": pred.count,
                "iscn": pred.iscn,
                "posterior": round(pred.posterior, 6) if math.isfinite(pred.posterior) else "",
                "runner_up": pred.runner_up,
                "review": pred.review,
                "truth": truth or "",
                "karyotype_truth": numerical.get(cell, ""),
                "matches_truth": "" if match is None else bool(match),
                "flags": "; ".join(pred.flags),
                "seconds": round(sum(pred.timings.values()), 3),
                "folder": safe,
            }
        )
        log(f"[predict {k}/{len(cells)}] {cell}: {pred.iscn} (truth {truth or '-'})")
    table = pd.DataFrame(records)
    if len(table):
        known = table[table["matches_truth"] != ""]
        if len(known):
            share = float(known["matches_truth"].astype(bool).mean())
            log(f"[predict] ISCN agrees with the truth for {share:.1%} of {len(known)} cells")
    write_case_calls(calls, out / "cases.csv", cases=cases, call=call, truth=numerical, log=log)
    with atomic_path(Path(summary) if summary else out / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def write_case_calls(
    calls: Mapping[str, Any],
    path: str | Path,
    *,
    cases: Mapping[str, Any] | None = None,
    call: Mapping[str, Any] | None = None,
    truth: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """The case call of every case among ``calls`` (cell -> KaryotypeCall) to ``path``
    (CSV: :func:`karyoflow.evaluate.cells.configured_case_calls`); cells are grouped
    by ``cases`` (config ``evaluate.cases``: ``pattern`` or ``table``)."""
    from karyoflow.evaluate.cells import configured_case_calls
    from karyoflow.evaluate.hypotheses import resolve_call_params

    prior = resolve_call_params(call)["prior"]
    table = configured_case_calls(calls, cases, prior=prior, truth=truth)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    several = table[table["cells"] > 1] if len(table) else table
    for row in several.itertuples():
        log(f"[predict] case {row.case}: {row.iscn} ({row.cells} cells)")
    return table


def run_predict_cells(
    best_json: str | Path,
    manifest: str | Path,
    out_dir: str | Path,
    summary: str | Path,
    *,
    settings: Mapping[str, Any],
    preprocess: Mapping[str, Any] | None,
    detect: Mapping[str, Any] | None,
    log: Callable[[str], None] = print,
    detector_model: str | Path | None = None,
    tta: str = "none",
    call: Mapping[str, Any] | None = None,
    cases: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Rule ``predict_cells``: the dataset's best model on every cell of a split.

    ``tta``: the classifier's test-time views (config ``evaluate.tta``).

    ``settings["boxes"]``: ``manifest``, ``detect`` (classical) or ``learned`` (the
    learned detector ``detector_model``).
    """
    from karyoflow.manifest import read_manifest

    best = json.loads(Path(best_json).read_text())["best"]
    model_path = Path(best_json).parent / best["model"] / best["point"] / "model.keras"
    classifier = load_classifier(model_path, tta=tta)
    log(f"[predict] model {model_path} ({best['model']} {best['point']}, views: {tta})")
    boxes = settings.get("boxes", "manifest")
    detector = None
    if boxes == "learned":
        if detector_model is None:
            raise ValueError("predict.boxes 'learned' needs a trained learned detector")
        from karyoflow.tasks.detection.pipeline import learned_detector

        detector, _ = learned_detector(detector_model)
        log(f"[predict] boxes from the learned detector {detector_model}")
        boxes = "detect"
    return predict_manifest_cells(
        read_manifest(manifest),
        classifier,
        out_dir,
        detector=detector,
        split=settings.get("split", "test"),
        boxes=boxes,
        preprocess=preprocess,
        detect=detect,
        decode=bool(settings.get("decode", True)),
        call=call,
        cases=cases,
        summary=summary,
        log=log,
    )


def _expand(inputs: Sequence[str | Path]) -> list[Path]:
    from karyoflow.imageio import IMAGE_EXTENSIONS

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file()
                    and p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS
                    and not p.name.startswith(".")
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such image or folder")
    if not files:
        raise ValueError(f"no images found in {', '.join(map(str, inputs))}")
    return files


def predict_paths(
    inputs: Sequence[str | Path],
    classifier: Classifier,
    out_dir: str | Path,
    *,
    voc_dir: str | Path | None = None,
    preprocess: Mapping[str, Any] | None = None,
    detect: Mapping[str, Any] | None = None,
    decode: bool = True,
    call: Mapping[str, Any] | None = None,
    cases: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
    detector: Callable[[np.ndarray], Any] | None = None,
) -> pd.DataFrame:
    """Predict every image (files or folders) into ``out_dir/<image stem>/``.

    Boxes come from ``voc_dir/<stem>.xml`` when ``voc_dir`` is given, else from the
    detector (``detector``, e.g. a learned one, or the classical one with ``detect``).
    An unreadable image or annotation does not stop the batch: its row in the returned
    table (also written as ``out_dir/summary.csv``) has ``status`` ``"error: <reason>"``.
    Progress is logged per image with its time. The images are grouped into cases
    (``cases``: config ``evaluate.cases``; by default each image is its own case) and
    each case's call goes to ``out_dir/cases.csv``.
    """
    from karyoflow.imageio import ImageReadError, read_image

    files = _expand(inputs)
    out = Path(out_dir)
    rows = []
    calls: dict[str, Any] = {}
    start = time.perf_counter()
    for k, path in enumerate(files, start=1):
        t0 = time.perf_counter()
        row: dict[str, Any] = {"image": str(path), "status": "ok"}
        try:
            image = read_image(path)
            boxes = None
            if voc_dir is not None:
                xml = Path(voc_dir) / f"{path.stem}.xml"
                if not xml.is_file():
                    raise FileNotFoundError(f"{xml}: annotation not found")
                boxes = read_boxes(xml)
            pred = predict_cell(
                image,
                classifier,
                boxes=boxes,
                preprocess=preprocess,
                detect=detect,
                decode=decode,
                call=call,
                source=str(path),
                detector=detector,
            )
            write_prediction(pred, out / path.stem)
            if pred.call is not None:
                calls[path.stem] = pred.call
            row.update(
                {
                    "iscn": pred.iscn,
                    "posterior": (
                        round(pred.posterior, 6) if math.isfinite(pred.posterior) else ""
                    ),
                    "runner_up": pred.runner_up,
                    "review": pred.review,
                    "objects": pred.objects,
                    "count": pred.count,
                    "flags": "; ".join(pred.flags),
                    "seconds": round(time.perf_counter() - t0, 3),
                    "karyogram": str(out / path.stem / "karyogram.png"),
                }
            )
        except (ImageReadError, OSError, ValueError) as exc:
            row["status"] = f"error: {exc}"
        rows.append(row)
        shown = row.get("iscn", row["status"])
        left = eta(k, len(files), time.perf_counter() - start)
        left = f"; {left}" if left and k < len(files) else ""
        log(
            f"[predict {k}/{len(files)}] {path.name}: {shown} "
            f"({time.perf_counter() - t0:.2f} s{left})"
        )
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    if calls:
        write_case_calls(calls, out / "cases.csv", cases=cases, call=call, log=log)
    with atomic_path(out / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    log(f"[predict] {len(files)} images in {time.perf_counter() - start:.1f} s -> {out}")
    return table
