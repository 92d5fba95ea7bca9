"""Figures of detection results: true and detected boxes over the metaphase.

Drawn with OpenCV on an RGB copy of the image (arrays in, arrays out):

- true boxes that were found: thin green;
- true boxes that were missed (false negatives): thick orange;
- detections matched to a true box: thin blue, with their mask tinted;
- detections matched to nothing (false positives): thick red.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from karyoflow.preprocess.intensity import to_grey
from karyoflow.tasks.detection.evaluate import MatchResult, match_boxes

__all__ = ["COLOURS", "overlay_detections", "side_by_side"]

#: RGB colours of the four box kinds.
COLOURS: dict[str, tuple[int, int, int]] = {
    "true_found": (0, 170, 0),
    "true_missed": (255, 140, 0),
    "detected_matched": (30, 90, 255),
    "detected_false": (220, 0, 0),
}


def _rect(img: np.ndarray, box: Sequence[float], colour: tuple[int, int, int], width: int) -> None:
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    cv2.rectangle(img, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), colour, width)


def overlay_detections(
    image: np.ndarray,
    true_boxes: Any,
    detected_boxes: Any,
    *,
    labels: np.ndarray | None = None,
    match: MatchResult | None = None,
    title: str | None = None,
) -> np.ndarray:
    """True vs detected boxes drawn over ``image`` (colours in :data:`COLOURS`).

    Parameters
    ----------
    image : numpy.ndarray
        The metaphase (grey or colour, any depth); drawn in grey.
    true_boxes, detected_boxes : array_like
        ``(N, 4)``, ``(M, 4)`` boxes ``x0, y0, x1, y1``.
    labels : numpy.ndarray, optional
        Label image of the detections (``i + 1`` = detection ``i``); tinted when given.
    match : MatchResult, optional
        Matching to colour by; computed at IoU 0.5 when omitted.
    title : str, optional
        Text written in the top-left corner.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W, 3)`` RGB.

    Examples
    --------
    >>> img = np.full((50, 60), 220, np.uint8)
    >>> out = overlay_detections(img, [[5, 5, 20, 30]], [[6, 5, 20, 30], [40, 40, 50, 48]])
    >>> out.shape, tuple(int(v) for v in out[40, 45])
    ((50, 60, 3), (220, 0, 0))
    """
    grey = to_grey(np.asarray(image))
    rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    t = np.asarray(true_boxes, float).reshape(-1, 4)
    d = np.asarray(detected_boxes, float).reshape(-1, 4)
    if match is None:
        match = match_boxes(t, d)
    found_t = np.zeros(len(t), bool)
    found_d = np.zeros(len(d), bool)
    found_t[match.pairs[:, 0]] = True
    found_d[match.pairs[:, 1]] = True
    if labels is not None and labels.shape == grey.shape and len(d):
        lab = np.asarray(labels)
        rng = np.random.default_rng(0)
        palette = rng.integers(80, 256, (int(lab.max()) + 1, 3)).astype(np.float32)
        sel = lab > 0
        rgb[sel] = (0.65 * rgb[sel] + 0.35 * palette[lab[sel]]).astype(np.uint8)
    thick = max(2, round(min(grey.shape) / 300))
    for box, ok in zip(t, found_t, strict=True):
        _rect(rgb, box, COLOURS["true_found" if ok else "true_missed"], 1 if ok else thick)
    for box, ok in zip(d, found_d, strict=True):
        _rect(rgb, box, COLOURS["detected_matched" if ok else "detected_false"], 1 if ok else thick)
    if title:
        scale = max(0.4, min(grey.shape) / 1200)
        # white text outlined in black: readable on any background
        for colour, width in (((0, 0, 0), 2 * thick), ((255, 255, 255), max(1, thick // 2))):
            cv2.putText(
                rgb,
                title,
                (6, int(22 * scale / 0.5)),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                colour,
                width,
                cv2.LINE_AA,
            )
    return rgb


def side_by_side(panels: Sequence[np.ndarray], *, height: int = 700, gap: int = 8) -> np.ndarray:
    """Scale RGB panels to one ``height`` and join them left to right on white.

    Examples
    --------
    >>> side_by_side([np.zeros((10, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8)],
    ...              height=10, gap=2).shape
    (10, 32, 3)
    """
    scaled = []
    for p in panels:
        h, w = p.shape[:2]
        scaled.append(
            cv2.resize(p, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
        )
    if not scaled:
        return np.full((height, 1, 3), 255, np.uint8)
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for i, p in enumerate(scaled):
        if i:
            parts.append(spacer)
        parts.append(p)
    return np.concatenate(parts, axis=1)
