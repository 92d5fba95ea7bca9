"""Quality-control contact sheet of the preprocessing stages.

One row per class (1..22, X, Y), for each sampled instance three panels: the raw crop,
the masked (enhanced) crop and the straightened/oriented result. Composed with numpy and
OpenCV (no matplotlib), so the PNG bytes are a deterministic function of the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from karyoflow.fileutil import atomic_path
from karyoflow.labels import LABELS
from karyoflow.preprocess.intensity import to_grey
from karyoflow.preprocess.resize import pad_resize
from karyoflow.split import stable_seed

__all__ = ["STAGE_PANELS", "contact_sheet", "qc_sheet_for_manifest", "render_contact_sheet"]

#: (title, stage keys tried in order) of the panels shown for every instance.
STAGE_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("raw", ("raw",)),
    ("masked", ("masked", "enhanced")),
    ("final", ("straightened",)),
)

_CELL = 84  # panel size (px)
_GAP = 4  # between panels of one instance
_GROUP_GAP = 18  # between instances
_LABEL_W = 46
_CAPTION = 14
_HEADER = 56
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int = 1) -> None:
    cv2.putText(img, text, org, _FONT, scale, 0, thick, cv2.LINE_AA)


def _panel(stage: np.ndarray | None) -> np.ndarray:
    cell = np.full((_CELL, _CELL), 255, np.uint8)
    if stage is None or stage.size == 0:
        cv2.line(cell, (8, 8), (_CELL - 9, _CELL - 9), 180, 1)
        cv2.line(cell, (8, _CELL - 9), (_CELL - 9, 8), 180, 1)
    else:
        grey = to_grey(np.asarray(stage))
        cell, _, _ = pad_resize(grey, (_CELL - 2, _CELL - 2), background=255)
        cell = cv2.copyMakeBorder(cell, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=160)
    return cell


def render_contact_sheet(
    samples: Sequence[Mapping[str, Any]], *, title: str, per_class: int = 3
) -> np.ndarray:
    """The contact sheet as a ``uint8`` grey image (see :func:`contact_sheet`).

    Examples
    --------
    >>> s = {"label_index": 0, "instance_id": "a/1",
    ...      "stages": {"raw": np.zeros((30, 20), np.uint8)}}
    >>> render_contact_sheet([s], title="t").shape
    (2504, 870)
    """
    by_label: dict[int, list[Mapping[str, Any]]] = {}
    for sample in samples:
        lab = int(sample.get("label_index", -1))
        if 0 <= lab < len(LABELS) and len(by_label.setdefault(lab, [])) < per_class:
            by_label[lab].append(sample)
    group_w = len(STAGE_PANELS) * _CELL + (len(STAGE_PANELS) - 1) * _GAP
    width = _LABEL_W + per_class * group_w + (per_class - 1) * _GROUP_GAP + 8
    row_h = _CELL + _CAPTION + 4
    sheet = np.full((_HEADER + len(LABELS) * row_h, width), 255, np.uint8)
    _text(sheet, title, (8, 22), 0.6, 1)
    for k in range(per_class):
        for j, (name, _) in enumerate(STAGE_PANELS):
            x = _LABEL_W + k * (group_w + _GROUP_GAP) + j * (_CELL + _GAP)
            _text(sheet, name, (x + 4, _HEADER - 8), 0.45)
    for i, lab in enumerate(LABELS):
        y = _HEADER + i * row_h
        cv2.line(sheet, (0, y), (width - 1, y), 215, 1)
        _text(sheet, lab, (8, y + _CELL // 2 + 8), 0.7, 2)
        members = by_label.get(i, [])
        if not members:
            _text(sheet, "no sample", (_LABEL_W + 8, y + _CELL // 2 + 6), 0.45)
        for k, sample in enumerate(members):
            stages = sample.get("stages", {})
            x0 = _LABEL_W + k * (group_w + _GROUP_GAP)
            for j, (_, keys) in enumerate(STAGE_PANELS):
                stage = next((stages[key] for key in keys if key in stages), None)
                x = x0 + j * (_CELL + _GAP)
                sheet[y + 3 : y + 3 + _CELL, x : x + _CELL] = _panel(stage)
            caption = str(sample.get("instance_id", ""))[-28:]
            _text(sheet, caption, (x0 + 2, y + 3 + _CELL + _CAPTION - 3), 0.36)
    return sheet


def contact_sheet(
    samples: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str,
    per_class: int = 3,
) -> Path:
    """Write a PNG showing raw crop -> masked -> straightened/oriented per class.

    Parameters
    ----------
    samples : sequence of mapping
        ``{"label_index": int, "instance_id": str, "stages": {"raw": ..., "masked":
        ..., "straightened": ...}}`` (e.g. :attr:`ShardData.qc`); the first
        ``per_class`` of each label are shown, in the order given.
    path : path
        Output PNG (written atomically; same samples, same bytes).
    title : str
        Printed at the top.
    per_class : int
        Instances per class (row).

    Returns
    -------
    pathlib.Path
    """
    sheet = render_contact_sheet(samples, title=title, per_class=per_class)
    ok, buf = cv2.imencode(".png", sheet, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path


def qc_sheet_for_manifest(
    manifest: pd.DataFrame,
    params: Mapping[str, Any] | None,
    path: str | Path,
    *,
    per_class: int = 3,
    seed: int = 0,
    title: str,
    log: Callable[[str], None] = print,
) -> Path:
    """Preprocess a few instances per class of ``manifest`` and draw their stages.

    Per label, ``per_class`` rows of the single-chromosome kinds are drawn at random
    (``stable_seed(seed, "qc", label)``), processed without augmentation and passed to
    :func:`contact_sheet`. Rejected instances are logged and left out.
    """
    from karyoflow.preprocess.chain import preprocess_rows
    from karyoflow.preprocess.sharding import eligible_rows

    rows = eligible_rows(manifest)
    picks = []
    for lab, group in rows[rows["label_index"] >= 0].groupby("label_index", sort=True):
        rng = np.random.default_rng(stable_seed(seed, "qc", int(lab)))
        take = min(per_class, len(group))
        picks.append(group.iloc[np.sort(rng.choice(len(group), take, replace=False))])
    chosen = pd.concat(picks) if picks else rows.iloc[:0]
    p = {**dict(params or {}), "augment": {**dict((params or {}).get("augment", {})), "copies": 0}}
    data = preprocess_rows(chosen, p, seed, log=log, qc_per_class=per_class)
    for instance_id, source, reason in data.rejects:
        log(f"qc: {instance_id} ({source}) rejected: {reason}")
    order = {iid: k for k, iid in enumerate(chosen["instance_id"].astype(str))}
    samples = sorted(data.qc, key=lambda q: (q["label_index"], order.get(q["instance_id"], 0)))
    return contact_sheet(samples, path, title=title, per_class=per_class)
