"""One cell: its boxes -> preprocessed crops -> calibrated probabilities -> karyotype call."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.labels import LABELS
from karyoflow.predict.classifier import DEFAULT_MIN_PROBABILITY, Classifier
from karyoflow.predict.render import add_banner, overlay_boxes, whiten_background

__all__ = [
    "CellPrediction",
    "predict_cell",
    "predict_crops",
    "read_boxes",
]


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
        are not given (a learned one: :func:`karyoflow.tasks.detection.pipeline.learned_detector`).

    Returns
    -------
    CellPrediction
    """
    from karyoflow.evaluate.calibration import domain_warning
    from karyoflow.evaluate.hypotheses import (
        call_karyotype,
        resolve_call_params,
        review_reasons,
        review_threshold,
    )
    from karyoflow.iscn import iscn_karyotype
    from karyoflow.karyogram import KaryogramItem, render_karyogram
    from karyoflow.preprocess.chain import preprocess_grey, resolve_params
    from karyoflow.preprocess.intensity import to_grey
    from karyoflow.tasks.classification.features import relative_size_features

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    grey = to_grey(np.asarray(image))
    if boxes is None:
        from karyoflow.tasks.detection.pipeline import resolve_params as detect_params
        from karyoflow.tasks.detection.segment import detect_chromosomes

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
        res = preprocess_grey(grey, row, params)
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
    unlike = domain_warning(
        float(proba.max(1).mean()) if n else math.nan,
        classifier.calibration,
        float(par["review"]["domain_ratio"]),
    )
    if unlike:
        reasons = [*reasons, unlike]
    flags = list(reasons)
    if rejected:
        flags.append(f"{len(rejected)} boxes rejected by preprocessing")
    items = [
        KaryogramItem(
            whiten_background(stages[j], backgrounds[j]),
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
    overlay = overlay_boxes(grey, kept_boxes, labels, [it.flagged for it in items])
    overlay = add_banner(overlay, title)
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
    from karyoflow.preprocess.chain import preprocess_grey, resolve_params
    from karyoflow.preprocess.intensity import to_grey
    from karyoflow.tasks.classification.features import relative_size_features

    params = resolve_params(
        {**dict(preprocess or {}), "sizes": {"model": [classifier.height, classifier.width]}}
    )
    rows, images, length, area = [], [], [], []
    for crop in crops:
        grey = to_grey(np.asarray(crop))
        res = preprocess_grey(grey, {"kind": "crop"}, params)
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


def read_boxes(xml_path: str | Path) -> np.ndarray:
    """Chromosome boxes ``(N, 4)`` of one Pascal VOC file (strict: a bad file raises).

    Raises
    ------
    ValueError
        ``"<file>: <reason>"`` for malformed or hostile XML, or a bad box.
    """
    from karyoflow.readers.voc import read_voc_boxes

    return read_voc_boxes(xml_path)
