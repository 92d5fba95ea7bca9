"""Karyogram rendering: classified chromosome images arranged in the standard ISCN rows.

:func:`render_karyogram` takes the straightened, vertical chromosome images of one cell
(at their *source* scale, so relative sizes stay visible), each with its class, and
arranges them as a cytogeneticist expects::

    1  2  3
    4  5
    6  7  8  9  10  11  12  X
    13 14 15
    16 17 18
    19 20
    21 22  Y

Homologues sit side by side, aligned on the centromere when it is known (else on their
middle), with the class label under each group; chromosomes flagged as uncertain are
framed in red, and the ISCN summary is written as a title.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from karyoflow.labels import LABELS

__all__ = ["ISCN_ROWS", "KaryogramItem", "render_karyogram", "title_lines"]

#: The standard karyogram rows.
ISCN_ROWS: tuple[tuple[str, ...], ...] = (
    ("1", "2", "3"),
    ("4", "5"),
    ("6", "7", "8", "9", "10", "11", "12", "X"),
    ("13", "14", "15"),
    ("16", "17", "18"),
    ("19", "20"),
    ("21", "22", "Y"),
)

_RED = (200, 30, 30)
_GREY = (90, 90, 90)


@dataclass
class KaryogramItem:
    """One chromosome to place.

    ``image`` is uint8 grey ``(H, W)``, vertical, short arm up, dark on light;
    ``centromere_y`` is its centromere row (NaN: unknown); ``flagged`` draws a red frame
    (low confidence, or moved by the karyotype decoder).
    """

    image: np.ndarray
    label: str
    probability: float = math.nan
    centromere_y: float = math.nan
    flagged: bool = False


def _group_width(items: Sequence[KaryogramItem], gap: int, slot: int) -> int:
    if not items:
        return 2 * slot + gap
    return sum(it.image.shape[1] for it in items) + gap * (len(items) - 1)


def render_karyogram(
    items: Sequence[KaryogramItem],
    *,
    title: str | None = None,
    scale: float | None = None,
    gap: int = 4,
    group_gap: int = 24,
    row_gap: int = 30,
    margin: int = 16,
    target_height: int = 110,
) -> np.ndarray:
    """Arrange classified chromosomes of one cell into a karyogram (RGB uint8).

    Parameters
    ----------
    items : sequence of KaryogramItem
        Chromosomes with labels among :data:`karyoflow.labels.LABELS`; others go to an
        extra row labelled ``?``.
    title : str, optional
        Written at the top (e.g. the ISCN summary).
    scale : float, optional
        Zoom of every image; default: the tallest chromosome becomes ``target_height``
        pixels (one factor for all, so relative sizes are kept).
    gap, group_gap, row_gap, margin : int
        Spacing in output pixels.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Examples
    --------
    >>> bar = np.full((40, 12), 255, np.uint8); bar[2:38, 3:9] = 40
    >>> items = [KaryogramItem(bar, "1"), KaryogramItem(bar, "1"), KaryogramItem(bar[:20], "21")]
    >>> out = render_karyogram(items, title="46,XX")
    >>> out.ndim, out.dtype.name, out.shape[2]
    (3, 'uint8', 3)
    """
    items = [it for it in items if np.asarray(it.image).size]
    tallest = max((it.image.shape[0] for it in items), default=1)
    zoom = float(scale) if scale is not None else target_height / max(tallest, 1)
    placed: list[KaryogramItem] = []
    for it in items:
        img = np.asarray(it.image)
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        h, w = img.shape
        nh, nw = max(1, round(h * zoom)), max(1, round(w * zoom))
        img = cv2.resize(
            img, (nw, nh), interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
        )
        cy = it.centromere_y * zoom if np.isfinite(it.centromere_y) else nh / 2.0
        placed.append(KaryogramItem(img, str(it.label), it.probability, cy, it.flagged))

    groups: dict[str, list[KaryogramItem]] = {lab: [] for lab in LABELS}
    unknown: list[KaryogramItem] = []
    for it in placed:
        groups.get(it.label, unknown).append(it)
    for lab in groups:  # most confident first
        groups[lab].sort(key=lambda it: -(it.probability if np.isfinite(it.probability) else 0))
    rows: list[list[tuple[str, list[KaryogramItem]]]] = [
        [(lab, groups[lab]) for lab in row] for row in ISCN_ROWS
    ]
    if unknown:
        rows.append([("?", unknown)])

    slot = max(8, round(12 * zoom))
    label_h = 18
    row_boxes = []
    width = 0
    for row in rows:
        above = max((it.centromere_y for _, g in row for it in g), default=20.0)
        below = max((it.image.shape[0] - it.centromere_y for _, g in row for it in g), default=20.0)
        row_w = sum(_group_width(g, gap, slot) for _, g in row) + group_gap * (len(row) - 1)
        width = max(width, row_w)
        row_boxes.append((math.ceil(above), math.ceil(below)))
    width += 2 * margin
    lines = title_lines(title or "", width - 2 * margin)
    title_h = sum(round(34 * s / 0.8) for _, s in lines)
    height = title_h + margin + sum(a + b + label_h + row_gap for a, b in row_boxes) + margin
    canvas = np.full((height, width, 3), 255, np.uint8)
    ty = 0
    for k, (text, s) in enumerate(lines):
        ty += round(34 * s / 0.8)
        colour = (0, 0, 0) if k == 0 else (170, 20, 20)
        cv2.putText(
            canvas,
            text,
            (margin, ty - round(8 * s / 0.8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            s,
            colour,
            2 if s >= 0.6 else 1,
            cv2.LINE_AA,
        )
    y = title_h + margin
    for row, (above, below) in zip(rows, row_boxes, strict=True):
        row_w = sum(_group_width(g, gap, slot) for _, g in row) + group_gap * (len(row) - 1)
        x = margin + (width - 2 * margin - row_w) // 2
        axis = y + above
        for lab, group in row:
            gw = _group_width(group, gap, slot)
            gx = x
            for it in group:
                h, w = it.image.shape
                top = round(axis - it.centromere_y)
                canvas[top : top + h, gx : gx + w] = it.image[..., None]
                if it.flagged:
                    cv2.rectangle(canvas, (gx - 1, top - 1), (gx + w, top + h), _RED, 1)
                gx += w + gap
            base = axis + below + 4
            cv2.line(canvas, (x, base), (x + gw, base), _GREY, 1)
            size, _ = cv2.getTextSize(lab, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            colour = _RED if lab == "?" else (0, 0, 0)
            cv2.putText(
                canvas,
                lab,
                (x + (gw - size[0]) // 2, base + 14),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                colour,
                1,
                cv2.LINE_AA,
            )
            x += gw + group_gap
        y += above + below + label_h + row_gap
    return canvas


def title_lines(title: str, width: int) -> list[tuple[str, float]]:
    """Lines of a karyogram title that fit ``width`` pixels, with their font scales.

    Each ``\\n``-separated line is drawn at scale 0.8, shrunk down to 0.5 when it is too
    wide, then wrapped at spaces; the first line is the call, the rest its notes.

    Examples
    --------
    >>> title_lines("46,XY", 400)
    [('46,XY', 0.8)]
    >>> len(title_lines("review: " + "low posterior; " * 20, 300)) > 2
    True
    """
    out: list[tuple[str, float]] = []

    def fits(text: str, scale: float) -> bool:
        size, _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2 if scale >= 0.6 else 1)
        return size[0] <= width

    for k, line in enumerate(str(title).split("\n")):
        if not line.strip():
            continue
        scale = 0.8 if k == 0 else 0.6
        while scale > 0.5 and not fits(line, scale):
            scale = round(scale - 0.05, 2)
        if fits(line, scale):
            out.append((line, scale))
            continue
        current = ""
        for word in line.split(" "):
            trial = f"{current} {word}".strip()
            if current and not fits(trial, scale):
                out.append((current, scale))
                current = word
            else:
                current = trial
        if current:
            out.append((current, scale))
    return out
