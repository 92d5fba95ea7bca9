"""Overlapping chromosome pairs composed from single-chromosome crops (rule ``make_overlaps``).

Follows how the public overlapping-pairs dataset was made: single chromosomes are cut
out with their masks, downsampled, one is rotated and translated over the other, the
grey levels are combined as overlapping chromatin does (optical densities add, so the
overlap is darker) and every pixel is labelled 0 background, 1 first chromosome only,
2 second only, 3 both.

Sources are the manifest rows of any ingested single-chromosome dataset (``voc`` boxes,
``crops``, ``centromere_csv``): each row is cropped, polarity-normalised and masked with
the :mod:`karyoflow.preprocess` functions (:func:`chromosome_od`). Both chromosomes of a
pair come from the same split (by default from the same cell), so a pair's split is
its cell's split and no test cell is ever trained on. Rows of an ``overlaps_h5``
dataset are taken as they are (:func:`select_pairs`).

Output (:func:`write_pairs_h5`): the public layout, one ``uint8`` dataset ``pairs`` of
shape ``(N, H, W, 2)`` (grey in channel 0, labels in channel 1), plus ``cell_ids`` and
``instance_ids`` beside it, so :func:`karyoflow.readers.overlaps.read_overlaps_h5` reads
the file (option ``cells_key: cell_ids``). Same rows, parameters and seed give
byte-identical files.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from karyoflow.engine.params import merge_params
from karyoflow.split import stable_seed

__all__ = [
    "DEFAULT_GENERATE",
    "SOURCE_KINDS",
    "chromosome_od",
    "compose_pair",
    "generate_pairs",
    "resolve_generate_params",
    "select_pairs",
    "write_pairs_h5",
]

#: Manifest kinds a pair can be composed from (single chromosomes with a box).
SOURCE_KINDS: tuple[str, ...] = ("metaphase", "crop", "centromere")
#: Manifest kinds whose source image is the chromosome itself (the box is the image).
_WHOLE_IMAGE_KINDS: tuple[str, ...] = ("crop", "centromere")

#: Generator parameters (``overlaps.generate`` in the config).
DEFAULT_GENERATE: dict[str, Any] = {
    "size": 64,  # side of the square pair image (the public set: 94x93)
    "downsample": 2.0,  # every crop is shrunk by this factor first (the public set: 2)
    "rotation": 180.0,  # second chromosome: angle drawn in +- this (degrees)
    "first_rotation": 180.0,  # first chromosome: angle drawn in +- this (degrees)
    "translation": 6,  # extra offset (px) of the second chromosome, +- this per axis
    "jitter": 4,  # offset (px) of the first chromosome from the centre, +- this
    "min_overlap": 12,  # overlap pixels, at least
    "min_exclusive": 0.2,  # each chromosome keeps this fraction of itself unoverlapped
    "pair_within": "cell",  # cell: both chromosomes from one cell | split: any two cells
    "background": [215.0, 245.0],  # clear-glass grey level range
    "blur_sigma": 0.5,  # optical blur (px) of the composed image
    "noise_sigma": 1.5,  # Gaussian noise (grey levels)
    "invert": False,  # true: bright chromosomes on dark (fluorescence-like output)
    # density: optical densities add (absorbing stain, brightfield G-bands);
    # additive: the light each chromosome gives off adds (fluorescence), saturating at 255
    "combine": "density",
    "margin": 4,  # px around a VOC box when cutting a chromosome out
    "polarity": "auto",  # auto | dark_on_light | light_on_dark (the source images)
    "min_area": 40,  # px (source scale): smaller masks are skipped
    "mask": {},  # chromosome_mask options over the preprocess defaults
    "max_tries": 50,  # pair draws before a pair is given up (an error)
    "frames": {},  # frames datasets: karyoflow.tasks.segmentation.frames.DEFAULT_FRAMES options
}

_PAIR_WITHIN = ("cell", "split")
_COMBINE = ("density", "additive")
_POLARITY = ("auto", "dark_on_light", "light_on_dark")


def resolve_generate_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``params`` over :data:`DEFAULT_GENERATE` and check them (``ValueError``: an
    unknown key or a value out of range).

    Examples
    --------
    >>> resolve_generate_params({"size": 88})["size"]
    88
    >>> resolve_generate_params({"sise": 88})
    Traceback (most recent call last):
    ...
    ValueError: unknown overlaps/generate option 'sise'
    """
    from karyoflow.tasks.segmentation.frames import resolve_frames_params

    out = merge_params(DEFAULT_GENERATE, params, what="overlaps/generate option")
    out["frames"] = resolve_frames_params(out["frames"])
    if int(out["size"]) < 16:
        raise ValueError(f"overlaps/generate size must be >= 16, got {out['size']}")
    if float(out["downsample"]) <= 0:
        raise ValueError("overlaps/generate downsample must be > 0")
    if out["pair_within"] not in _PAIR_WITHIN:
        raise ValueError(f"overlaps/generate pair_within must be one of {list(_PAIR_WITHIN)}")
    if out["combine"] not in _COMBINE:
        raise ValueError(f"overlaps/generate combine must be one of {list(_COMBINE)}")
    if out["polarity"] not in _POLARITY:
        raise ValueError(f"overlaps/generate polarity must be one of {list(_POLARITY)}")
    lo, hi = (float(v) for v in out["background"])
    if not 0 < lo <= hi <= 255:
        raise ValueError("overlaps/generate background must be [low, high] within (0, 255]")
    if not 0.0 <= float(out["min_exclusive"]) < 1.0:
        raise ValueError("overlaps/generate min_exclusive must be in [0, 1)")
    for key in ("translation", "jitter", "min_overlap", "min_area", "margin"):
        if int(out[key]) < 0:
            raise ValueError(f"overlaps/generate {key} must be >= 0")
    from karyoflow.preprocess.mask import chromosome_mask

    known = {k for k, p in _signature(chromosome_mask).items() if p is not None and k != "box"}
    unknown = set(out["mask"]) - known
    if unknown:
        raise ValueError(f"unknown overlaps/generate mask option {sorted(unknown)[0]!r}")
    return out


def _signature(func: Callable[..., Any]) -> dict[str, Any]:
    import inspect

    return {
        p.name: p.default
        for p in inspect.signature(func).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


# --------------------------------------------------------------------------- one crop


def chromosome_od(
    grey: np.ndarray,
    row: Mapping[str, Any],
    *,
    margin: int = 4,
    polarity: str = "auto",
    min_area: int = 40,
    mask_options: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one chromosome out of its source image: optical density and mask.

    Crop (box + ``margin``), polarity (dark on light), mask
    (:func:`karyoflow.preprocess.mask.chromosome_mask`), then the optical density
    ``-log10(grey / background)`` inside the mask (0 outside), cropped tight.

    Parameters
    ----------
    grey : numpy.ndarray
        The row's source image as 8-bit grey (``karyoflow.preprocess.chain.load_source``).
    row : mapping
        Manifest row: ``kind`` and the box ``x0 y0 x1 y1`` (ignored for whole-image kinds).
    margin, polarity, min_area, mask_options
        See :data:`DEFAULT_GENERATE`.

    Returns
    -------
    od : numpy.ndarray
        float32, 0 outside the mask.
    mask : numpy.ndarray
        bool, same shape.

    Raises
    ------
    ValueError
        The mask is empty or smaller than ``min_area``.

    Examples
    --------
    >>> img = np.full((40, 30), 230, np.uint8); img[8:32, 12:19] = 80
    >>> od, m = chromosome_od(img, {"kind": "crop"})
    >>> od.shape == m.shape, int(m.sum()), round(float(od.max()), 2)
    (True, 164, 0.46)
    """
    from karyoflow.preprocess.intensity import crop_box, normalise_polarity
    from karyoflow.preprocess.mask import background_level, chromosome_mask
    from karyoflow.tasks.segmentation.frames import optical_density

    if str(row.get("kind", "")) in _WHOLE_IMAGE_KINDS:
        box = (0, 0, int(grey.shape[1]), int(grey.shape[0]))
    else:
        box = (int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"]))
    crop, inner = crop_box(grey, box, int(margin))
    img, _ = normalise_polarity(crop, mode=polarity)
    mask = chromosome_mask(img, box=inner, **dict(mask_options or {}))
    area = int(mask.sum())
    if area < max(1, int(min_area)):
        raise ValueError(f"mask of {area} px (minimum {min_area})")
    od = optical_density(img, mask, float(background_level(img, mask)))
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    sl = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    return od[sl], mask[sl]


# --------------------------------------------------------------------------- one pair


def _scale(od: np.ndarray, mask: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    if abs(factor - 1.0) < 1e-9:
        return od, mask
    size = (max(1, round(od.shape[1] * factor)), max(1, round(od.shape[0] * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    m = cv2.resize(mask.astype(np.float32), size, interpolation=interp) >= 0.5
    o = cv2.resize(od, size, interpolation=interp)
    return np.where(m, o, 0.0).astype(np.float32), m


def _rotate(od: np.ndarray, mask: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre onto a canvas that holds any angle; crop tight."""
    if angle % 360.0 == 0.0:
        return od, mask
    h, w = od.shape
    side = math.ceil(math.hypot(h, w)) + 2
    mat = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    mat[:, 2] += ((side - w) // 2, (side - h) // 2)
    o = cv2.warpAffine(od, mat, (side, side), flags=cv2.INTER_LINEAR, borderValue=0.0)
    m = cv2.warpAffine(mask.astype(np.float32), mat, (side, side), flags=cv2.INTER_LINEAR) >= 0.5
    if not m.any():
        return o[:1, :1] * 0, m[:1, :1]
    ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    sl = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    return np.where(m, o, 0.0)[sl].astype(np.float32), m[sl]


def _place(size: int, arr: np.ndarray, x0: int, y0: int) -> np.ndarray | None:
    """``arr`` pasted at ``(x0, y0)`` into a square canvas; None if it does not fit."""
    h, w = arr.shape
    if x0 < 0 or y0 < 0 or x0 + w > size or y0 + h > size:
        return None
    out = np.zeros((size, size), arr.dtype)
    out[y0 : y0 + h, x0 : x0 + w] = arr
    return out


def _prepare(
    chrom: tuple[np.ndarray, np.ndarray], factor: float, angle: float, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    od, mask = (np.asarray(chrom[0], np.float32), np.asarray(chrom[1], bool))
    od, mask = _scale(np.where(mask, od, 0.0).astype(np.float32), mask, factor)
    od, mask = _rotate(od, mask, angle)
    longest = max(od.shape)
    if longest > limit:  # still too long for the canvas: shrink to fit
        od, mask = _scale(od, mask, limit / longest)
    return od, mask


def compose_pair(
    first: tuple[np.ndarray, np.ndarray],
    second: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    *,
    size: int = 64,
    downsample: float = 2.0,
    rotation: float = 180.0,
    first_rotation: float = 180.0,
    translation: int = 6,
    jitter: int = 4,
    min_overlap: int = 12,
    min_exclusive: float = 0.2,
    background: Sequence[float] = (215.0, 245.0),
    blur_sigma: float = 0.5,
    noise_sigma: float = 1.5,
    invert: bool = False,
    combine: str = "density",
    max_tries: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Overlay two chromosomes into one labelled pair image.

    Both are shrunk by ``downsample`` and rotated (``first_rotation``, ``rotation``); the
    first is placed near the centre (``jitter``), the second so that a random point of it
    lies on a random point of the first, offset by up to ``translation`` pixels. A
    placement is kept when both lie wholly inside the square, they overlap by at least
    ``min_overlap`` pixels and each keeps ``min_exclusive`` of itself unoverlapped.
    With ``combine="density"`` optical densities add, so the overlap is darker:
    ``grey = bg * 10 ** -(od1 + od2)``. With ``"additive"`` (fluorescence, used with
    ``invert``) the shares of the background each chromosome takes away add,
    ``grey = bg * (1 - a1 - a2)`` with ``a = 1 - 10 ** -od`` (clipped at 0): inverted, the
    light of the two chromosomes adds over the dark field.

    Parameters
    ----------
    first, second : (numpy.ndarray, numpy.ndarray)
        ``(optical density, mask)`` of each chromosome (:func:`chromosome_od`).
    rng : numpy.random.Generator
        Source of every random draw (placement, angles, background, noise).
    size, downsample, rotation, first_rotation, translation, jitter, min_overlap,
    min_exclusive, background, blur_sigma, noise_sigma, invert, combine, max_tries
        See :data:`DEFAULT_GENERATE`.

    Returns
    -------
    grey : numpy.ndarray
        uint8 ``(size, size)``, chromosomes dark on light (light on dark if ``invert``).
    labels : numpy.ndarray
        uint8 ``(size, size)``: 0 background, 1 first only, 2 second only, 3 both.

    Raises
    ------
    RuntimeError
        No placement met the constraints in ``max_tries`` draws.

    Examples
    --------
    >>> bar = (np.full((30, 6), 0.5, np.float32), np.ones((30, 6), bool))
    >>> grey, lab = compose_pair(bar, bar, np.random.default_rng(0), size=32, downsample=1)
    >>> grey.shape, sorted(np.unique(lab).tolist())
    ((32, 32), [0, 1, 2, 3])
    >>> bool(grey[lab == 3].mean() < grey[lab == 1].mean() < grey[lab == 0].mean())
    True
    """
    factor = 1.0 / float(downsample)
    limit = int(size) - 2
    for _ in range(max(1, int(max_tries))):
        od_a, m_a = _prepare(first, factor, float(rng.uniform(-1, 1)) * first_rotation, limit)
        od_b, m_b = _prepare(second, factor, float(rng.uniform(-1, 1)) * rotation, limit)
        if not m_a.any() or not m_b.any():
            raise ValueError("both chromosomes need a non-empty mask")
        ax0 = (size - m_a.shape[1]) // 2 + int(rng.integers(-jitter, jitter + 1))
        ay0 = (size - m_a.shape[0]) // 2 + int(rng.integers(-jitter, jitter + 1))
        ys, xs = np.nonzero(m_a)
        k = int(rng.integers(len(xs)))
        bys, bxs = np.nonzero(m_b)
        j = int(rng.integers(len(bxs)))
        dx, dy = (int(v) for v in rng.integers(-translation, translation + 1, 2))
        bx0, by0 = ax0 + int(xs[k]) - int(bxs[j]) + dx, ay0 + int(ys[k]) - int(bys[j]) + dy
        in_a, in_b = _place(size, m_a, ax0, ay0), _place(size, m_b, bx0, by0)
        if in_a is None or in_b is None:
            continue
        both = in_a & in_b
        n_both = int(both.sum())
        if n_both < max(1, int(min_overlap)):
            continue
        if min(int(in_a.sum()), int(in_b.sum())) - n_both < min_exclusive * min(
            int(in_a.sum()), int(in_b.sum())
        ) or not ((in_a & ~in_b).any() and (in_b & ~in_a).any()):
            continue
        if combine == "additive":
            share = _place(size, 1.0 - np.power(10.0, -od_a), ax0, ay0)
            share = share + _place(size, 1.0 - np.power(10.0, -od_b), bx0, by0)
            transmitted = np.clip(1.0 - share, 0.0, 1.0)
        else:
            od = _place(size, od_a, ax0, ay0) + _place(size, od_b, bx0, by0)
            transmitted = np.power(10.0, -od)
        labels = np.zeros((size, size), np.uint8)
        labels[in_a] = 1
        labels[in_b] = 2
        labels[both] = 3
        grey = float(rng.uniform(float(background[0]), float(background[1]))) * transmitted
        if blur_sigma > 0:
            grey = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), sigmaX=float(blur_sigma))
        if noise_sigma > 0:
            grey = grey + rng.normal(0.0, float(noise_sigma), grey.shape)
        out = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return (255 - out) if invert else out, labels
    raise RuntimeError(f"no overlapping placement found in {max_tries} tries")


# --------------------------------------------------------------------------- many pairs


def _loader_default(source: str, frame: int) -> np.ndarray:
    from karyoflow.preprocess.chain import load_source

    return load_source(source, frame)


class _CropCache:
    """(od, mask) per manifest row, or the reason it failed; source images LRU-cached."""

    def __init__(
        self,
        params: Mapping[str, Any],
        loader: Callable[[str, int], np.ndarray],
        precut: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        self.params = params
        self.loader = loader
        self.precut = precut or {}
        self.crops: dict[int, tuple[np.ndarray, np.ndarray] | str] = {}
        self.images: OrderedDict[tuple[str, int], np.ndarray | str] = OrderedDict()

    def _image(self, source: str, frame: int) -> np.ndarray | str:
        key = (source, frame)
        if key in self.images:
            self.images.move_to_end(key)
            return self.images[key]
        try:
            img: np.ndarray | str = self.loader(source, frame)
        except (OSError, ValueError) as exc:
            img = f"unreadable source: {exc}"
        self.images[key] = img
        if len(self.images) > 64:
            self.images.popitem(last=False)
        return img

    def get(self, index: int, row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | str:
        if index not in self.crops and str(row["instance_id"]) in self.precut:
            self.crops[index] = self.precut[str(row["instance_id"])]
        if index not in self.crops:
            img = self._image(str(row["source"]), int(row.get("frame", -1)))
            if isinstance(img, str):
                self.crops[index] = img
            else:
                p = self.params
                try:
                    self.crops[index] = chromosome_od(
                        img,
                        row,
                        margin=int(p["margin"]),
                        polarity=p["polarity"],
                        min_area=int(p["min_area"]),
                        mask_options=_mask_options(p["mask"]),
                    )
                except ValueError as exc:
                    self.crops[index] = str(exc)
        return self.crops[index]


def _mask_options(over: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing chain's mask defaults (config ``preprocess`` aside) + ``over``."""
    from karyoflow.preprocess.chain import DEFAULT_PARAMS

    base = {k: v for k, v in DEFAULT_PARAMS["mask"].items() if k not in ("enabled", "background")}
    return {**base, **dict(over)}


def generate_pairs(
    rows: pd.DataFrame,
    n_pairs: int,
    params: Mapping[str, Any],
    seed: int,
    *,
    key: str = "",
    loader: Callable[[str, int], np.ndarray] = _loader_default,
    precut: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Compose ``n_pairs`` pairs from the chromosomes of ``rows`` (one split).

    Pair ``i`` draws from its own generator seeded with ``(seed, "overlaps", key, i)``:
    a cell (``pair_within: cell``, among cells with two or more rows) or the whole split,
    two distinct rows, then the placement (:func:`compose_pair`). A row whose chromosome
    cannot be masked, or a placement that fails, is redrawn (``max_tries`` times).

    Parameters
    ----------
    rows : pandas.DataFrame
        Manifest rows (kinds :data:`SOURCE_KINDS`) of one split.
    n_pairs : int
        Pairs to make.
    params : mapping
        Resolved generator parameters (:func:`resolve_generate_params`).
    seed : int
        Master seed.
    key : str
        Distinguishes the streams of different datasets and splits.
    loader : callable
        ``(source, frame) -> 8-bit grey image``.
    precut : mapping, optional
        ``instance_id -> (od, mask)`` of chromosomes already cut out (frames datasets,
        :func:`karyoflow.tasks.segmentation.frames.frame_sources`); other rows are cut from their
        source image.

    Returns
    -------
    dict
        ``pairs`` uint8 ``(N, size, size, 2)``, ``cell_ids`` and ``instance_ids``
        (``(N, 2)``) as lists, ``skipped`` (row instance id -> reason for rows that could
        not be used).

    Raises
    ------
    ValueError
        No cell (or split) with two chromosomes, or a pair could not be made.

    Examples
    --------
    >>> rows = pd.DataFrame({"kind": "metaphase", "source": "s", "frame": -1,
    ...     "cell_id": "c", "instance_id": ["c/0", "c/1"], "x0": [4, 20], "y0": 4,
    ...     "x1": [10, 26], "y1": 34})
    >>> img = np.full((40, 32), 230, np.uint8); img[4:34, 4:10] = 90; img[4:34, 20:26] = 90
    >>> p = resolve_generate_params({"size": 32, "downsample": 1, "min_area": 10})
    >>> out = generate_pairs(rows, 3, p, 0, loader=lambda s, f: img)
    >>> out["pairs"].shape, out["cell_ids"]
    ((3, 32, 32, 2), ['c', 'c', 'c'])
    """
    size = int(params["size"])
    pairs = np.zeros((int(n_pairs), size, size, 2), np.uint8)
    cell_ids: list[str] = []
    instance_ids: list[list[str]] = []
    if n_pairs == 0:
        return {"pairs": pairs, "cell_ids": [], "instance_ids": [], "skipped": {}}
    rows = rows[rows["kind"].astype(str).isin(SOURCE_KINDS)].reset_index(drop=True)
    if params["pair_within"] == "cell":
        groups = [
            np.asarray(idx, int)
            for _, idx in sorted(rows.groupby("cell_id", sort=True).indices.items())
            if len(idx) >= 2
        ]
    else:
        groups = [np.arange(len(rows))] if len(rows) >= 2 else []
    if not groups:
        raise ValueError(
            f"no {'cell' if params['pair_within'] == 'cell' else 'split'} with two "
            f"single-chromosome rows to pair ({len(rows)} rows)"
        )
    cache = _CropCache(params, loader, precut)
    compose_kw = {
        k: params[k]
        for k in (
            "size",
            "downsample",
            "rotation",
            "first_rotation",
            "translation",
            "jitter",
            "min_overlap",
            "min_exclusive",
            "background",
            "blur_sigma",
            "noise_sigma",
            "invert",
            "combine",
        )
    }
    records = rows.to_dict("records")
    tries = max(1, int(params["max_tries"]))
    for i in range(int(n_pairs)):
        rng = np.random.default_rng(stable_seed(seed, "overlaps", key, i))
        for _ in range(tries):
            group = groups[int(rng.integers(len(groups)))]
            ia, ib = (int(v) for v in rng.choice(group, size=2, replace=False))
            a, b = cache.get(ia, records[ia]), cache.get(ib, records[ib])
            if isinstance(a, str) or isinstance(b, str):
                continue
            try:
                grey, labels = compose_pair(a, b, rng, max_tries=5, **compose_kw)
            except RuntimeError:
                continue
            break
        else:
            raise ValueError(
                f"pair {i}: no usable placement in {tries} draws; check the masks "
                "(overlaps/generate mask, min_area) or relax min_overlap / min_exclusive"
            )
        pairs[i, ..., 0], pairs[i, ..., 1] = grey, labels
        ca, cb = str(records[ia]["cell_id"]), str(records[ib]["cell_id"])
        cell_ids.append(ca if ca == cb else "+".join(sorted((ca, cb))))
        instance_ids.append([str(records[ia]["instance_id"]), str(records[ib]["instance_id"])])
    skipped = {
        str(records[i]["instance_id"]): reason
        for i, reason in sorted(cache.crops.items())
        if isinstance(reason, str)
    }
    return {
        "pairs": pairs,
        "cell_ids": cell_ids,
        "instance_ids": instance_ids,
        "skipped": skipped,
    }


def select_pairs(
    source: str | Path,
    frames: Sequence[int],
    cell_ids: Sequence[str],
    size: int,
    *,
    key: str | None = None,
) -> dict[str, Any]:
    """Pairs of an ``overlaps_h5`` file (e.g. the public one), padded or cropped to ``size``.

    Parameters
    ----------
    source : str or Path
        The HDF5 file (layout of :mod:`karyoflow.readers.overlaps`).
    frames : sequence of int
        Pair indices to take (manifest ``frame``), in order.
    cell_ids : sequence of str
        Their cell ids (manifest ``cell_id``).
    size : int
        Output side: centred, padding with the image's border level and label 0.
    key : str, optional
        Dataset path; default: auto-detected.

    Returns
    -------
    dict
        As :func:`generate_pairs` (``instance_ids`` ``pair/<i>`` twice).
    """
    import h5py

    from karyoflow.readers.overlaps import find_pairs_key

    out = np.zeros((len(frames), size, size, 2), np.uint8)
    with h5py.File(source, "r") as h5:
        data = h5[key or find_pairs_key(h5)]
        order = np.argsort(np.asarray(frames, int), kind="stable")
        for pos in order.tolist():
            pair = np.asarray(data[int(frames[pos])])
            out[pos] = _fit_square(pair, size)
    return {
        "pairs": out,
        "cell_ids": [str(c) for c in cell_ids],
        "instance_ids": [[f"pair/{f}", f"pair/{f}"] for f in frames],
        "skipped": {},
    }


def _fit_square(pair: np.ndarray, size: int) -> np.ndarray:
    """Centre ``(H, W, 2)`` in ``(size, size, 2)``: crop, or pad with the border level."""
    h, w = pair.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    pair = pair[y0 : y0 + size, x0 : x0 + size]
    h, w = pair.shape[:2]
    grey = pair[..., 0]
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    out = np.zeros((size, size, 2), np.uint8)
    out[..., 0] = int(np.median(border))
    oy, ox = (size - h) // 2, (size - w) // 2
    out[oy : oy + h, ox : ox + w] = pair
    return out


def write_pairs_h5(
    path: str | Path, result: Mapping[str, Any], attrs: Mapping[str, Any] | None = None
) -> None:
    """Write pairs in the public layout (deterministic bytes), atomically.

    ``pairs`` ``(N, H, W, 2)`` uint8 (grey, labels), ``cell_ids`` ``(N,)`` and
    ``instance_ids`` ``(N, 2)`` strings; ``attrs`` (JSON-encoded when not scalar) on the
    file and on ``pairs``.
    """
    import h5py

    from karyoflow.fileutil import atomic_path

    pairs = np.asarray(result["pairs"], np.uint8)
    n = len(pairs)
    text = h5py.string_dtype("utf-8")
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
        kwargs: dict[str, Any] = {"track_times": False}
        if n:
            kwargs.update(
                chunks=(min(n, 64), *pairs.shape[1:]),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
        ds = f.create_dataset("pairs", data=pairs, **kwargs)
        f.create_dataset(
            "cell_ids", data=np.asarray(result["cell_ids"], object), dtype=text, track_times=False
        )
        ids = np.asarray(result["instance_ids"], object).reshape(n, 2)
        f.create_dataset("instance_ids", data=ids, dtype=text, track_times=False)
        for obj in (f, ds):
            obj.attrs["layout"] = "channel 0 grey, channel 1 labels 0 bg, 1 first, 2 second, 3 both"
            for name, value in (attrs or {}).items():
                obj.attrs[name] = (
                    value
                    if isinstance(value, int | float | str)
                    else json.dumps(value, sort_keys=True)
                )
