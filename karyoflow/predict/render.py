"""What a cell's prediction looks like on disk: karyogram, overlay, tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from karyoflow.fileutil import atomic_path

if TYPE_CHECKING:
    from karyoflow.predict.cell import CellPrediction


__all__ = [
    "add_banner",
    "overlay_boxes",
    "whiten_background",
    "write_prediction",
]


def overlay_boxes(
    grey: np.ndarray, boxes: np.ndarray, labels: Sequence[str], flagged: Sequence[bool]
) -> np.ndarray:
    """The metaphase ``(H, W)`` as RGB ``(H, W, 3)`` with each box and its label drawn:
    green, or red where ``flagged`` (uncertain)."""
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


def add_banner(rgb: np.ndarray, title: str) -> np.ndarray:
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


def whiten_background(img: np.ndarray, background: int) -> np.ndarray:
    """Stretch grey levels so that the background becomes white (display only)."""
    scale = 255.0 / max(int(background), 1)
    return np.clip(np.asarray(img, np.float32) * scale, 0, 255).astype(np.uint8)


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
