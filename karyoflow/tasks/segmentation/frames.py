"""Single chromosomes cut out of unannotated microscope frames, as pair sources.

The public overlapping-pairs dataset was made from fluorescence frames (DAPI): isolated
chromosomes were cut out of whole fields and overlaid. A ``frames`` dataset (one
manifest row per frame, no boxes) becomes a pair source here: each frame is segmented
with the classical detector (:func:`karyoflow.tasks.detection.segment.detect_chromosomes`, the
same one that finds chromosomes in metaphases), and every object that looks like one
isolated chromosome is kept with its own mask. Objects that touch the frame edge, are
too small, or are not solid enough (two chromosomes touching, bent clusters) are
rejected with that reason, never dropped silently.

A frame is one cell. With few frames a by-cell split leaves nothing to test on, so the
chromosomes can instead be divided between train / val / test within each frame
(``split_by: chromosome``): test pairs then hold chromosomes never seen in training,
but from the same cell (and the same slide, stain and camera) as the training ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from karyoflow.engine.params import merge_params
from karyoflow.split import stable_seed

__all__ = [
    "DEFAULT_FRAMES",
    "FrameChromosome",
    "assign_by_fraction",
    "frame_chromosomes",
    "frame_sources",
    "optical_density",
    "resolve_frames_params",
    "scale_frame",
]

#: Options of ``overlaps.generate.frames`` (frames datasets only).
DEFAULT_FRAMES: dict[str, Any] = {
    "split_by": "chromosome",  # chromosome: divide each frame's chromosomes | cell: by frame
    "fractions": [0.6, 0.1, 0.3],  # train, val, test shares (split_by: chromosome)
    "min_solidity": 0.85,  # area / convex hull area: lower is two touching chromosomes
    "border": 2,  # px: objects this close to the frame edge are cut off, rejected
    # null: frames to 8-bit as everywhere (to_grey: 0.5-99.5th percentiles to 0-255);
    # a grey level: 0.5th percentile to 0, 99.95th to this level (fluorescence: headroom
    # for the added light of overlaps, which would otherwise saturate)
    "peak": None,
    "detect": {},  # detect_chromosomes options (karyoflow.tasks.detection.segment)
}

_SPLITS = ("train", "val", "test")


def resolve_frames_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``params`` over :data:`DEFAULT_FRAMES` and check them (``ValueError``: an
    unknown key or a value out of range).

    Examples
    --------
    >>> resolve_frames_params({"min_solidity": 0.7})["fractions"]
    [0.6, 0.1, 0.3]
    >>> resolve_frames_params({"fractions": [0.5, 0.5]})
    Traceback (most recent call last):
    ...
    ValueError: frames fractions must be three shares [train, val, test] summing to 1
    """
    out = merge_params(DEFAULT_FRAMES, params, what="frames option")
    if out["split_by"] not in ("chromosome", "cell"):
        raise ValueError("frames split_by must be 'chromosome' or 'cell'")
    fr = out["fractions"]
    if (
        not isinstance(fr, Sequence)
        or len(fr) != 3
        or any(float(v) < 0 for v in fr)
        or abs(sum(float(v) for v in fr) - 1.0) > 1e-6
    ):
        raise ValueError("frames fractions must be three shares [train, val, test] summing to 1")
    out["fractions"] = [float(v) for v in fr]
    if not 0.0 <= float(out["min_solidity"]) <= 1.0:
        raise ValueError("frames min_solidity must be in [0, 1]")
    if int(out["border"]) < 0:
        raise ValueError("frames border must be >= 0")
    if out["peak"] is not None and not 16 <= float(out["peak"]) <= 255:
        raise ValueError("frames peak must be null or a grey level in [16, 255]")
    if not isinstance(out["detect"], Mapping):
        raise ValueError("frames detect must be a mapping of detect_chromosomes options")
    from karyoflow.tasks.detection.segment import detector_defaults

    unknown = set(out["detect"]) - set(detector_defaults())
    if unknown:
        raise ValueError(f"unknown frames detect option {sorted(unknown)[0]!r}")
    return out


def optical_density(img: np.ndarray, mask: np.ndarray, background: float) -> np.ndarray:
    """``-log10(img / background)`` inside ``mask`` (dark-on-light ``img``), 0 outside.

    Examples
    --------
    >>> img = np.array([[230, 23]], np.uint8)
    >>> optical_density(img, np.array([[True, True]]), 230.0).round(2).tolist()
    [[0.0, 1.0]]
    """
    bg = max(float(background), 1.0)
    od = np.clip(-np.log10(np.maximum(np.asarray(img, np.float32), 1.0) / bg), 0.0, None)
    return np.where(np.asarray(mask, bool), od, 0.0).astype(np.float32)


def scale_frame(
    image: np.ndarray, peak: float, *, percentiles: tuple[float, float] = (0.5, 99.95)
) -> np.ndarray:
    """A deep (e.g. 16-bit) frame to 8-bit, its ``percentiles`` mapped to ``0`` and ``peak``.

    Unlike :func:`karyoflow.preprocess.intensity.to_grey`, which stretches the frame over
    the whole 0-255 range (the brightest chromatin clipped), this keeps the chromatin
    below ``peak`` so that intensities added later (overlaps) have room.

    Examples
    --------
    >>> deep = np.linspace(0, 4000, 101, dtype=np.float32).reshape(1, -1).astype(np.uint16)
    >>> g = scale_frame(deep, 128, percentiles=(0, 100)); (int(g.min()), int(g.max()))
    (0, 128)
    """
    from karyoflow.preprocess.intensity import to_grey

    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = to_grey(arr) if arr.dtype == np.uint8 else arr[..., 0]
    lo, hi = (float(v) for v in np.percentile(arr, percentiles))
    scale = float(peak) / max(hi - lo, 1e-6)
    out = (arr.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass
class FrameChromosome:
    """One object found in a frame: its box, and its density and mask when kept.

    Attributes
    ----------
    index : int
        Detection index in the frame (ordered as the detector returns them).
    box : tuple of int
        ``x0, y0, x1, y1`` of the mask (exclusive ends), frame pixels.
    area : int
        Mask pixels.
    solidity : float
        Area over convex-hull area.
    reason : str
        Empty if kept, else why it was rejected.
    od, mask : numpy.ndarray or None
        Optical density and mask cropped to ``box`` (kept objects only).
    """

    index: int
    box: tuple[int, int, int, int]
    area: int
    solidity: float
    reason: str = ""
    od: np.ndarray | None = None
    mask: np.ndarray | None = None


def _solidity(mask: np.ndarray) -> float:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.convexHull(np.concatenate(contours))
    hull_area = float(cv2.contourArea(hull))
    return float(mask.sum()) / max(hull_area + 0.5 * cv2.arcLength(hull, True), 1.0)


def frame_chromosomes(
    grey: np.ndarray,
    *,
    min_area: int = 40,
    min_solidity: float = 0.85,
    border: int = 2,
    polarity: str = "auto",
    detect: Mapping[str, Any] | None = None,
) -> list[FrameChromosome]:
    """Segment a frame and cut out every isolated chromosome with its mask.

    Parameters
    ----------
    grey : numpy.ndarray
        The frame, 8-bit grey (bright chromosomes on dark or dark on light).
    min_area : int
        Smaller objects are rejected (px).
    min_solidity : float
        Objects whose area over convex-hull area (hull measured through pixel
        centres plus half its perimeter) is lower are rejected: two chromosomes
        touching, crosses, clusters.
    border : int
        Objects within this many pixels of the frame edge are rejected (cut off).
    polarity : {"auto", "dark_on_light", "light_on_dark"}
        Of the frame (:func:`karyoflow.preprocess.intensity.normalise_polarity`).
    detect : mapping, optional
        Options of :func:`karyoflow.tasks.detection.segment.detect_chromosomes`.

    Returns
    -------
    list of FrameChromosome
        Every detected object in detector order; ``reason`` empty for kept ones.

    Examples
    --------
    >>> img = np.full((160, 200), 12, np.uint8)
    >>> img[20:80, 30:44] = 200                  # a straight chromosome
    >>> img[90:150, 120:134] = 190               # another
    >>> img[100:112, 20:90] = 180; img[100:150, 20:32] = 180   # an L: two touching
    >>> found = frame_chromosomes(img, detect={"background_radius": 30})
    >>> sorted((c.box, c.reason) for c in found)[:2]
    [((20, 100, 90, 150), 'solidity 0.55 < 0.85'), ((29, 19, 45, 81), '')]
    """
    from karyoflow.preprocess.intensity import normalise_polarity, to_grey
    from karyoflow.preprocess.mask import background_level
    from karyoflow.tasks.detection.segment import detect_chromosomes

    frame = to_grey(np.asarray(grey))
    det = detect_chromosomes(frame, polarity=polarity, **dict(detect or {}))
    img, _ = normalise_polarity(frame, mode=polarity)
    bg = float(background_level(img, det.labels > 0))
    h, w = img.shape
    out: list[FrameChromosome] = []
    for i in range(len(det)):
        mask = det.mask(i)
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
        sl = (slice(box[1], box[3]), slice(box[0], box[2]))
        area = int(mask.sum())
        sol = round(_solidity(mask[sl]), 4)
        item = FrameChromosome(index=i, box=box, area=area, solidity=sol)
        if area < max(1, int(min_area)):
            item.reason = f"area {area} px < {min_area}"
        elif min(box[0], box[1], w - box[2], h - box[3]) < int(border):
            item.reason = "touches the frame edge"
        elif sol < float(min_solidity):
            item.reason = f"solidity {sol:.2f} < {min_solidity}"
        else:
            item.mask = mask[sl].copy()
            item.od = optical_density(img[sl], item.mask, bg)
        out.append(item)
    return out


def assign_by_fraction(ids: Sequence[str], fractions: Sequence[float], seed: int) -> list[str]:
    """Divide ``ids`` between train / val / test in exact shares, in a seeded order.

    The ids are ordered by a stable hash of ``(seed, id)``; the first
    ``round(n * train)`` go to train, the next ``round(n * (train + val))`` to val, the
    rest to test. The same ids and seed always give the same assignment.

    Examples
    --------
    >>> splits = assign_by_fraction([f"c{i}" for i in range(10)], [0.6, 0.1, 0.3], 0)
    >>> [splits.count(s) for s in ("train", "val", "test")]
    [6, 1, 3]
    """
    n = len(ids)
    order = sorted(range(n), key=lambda i: stable_seed(seed, "frame-split", ids[i]))
    cut1 = round(n * float(fractions[0]))
    cut2 = round(n * (float(fractions[0]) + float(fractions[1])))
    out = [""] * n
    for rank, i in enumerate(order):
        out[i] = _SPLITS[0] if rank < cut1 else _SPLITS[1] if rank < cut2 else _SPLITS[2]
    return out


def _frame_loader(peak: float | None) -> Any:
    from karyoflow.preprocess.chain import load_source

    if peak is None:
        return load_source

    def load(source: str, frame: int) -> np.ndarray:
        from karyoflow.imageio import read_image

        if int(frame) >= 0:
            return load_source(source, frame)  # (raises: one image per file)
        return scale_frame(read_image(source), float(peak))

    return load


def frame_sources(
    frames: Any,
    params: Mapping[str, Any],
    seed: int,
    *,
    min_area: int = 40,
    polarity: str = "auto",
    loader: Any = None,
) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
    """The pair sources of a ``frames`` dataset: one row per kept chromosome.

    Parameters
    ----------
    frames : pandas.DataFrame
        Manifest rows of kind ``frame`` (every split).
    params : mapping
        Resolved ``frames`` options (:func:`resolve_frames_params`).
    seed : int
        Master seed (the by-chromosome split).
    min_area, polarity
        The generator's ``min_area`` and ``polarity``.
    loader : callable, optional
        ``(source, frame) -> 8-bit grey``; default
        :func:`karyoflow.preprocess.chain.load_source`, or the frame read as it is and
        :func:`scale_frame` scaled to ``params["peak"]`` when that is set.

    Returns
    -------
    rows : pandas.DataFrame
        Kind ``metaphase`` rows (``source``, ``cell_id``, ``instance_id``
        ``<frame id>/chr<k>``, box ``x0 y0 x1 y1``, ``split``) of the kept chromosomes.
    precut : dict
        ``instance_id -> (od, mask)``, for
        :func:`karyoflow.tasks.segmentation.generate.generate_pairs`.
    objects : list of dict
        Every detected object: ``instance_id``, ``box``, ``area``, ``solidity``,
        ``split`` (kept) or ``reason`` (rejected).
    """
    import pandas as pd

    if loader is None:
        loader = _frame_loader(params["peak"])
    records: list[dict[str, Any]] = []
    precut: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    objects: list[dict[str, Any]] = []
    for frame in frames.sort_values("instance_id").to_dict("records"):
        found = frame_chromosomes(
            loader(str(frame["source"]), int(frame.get("frame", -1))),
            min_area=min_area,
            min_solidity=float(params["min_solidity"]),
            border=int(params["border"]),
            polarity=polarity,
            detect=params["detect"],
        )
        kept = [c for c in found if not c.reason]
        ids = [f"{frame['instance_id']}/chr{c.index:03d}" for c in kept]
        if params["split_by"] == "chromosome":
            splits = assign_by_fraction(ids, params["fractions"], seed)
        else:
            splits = [str(frame["split"])] * len(kept)
        by_index = dict(zip((c.index for c in kept), zip(ids, splits, strict=True), strict=True))
        for c in found:
            entry: dict[str, Any] = {
                "frame": str(frame["instance_id"]),
                "instance_id": f"{frame['instance_id']}/chr{c.index:03d}",
                "box": list(c.box),
                "area": c.area,
                "solidity": c.solidity,
            }
            if c.reason:
                entry["reason"] = c.reason
            else:
                iid, split = by_index[c.index]
                entry["split"] = split
                precut[iid] = (c.od, c.mask)  # type: ignore[assignment]
                records.append(
                    {
                        "kind": "metaphase",
                        "source": str(frame["source"]),
                        "frame": -1,
                        "cell_id": str(frame["cell_id"]),
                        "instance_id": iid,
                        "x0": c.box[0],
                        "y0": c.box[1],
                        "x1": c.box[2],
                        "y1": c.box[3],
                        "split": split,
                    }
                )
            objects.append(entry)
    columns = ["kind", "source", "frame", "cell_id", "instance_id", "x0", "y0", "x1", "y1", "split"]
    return pd.DataFrame(records, columns=columns), precut, objects
