"""From a metaphase image (or chromosome crops) to a karyogram and an ISCN count.

:func:`predict_cell` runs, for one image::

    boxes (given, from a VOC file, or detected: karyoflow.detect)
      -> preprocessing chain per box (the training chain, karyoflow.preprocess)
      -> classifier (+ relative size in the cell when the model takes it),
         probabilities calibrated (calibration.json beside the model)
      -> karyotype call over whole-cell hypotheses (karyoflow.evaluate.hypotheses):
         ISCN, posterior, runner-up, review flag and reasons
      -> karyogram (karyoflow.karyogram), overlay

:func:`write_prediction` writes ``karyogram.png``, ``overlay.png``,
``chromosomes.csv`` and ``summary.json`` for a cell; :func:`load_classifier` takes a
``.keras`` path, an MLflow model URI (``runs:/...``, ``models:/name/3``) or
``champion`` (the registry alias of ``karyoflow-classification``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path
from karyoflow.labels import LABELS

__all__ = [
    "CellPrediction",
    "Classifier",
    "default_model",
    "load_classifier",
    "predict_cell",
    "predict_crops",
    "predict_manifest_cells",
    "predict_paths",
    "run_predict_cells",
    "write_prediction",
]

#: The registered model whose ``champion`` alias ``load_classifier("champion")`` loads.
REGISTERED_MODEL = "karyoflow-classification"
#: Below this probability of its final label a chromosome is flagged uncertain.
DEFAULT_MIN_PROBABILITY = 0.5


@dataclass
class Classifier:
    """A loaded classification model and how to feed it."""

    model: Any
    height: int
    width: int
    size_features: bool
    source: str
    tta: str = "none"  # test-time views (karyoflow.train.views.TTA_MODES)
    calibration: Any = None  # karyoflow.evaluate.calibration.Calibration (None: identity)

    def predict(self, images: np.ndarray, sizes: np.ndarray | None = None) -> np.ndarray:
        """Calibrated class probabilities ``(N, 24)`` for uint8 images ``(N, H, W)``,
        averaged over the test-time views of :attr:`tta`, then rescaled by
        :attr:`calibration`."""
        from karyoflow.train.views import crop_views

        n = len(images)
        if n == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        views = crop_views(np.asarray(images), self.tta)
        if len(views) == 1:
            proba = self._predict(views[0], sizes)
        else:
            # all views in one batch: one network call per cell, not one per view
            tiled = (
                None if sizes is None else np.tile(np.asarray(sizes, np.float32), (len(views), 1))
            )
            proba = self._predict(np.concatenate(views), tiled)
            proba = proba.reshape(len(views), n, -1).mean(axis=0, dtype=np.float64)
        if self.calibration is not None:
            proba = self.calibration.apply(proba)
        return np.asarray(proba, np.float32)

    def _predict(self, images: np.ndarray, sizes: np.ndarray | None) -> np.ndarray:
        x = np.asarray(images, np.float32)[..., None]
        feed: Any = x
        if self.size_features:
            s = np.zeros((len(x), 2), np.float32) if sizes is None else sizes
            feed = [x, np.asarray(s, np.float32)]
        # one direct call per batch: model.predict builds a data pipeline each time, which
        # costs more than the network for one cell's ~46 chromosomes
        out = [
            np.asarray(
                self.model(
                    [f[i : i + 256] for f in feed] if isinstance(feed, list) else feed[i : i + 256],
                    training=False,
                ),
                np.float32,
            )
            for i in range(0, len(x), 256)
        ]
        return np.concatenate(out)


def default_model(results: str | Path = "results") -> Path:
    """The best classifier of the newest grid summary under ``results/train``.

    Raises
    ------
    FileNotFoundError
        No trained model yet (run the workflow, or give ``--model``).
    """
    found = sorted(
        Path(results).glob("train/*/best.json"), key=lambda p: (p.stat().st_mtime, str(p))
    )
    if not found:
        raise FileNotFoundError(
            f"{Path(results) / 'train'}: no trained model (run the workflow or give --model)"
        )
    best = json.loads(found[-1].read_text())["best"]
    path = found[-1].parent / best["model"] / best["point"] / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file listed in {found[-1]} is missing")
    return path


def load_classifier(
    source: str | Path, *, tracking_uri: str | None = None, tta: str = "none"
) -> Classifier:
    """Load a classifier from a ``.keras`` file, an MLflow model URI or ``champion``.

    ``tta``: test-time views its predictions average (config ``evaluate.tta``).

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    ValueError
        A model that is not a 24-class classifier of this project.
    """
    text = str(source)
    if text == "champion":
        text = f"models:/{REGISTERED_MODEL}@champion"
    if ":/" in text and not Path(text).exists():
        import mlflow
        import mlflow.keras

        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        model = mlflow.keras.load_model(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: model file not found")
        import keras

        model = keras.models.load_model(path)
    shape = model.inputs[0].shape
    if len(shape) != 4 or int(model.output_shape[-1]) != len(LABELS):
        raise ValueError(f"{text}: not a {len(LABELS)}-class chromosome classifier")
    from karyoflow.train.views import TTA_MODES

    if tta not in TTA_MODES:
        raise ValueError(f"unknown test-time view mode {tta!r}; use one of {sorted(TTA_MODES)}")
    calibration = _find_calibration(text, tracking_uri)
    return Classifier(
        model, int(shape[1]), int(shape[2]), len(model.inputs) == 2, text, tta, calibration
    )


def _find_calibration(source: str, tracking_uri: str | None) -> Any:
    """The calibration of a model: ``calibration.json`` beside a ``.keras`` file, or the
    tags of a registered version (``calibration_temperature``, ``review_min_posterior``,
    set by the evaluate rule); the identity when there is none."""
    from karyoflow.evaluate.calibration import Calibration, load_calibration

    if not source.startswith("models:/"):
        return load_calibration(source) if Path(source).exists() else Calibration()
    from mlflow.tracking import MlflowClient

    name, _, ref = source[len("models:/") :].partition("/")
    name, _, alias = name.partition("@")
    client = MlflowClient(tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias) if alias else None
        version = version or client.get_model_version(name, ref)
    except Exception:
        return Calibration()
    tags = dict(version.tags or {})
    if "calibration_temperature" not in tags:
        return Calibration()
    return load_calibration(
        {
            "temperature": float(tags["calibration_temperature"]),
            "fitted_on": "val",
            "review_min_posterior": float(tags.get("review_min_posterior", "nan")),
            "review_chosen_on": "val" if "review_min_posterior" in tags else "none",
        }
    )


@dataclass
class CellPrediction:
    """Everything predicted for one cell (one image)."""

    source: str
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 in the image
    labels: list[str]  # final (decoded) class of each chromosome
    probability: np.ndarray  # (N,) probability of the final class
    argmax_labels: list[str]  # before decoding
    top2: list[str]  # runner-up class
    centromere_y: np.ndarray  # (N,) estimated centromere, fraction of length from the top
    length_px: np.ndarray  # (N,)
    iscn: str
    count: int
    sex: str
    flags: list[str]
    rejected: list[tuple[int, str]]  # (box index, reason) of boxes the chain rejected
    timings: dict[str, float]
    karyogram: np.ndarray = field(repr=False)
    overlay: np.ndarray = field(repr=False)
    posterior: float = math.nan  # of the call (NaN without the hypothesis call)
    runner_up: str = ""
    runner_up_posterior: float = math.nan
    review: bool = False  # a person should check this cell
    reasons: list[str] = field(default_factory=list)  # why (empty when review is False)
    extra: np.ndarray | None = None  # (N,) bool: objects the call treats as not chromosomes
    missing: list[str] = field(default_factory=list)  # chromosomes of the call not found
    objects: int = -1  # objects classified (-1: same as count)
    call: Any = field(default=None, repr=False)  # the KaryotypeCall (case consensus)

    def table(self) -> pd.DataFrame:
        """One row per chromosome: box, classes, probability, flags."""
        flags = []
        extra = np.zeros(len(self.labels), bool) if self.extra is None else self.extra
        for i, lab in enumerate(self.labels):
            f = []
            if extra[i]:
                f.append("extra object")
            elif self.probability[i] < DEFAULT_MIN_PROBABILITY:
                f.append("uncertain")
            if lab != self.argmax_labels[i]:
                f.append("reassigned")
            flags.append(";".join(f))
        return pd.DataFrame(
            {
                "index": np.arange(len(self.labels)),
                "x0": self.boxes[:, 0] if len(self.boxes) else [],
                "y0": self.boxes[:, 1] if len(self.boxes) else [],
                "x1": self.boxes[:, 2] if len(self.boxes) else [],
                "y1": self.boxes[:, 3] if len(self.boxes) else [],
                "label": self.labels,
                "probability": np.round(self.probability, 4),
                "argmax_label": self.argmax_labels,
                "second_label": self.top2,
                "centromere_fraction": np.round(self.centromere_y, 3),
                "length_px": self.length_px,
                "flags": flags,
            }
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (ISCN, posterior, review, count, flags, timings)."""

        def num(v: float) -> float | None:
            return round(float(v), 6) if math.isfinite(v) else None

        return {
            "source": self.source,
            "iscn": self.iscn,
            "posterior": num(self.posterior),
            "runner_up": self.runner_up,
            "runner_up_posterior": num(self.runner_up_posterior),
            "review": self.review,
            "review_reasons": self.reasons,
            "count": self.count,
            "objects": self.count if self.objects < 0 else self.objects,
            "missing": self.missing,
            "extra_objects": 0 if self.extra is None else int(np.sum(self.extra)),
            "sex": self.sex,
            "abnormal": self.iscn not in ("46,XX", "46,XY"),
            "flags": self.flags,
            "uncertain": int((self.probability < DEFAULT_MIN_PROBABILITY).sum()),
            "reassigned": int(
                sum(a != b for a, b in zip(self.labels, self.argmax_labels, strict=True))
            ),
            "rejected_boxes": [{"index": i, "reason": r} for i, r in self.rejected],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _overlay(
    grey: np.ndarray, boxes: np.ndarray, labels: Sequence[str], flagged: Sequence[bool]
) -> np.ndarray:
    rgb = cv2.cvtColor(np.asarray(grey, np.uint8), cv2.COLOR_GRAY2RGB)
    thick = max(1, round(max(grey.shape) / 600))
    scale = max(0.4, max(grey.shape) / 1600)
    for (x0, y0, x1, y1), lab, bad in zip(boxes.tolist(), labels, flagged, strict=True):
        colour = (220, 40, 40) if bad else (30, 150, 60)
        cv2.rectangle(rgb, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), colour, thick)
        cv2.putText(
            rgb,
            lab,
            (int(x0), max(int(y0) - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            colour,
            thick,
            cv2.LINE_AA,
        )
    return rgb


def _banner(rgb: np.ndarray, title: str) -> np.ndarray:
    """The call (and its review reasons, in red) written above an overlay image."""
    from karyoflow.karyogram import title_lines

    lines = title_lines(title, max(rgb.shape[1] - 16, 100))
    heights = [round(34 * s / 0.8) for _, s in lines]
    band = np.full((sum(heights) + 6, rgb.shape[1], 3), 255, np.uint8)
    y = 0
    for k, ((text, s), h) in enumerate(zip(lines, heights, strict=True)):
        y += h
        colour = (0, 0, 0) if k == 0 else (170, 20, 20)
        thick = 2 if s >= 0.6 else 1
        cv2.putText(band, text, (8, y - 8), cv2.FONT_HERSHEY_SIMPLEX, s, colour, thick, cv2.LINE_AA)
    return np.vstack([band, rgb])


def _whiten(img: np.ndarray, background: int) -> np.ndarray:
    """Stretch grey levels so that the background becomes white (display only)."""
    scale = 255.0 / max(int(background), 1)
    return np.clip(np.asarray(img, np.float32) * scale, 0, 255).astype(np.uint8)


def predict_cell(
    image: np.ndarray,
    classifier: Classifier,
    *,
    boxes: np.ndarray | None = None,
    preprocess: Mapping[str, Any] | None = None,
    detect: Mapping[str, Any] | None = None,
    decode: bool = True,
    call: Mapping[str, Any] | None = None,
    source: str = "",
    detector: Callable[[np.ndarray], Any] | None = None,
) -> CellPrediction:
    """Find, classify and count the chromosomes of one metaphase image.

    Parameters
    ----------
    image : numpy.ndarray
        Grey or colour metaphase (any depth; converted as in preprocessing).
    classifier : Classifier
        From :func:`load_classifier`.
    boxes : numpy.ndarray, optional
        ``(N, 4)`` chromosome boxes ``x0, y0, x1, y1``; detected when not given.
    preprocess : mapping, optional
        Preprocessing parameters (``preprocess.params`` of the config the model was
        trained with); the output size is taken from the model, augmentation is off.
    detect : mapping, optional
        Detection parameters (``detect.params``) when boxes are not given.
    decode : bool
        The karyotype call (whole-cell hypotheses, or the assignment decoder when
        ``call["mode"]`` is ``"assignment"``); off: the per-chromosome argmax.
    call : mapping, optional
        Call settings (config ``evaluate.call``, over
        :data:`karyoflow.evaluate.hypotheses.DEFAULT_CALL`); ``review.min_posterior``
        ``"auto"`` takes the threshold chosen on val (the classifier's calibration).
    detector : callable, optional
        ``grey image -> Detections`` used instead of the classical detector when boxes
        are not given (a learned one: :func:`karyoflow.detect.pipeline.learned_detector`).

    Returns
    -------
    CellPrediction
    """
    from karyoflow.evaluate.hypotheses import (
        call_karyotype,
        resolve_call_params,
        review_reasons,
        review_threshold,
    )
    from karyoflow.iscn import iscn_karyotype
    from karyoflow.karyogram import KaryogramItem, render_karyogram
    from karyoflow.preprocess.chain import _run, resolve_params
    from karyoflow.preprocess.intensity import to_grey
    from karyoflow.train.features import relative_size_features

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    grey = to_grey(np.asarray(image))
    if boxes is None:
        from karyoflow.detect.pipeline import resolve_params as detect_params
        from karyoflow.detect.segment import detect_chromosomes

        if detector is not None:
            found = detector(grey)
        else:
            found = detect_chromosomes(grey, **detect_params(detect)["detector"])
        boxes = np.asarray(found.boxes, np.int64).reshape(-1, 4)
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    timings["detect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    params = resolve_params(
        {**dict(preprocess or {}), "sizes": {"model": [classifier.height, classifier.width]}}
    )
    kept, images, stages, cen, length, area, rejected = [], [], [], [], [], [], []
    backgrounds = []
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        row = {"kind": "metaphase", "x0": x0, "y0": y0, "x1": x1, "y1": y1}
        res = _run(grey, row, params)
        if res.status != "ok":
            rejected.append((i, res.status))
            continue
        kept.append(i)
        images.append(res.images["model"])
        stages.append(res.stages.get("straightened", res.images["model"]))
        backgrounds.append(res.background)
        cen.append(res.estimated_centromere_y)
        length.append(res.length_px)
        area.append(res.area_px)
    timings["preprocess"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n = len(kept)
    imgs = np.stack(images) if n else np.zeros((0, classifier.height, classifier.width), np.uint8)
    sizes = relative_size_features(np.array(length), np.array(area), np.zeros(n, int))
    proba = classifier.predict(imgs, sizes)
    timings["classify"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    argmax = proba.argmax(1) if n else np.zeros(0, int)
    par = resolve_call_params(call)
    par["review"]["min_posterior"] = review_threshold(
        par["review"]["min_posterior"], classifier.calibration
    )
    min_probability = float(par["review"]["min_probability"])
    result = call_karyotype(proba, par) if decode and n else None
    final = np.asarray(result.labels) if result is not None else argmax
    extra = result.extra if result is not None else np.zeros(n, bool)
    prob = proba[np.arange(n), final] if n else np.zeros(0)
    top2 = np.argsort(-proba, axis=1)[:, 1] if n else np.zeros(0, int)
    labels = [LABELS[int(k)] for k in final]
    if result is not None:
        iscn, sex = result.iscn, result.sex
        reasons = review_reasons(result, prob, par["review"])
    else:
        iscn = iscn_karyotype(labels) if n else "0"
        sex = ""
        reasons = [f"count {n} (46 expected)"] if n != 46 else []
        if iscn not in ("46,XX", "46,XY"):
            reasons.append(f"abnormal: {iscn}")
    flags = list(reasons)
    if rejected:
        flags.append(f"{len(rejected)} boxes rejected by preprocessing")
    items = [
        KaryogramItem(
            _whiten(stages[j], backgrounds[j]),
            "?" if extra[j] else labels[j],
            float(prob[j]),
            float(cen[j]) * stages[j].shape[0] if math.isfinite(cen[j]) else math.nan,
            bool(prob[j] < min_probability or final[j] != argmax[j] or extra[j]),
        )
        for j in range(n)
    ]
    head = (
        iscn
        if result is None or not math.isfinite(result.posterior)
        else (
            f"{iscn}   (posterior {result.posterior:.2f}; next {result.runner_up} "
            f"{result.runner_up_posterior:.2f}; {n} objects)"
        )
    )
    title = head + (f"\nreview: {'; '.join(reasons)}" if reasons else "")
    karyogram = render_karyogram(items, title=title)
    kept_boxes = boxes[kept] if n else np.zeros((0, 4), np.int64)
    overlay = _overlay(grey, kept_boxes, labels, [it.flagged for it in items])
    overlay = _banner(overlay, title)
    timings["decode_and_render"] = time.perf_counter() - t0
    return CellPrediction(
        source=source,
        boxes=kept_boxes,
        labels=labels,
        probability=np.asarray(prob, np.float64),
        argmax_labels=[LABELS[int(k)] for k in argmax],
        top2=[LABELS[int(k)] for k in top2],
        centromere_y=np.asarray(cen, np.float64),
        length_px=np.asarray(length, np.float64),
        iscn=iscn,
        count=int(iscn.split(",")[0]) if iscn[:1].isdigit() else n,
        sex=sex,
        flags=flags,
        rejected=rejected,
        timings=timings,
        karyogram=karyogram,
        overlay=overlay,
        posterior=math.nan if result is None else float(result.posterior),
        runner_up="" if result is None else result.runner_up,
        runner_up_posterior=math.nan if result is None else float(result.runner_up_posterior),
        review=bool(reasons),
        reasons=reasons,
        extra=np.asarray(extra, bool),
        missing=[] if result is None else list(result.missing),
        objects=n,
        call=result,
    )


def predict_crops(
    crops: Sequence[np.ndarray],
    classifier: Classifier,
    *,
    preprocess: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Classify single-chromosome crops (no decoding: they need not form a cell).

    Returns one row per crop: ``label``, ``probability``, ``second_label``, ``status``.
    Size features are relative to the given crops' median, so give the crops of one
    cell together.
    """
    from karyoflow.preprocess.chain import _run, resolve_params
    from karyoflow.preprocess.intensity import to_grey
    from karyoflow.train.features import relative_size_features

    params = resolve_params(
        {**dict(preprocess or {}), "sizes": {"model": [classifier.height, classifier.width]}}
    )
    rows, images, length, area = [], [], [], []
    for crop in crops:
        grey = to_grey(np.asarray(crop))
        res = _run(grey, {"kind": "crop"}, params)
        rows.append(res.status)
        if res.status == "ok":
            images.append(res.images["model"])
            length.append(res.length_px)
            area.append(res.area_px)
    n = len(images)
    imgs = np.stack(images) if n else np.zeros((0, classifier.height, classifier.width), np.uint8)
    proba = classifier.predict(
        imgs, relative_size_features(np.array(length), np.array(area), np.zeros(n, int))
    )
    out, j = [], 0
    for status in rows:
        if status != "ok":
            out.append({"label": "", "probability": math.nan, "second_label": "", "status": status})
            continue
        order = np.argsort(-proba[j])
        out.append(
            {
                "label": LABELS[int(order[0])],
                "probability": round(float(proba[j, order[0]]), 4),
                "second_label": LABELS[int(order[1])],
                "status": "ok",
            }
        )
        j += 1
    return pd.DataFrame(out)


def write_prediction(pred: CellPrediction, out_dir: str | Path) -> dict[str, Path]:
    """Write ``karyogram.png``, ``overlay.png``, ``chromosomes.csv``, ``summary.json``.

    Each file is written through a temporary name (nothing half-written is left).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "karyogram": out / "karyogram.png",
        "overlay": out / "overlay.png",
        "table": out / "chromosomes.csv",
        "summary": out / "summary.json",
    }
    for key in ("karyogram", "overlay"):
        img = getattr(pred, key)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
        if not ok:
            raise OSError(f"{paths[key]}: PNG encoding failed")
        with atomic_path(paths[key]) as tmp:
            tmp.write_bytes(buf.tobytes())
    with atomic_path(paths["table"]) as tmp:
        pred.table().to_csv(tmp, index=False)
    with atomic_path(paths["summary"]) as tmp:
        tmp.write_text(json.dumps(pred.summary(), indent=2) + "\n")
    return paths


def read_boxes(xml_path: str | Path) -> np.ndarray:
    """Chromosome boxes ``(N, 4)`` of one Pascal VOC file (strict: a bad file raises).

    Raises
    ------
    ValueError
        ``"<file>: <reason>"`` for malformed or hostile XML, or a bad box.
    """
    from karyoflow.readers.voc import read_voc_boxes

    return read_voc_boxes(xml_path)


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
        from karyoflow.detect.pipeline import learned_detector

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
        log(f"[predict {k}/{len(files)}] {path.name}: {shown} ({time.perf_counter() - t0:.2f} s)")
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    if calls:
        write_case_calls(calls, out / "cases.csv", cases=cases, call=call, log=log)
    with atomic_path(out / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    log(f"[predict] {len(files)} images in {time.perf_counter() - start:.1f} s -> {out}")
    return table
