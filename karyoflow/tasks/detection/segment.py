"""Classical detection of chromosomes in a whole metaphase: one box and mask each.

Pipeline of :func:`detect_chromosomes` (every step is its own function)::

    grey + polarity -> background normalisation (darkness map)
      -> global (Otsu) or adaptive threshold with hysteresis -> morphology, fill holes
      -> typical chromosome width (distance transform ridge)
      -> remove debris (small, pale) and interphase nuclei (wide, round, large)
      -> split touching chromosomes: distance-transform watershed from ridge maxima,
         regions merged back where the saddle between them is no neck
      -> one label, box, area and score per chromosome

Touching chromosomes with a neck between them are split; chromosomes lying side by
side along their whole length, and crossing (overlapping) chromosomes, are not - that
is where a classical pipeline loses recall (see docs/detection.md).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from karyoflow.preprocess.intensity import normalise_polarity, to_grey
from karyoflow.preprocess.mask import fill_holes  # re-exported: flood fill from the border

__all__ = [
    "Detections",
    "darkness_map",
    "detect_chromosomes",
    "detector_defaults",
    "fill_holes",
    "foreground_mask",
    "merge_small_regions",
    "nucleus_cores",
    "remove_debris_and_nuclei",
    "split_by_level",
    "split_touching",
    "typical_half_width",
]


@dataclass
class Detections:
    """Chromosomes found in one image.

    Attributes
    ----------
    boxes : numpy.ndarray
        ``(N, 4)`` int ``x0, y0, x1, y1`` (exclusive ends), in image pixels: the
        bounding box of each mask, padded by ``box_pad_factor`` x the half-width.
    labels : numpy.ndarray
        ``(H, W)`` int32 label image: 0 background, ``i + 1`` the mask of detection ``i``.
    scores : numpy.ndarray
        ``(N,)`` float in [0, 1]: mean darkness of the object (0 background, 1 black).
    areas : numpy.ndarray
        ``(N,)`` int pixels of each mask.
    half_width : float
        Typical chromosome half-width (px) estimated from the image.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    areas: np.ndarray
    half_width: float = float("nan")

    def __len__(self) -> int:
        return len(self.boxes)

    def mask(self, i: int) -> np.ndarray:
        """bool ``(H, W)`` mask of detection ``i``."""
        return self.labels == i + 1


def _disk(radius: float) -> np.ndarray:
    r = max(round(float(radius)), 0)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def darkness_map(
    grey: np.ndarray, *, background_radius: int = 60, smooth: float = 1.0
) -> np.ndarray:
    """Background-normalised darkness: 0 on the background, 255 on black.

    The background (light, dark-on-light images) is estimated by a grey-level closing
    (local maximum) with a disk of ``background_radius`` px - wider than any chromosome -
    on a 4x downsampled image, smoothed and upsampled; darkness is then
    ``255 * (1 - grey / background)``, which flattens uneven illumination.

    Parameters
    ----------
    grey : numpy.ndarray
        uint8 ``(H, W)``, dark objects on a light background.
    background_radius : int, optional
        Radius (px) of the background estimate; 0 uses the image's median grey level.
    smooth : float, optional
        Gaussian sigma (px) applied to the darkness map; 0 disables it.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W)``.

    Examples
    --------
    >>> g = np.full((40, 40), 200, np.uint8); g[10:20, 10:14] = 100
    >>> d = darkness_map(g, background_radius=8, smooth=0)
    >>> int(d[0, 0]), int(d[15, 12])
    (0, 128)
    """
    g = np.asarray(grey, np.uint8)
    h, w = g.shape
    if background_radius <= 0 or min(h, w) < 8:
        bg = np.full(g.shape, max(float(np.median(g)), 1.0), np.float32)
    else:
        f = 4 if min(h, w) >= 64 else 1
        small = cv2.resize(g, (max(w // f, 1), max(h // f, 1)), interpolation=cv2.INTER_AREA)
        r = max(background_radius / f, 1.0)
        bg_small = cv2.dilate(small, _disk(r), borderType=cv2.BORDER_REPLICATE)
        k = int(2 * round(r) + 1)
        bg_small = cv2.blur(bg_small, (k, k), borderType=cv2.BORDER_REPLICATE)
        bg = cv2.resize(bg_small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        bg = np.maximum(bg, g.astype(np.float32))
    dark = 255.0 * (1.0 - g.astype(np.float32) / np.maximum(bg, 1.0))
    out = np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    if smooth > 0:
        out = cv2.GaussianBlur(out, (0, 0), float(smooth))
    return out


def foreground_mask(
    dark: np.ndarray,
    *,
    method: str = "otsu",
    threshold_scale: float = 1.0,
    hysteresis: float = 0.6,
    block_size: int = 101,
    offset: float = -10.0,
    close_radius: int = 1,
    open_radius: int = 1,
) -> np.ndarray:
    """Threshold a darkness map into chromosome foreground.

    Parameters
    ----------
    dark : numpy.ndarray
        uint8 darkness map (:func:`darkness_map`).
    method : {"otsu", "adaptive"}, optional
        ``"otsu"``: strong pixels are darker than ``threshold_scale`` x Otsu's
        threshold; ``"adaptive"``: darker than the local mean over ``block_size`` px
        minus ``offset`` (a negative offset asks for that much *more* darkness than
        the local mean), and than a tenth of Otsu's threshold.
    threshold_scale : float, optional
        Multiplies Otsu's threshold (``"otsu"``).
    hysteresis : float, optional
        Weak pixels (darker than this fraction of the strong threshold) connected to
        strong ones are kept - pale bands and arm ends; 1 disables it.
    block_size, offset : optional
        Adaptive threshold parameters.
    close_radius, open_radius : int, optional
        Morphological closing, then opening radius (px); 0 skips.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)`` with holes filled.

    Examples
    --------
    >>> d = np.zeros((20, 20), np.uint8); d[5:15, 5:9] = 120; d[5:15, 9] = 50
    >>> m = foreground_mask(d, open_radius=0, close_radius=0)
    >>> int(m.sum())
    50
    """
    d = np.asarray(dark, np.uint8)
    if d.size == 0 or int(d.max()) - int(d.min()) < 2:
        return np.zeros(d.shape, bool)
    otsu, _ = cv2.threshold(d, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if method == "otsu":
        t = float(otsu) * float(threshold_scale)
        strong = d > t
        weak = d > t * float(hysteresis)
    elif method == "adaptive":
        bs = max(3, int(block_size) | 1)
        local = cv2.adaptiveThreshold(
            d, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, bs, float(offset)
        ).astype(bool)
        strong = local & (d > 0.1 * float(otsu))
        weak = d > float(otsu) * float(hysteresis) * float(threshold_scale)
        weak |= strong
    else:
        raise ValueError(f"unknown threshold method {method!r}; use 'otsu' or 'adaptive'")
    if hysteresis < 1.0:
        n, lab = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
        hit = np.zeros(n, bool)
        hit[lab[strong]] = True
        hit[0] = False
        m = hit[lab]
    else:
        m = strong
    m8 = m.astype(np.uint8)
    if close_radius > 0:
        p = int(close_radius)
        m8 = cv2.copyMakeBorder(m8, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        m8 = cv2.morphologyEx(m8, cv2.MORPH_CLOSE, _disk(p))[p:-p, p:-p]
    if open_radius > 0:
        m8 = cv2.morphologyEx(m8, cv2.MORPH_OPEN, _disk(open_radius))
    return fill_holes(m8.astype(bool))


def _label_max(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Maximum of ``values`` per label 0..n (0 where a label has no pixel)."""
    out = np.zeros(n + 1, np.float64)
    sel = labels > 0
    vals, labs = values[sel], labels[sel]
    order = np.argsort(vals, kind="stable")
    out[labs[order]] = vals[order]  # ascending: the last (largest) write wins
    return out


def _ridge(dt: np.ndarray) -> np.ndarray:
    """Pixels of a distance map that are 3x3 local maxima (the medial ridge)."""
    return (dt > 0) & (dt >= cv2.dilate(dt, np.ones((3, 3), np.uint8)))


def typical_half_width(mask: np.ndarray, *, default: float = 8.0) -> float:
    """Typical half-width (px) of the objects of ``mask``: median distance on the ridge.

    Examples
    --------
    >>> m = np.zeros((60, 60), bool); m[10:50, 20:30] = True; m[5:8, 40:55] = True
    >>> round(typical_half_width(m), 1)
    5.0
    """
    m = np.asarray(mask, bool)
    if not m.any():
        return float(default)
    dt = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
    vals = dt[_ridge(dt)]
    # Weight by object pixels: each ridge value counts for the width it spans.
    if vals.size == 0:
        return float(default)
    return float(np.median(np.repeat(vals, np.maximum(np.rint(vals).astype(int), 1))))


def remove_debris_and_nuclei(
    mask: np.ndarray,
    dark: np.ndarray,
    half_width: float,
    *,
    min_area_factor: float = 0.4,
    min_darkness: float = 0.0,
    nucleus_width_factor: float = 2.6,
    nucleus_area_factor: float = 12.0,
    nucleus_solidity: float = 0.8,
) -> np.ndarray:
    """Drop interphase nuclei (:func:`nucleus_cores`) and debris (small or pale) from ``mask``.

    With ``w`` the typical half-width, nuclei are cut out first - wide, large, convex
    blobs found by an opening, so that chromosomes touching or lying on a nucleus are
    kept as separate pieces -; then a component is debris when its area is below
    ``min_area_factor * (2 w)^2`` (a square as wide as a chromosome, times the factor)
    or its mean darkness below ``min_darkness``. Clusters of crossing chromosomes are
    large but not wide, so they are kept.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.

    Examples
    --------
    >>> m = np.zeros((200, 200), bool)
    >>> m[20:60, 20:30] = True            # a chromosome
    >>> m[100:102, 20:22] = True          # debris
    >>> yy, xx = np.mgrid[:200, :200]
    >>> m |= (yy - 140) ** 2 + (xx - 140) ** 2 < 40 ** 2   # a nucleus
    >>> d = np.where(m, 120, 0).astype(np.uint8)
    >>> out = remove_debris_and_nuclei(m, d, 5.0)
    >>> bool(out[40, 25]), bool(out[101, 21]), bool(out[140, 140])
    (True, False, False)
    """
    m = np.asarray(mask, bool)
    if not m.any():
        return m
    unit = (2.0 * half_width) ** 2
    m = m & ~nucleus_cores(
        m,
        half_width,
        width_factor=nucleus_width_factor,
        area_factor=nucleus_area_factor,
        solidity=nucleus_solidity,
    )
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        return m
    areas = stats[:, cv2.CC_STAT_AREA].astype(float)
    keep = areas >= min_area_factor * unit
    if min_darkness > 0:
        sums = np.bincount(lab.ravel(), weights=np.asarray(dark, np.float64).ravel(), minlength=n)
        keep &= sums / np.maximum(areas, 1.0) / 255.0 >= min_darkness
    keep[0] = False
    return keep[lab]


def nucleus_cores(
    mask: np.ndarray,
    half_width: float,
    *,
    width_factor: float = 2.6,
    area_factor: float = 12.0,
    solidity: float = 0.8,
) -> np.ndarray:
    """Interphase nuclei in a foreground mask, also when chromosomes touch or cross them.

    An opening with a disk of radius ``width_factor * half_width`` removes every
    chromosome (and every crossing of chromosomes); what survives is wide. A surviving
    blob larger than ``area_factor * (2 w)^2`` and more convex than ``solidity`` is a
    nucleus; it is returned grown by half a chromosome width, so that chromosomes
    touching it are cut off rather than removed with it. Computed on a downsampled
    mask (the disk is large).

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.

    Examples
    --------
    >>> yy, xx = np.mgrid[:200, :200]
    >>> m = (yy - 100) ** 2 + (xx - 100) ** 2 < 45 ** 2     # a nucleus
    >>> m[95:105, 140:195] = True                           # a chromosome touching it
    >>> core = nucleus_cores(m, 5.0)
    >>> bool(core[100, 100]), bool(core[100, 185])
    (True, False)
    """
    m = np.asarray(mask, bool)
    h, w = m.shape
    r = float(width_factor) * float(half_width)
    f = max(1, int(r // 8))
    small = m.astype(np.uint8) * 255
    if f > 1:
        small = cv2.resize(small, (max(w // f, 1), max(h // f, 1)), interpolation=cv2.INTER_AREA)
    small = (small > 127).astype(np.uint8)
    core = cv2.morphologyEx(small, cv2.MORPH_OPEN, _disk(r / f))
    if not core.any():
        return np.zeros(m.shape, bool)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    unit = (2.0 * half_width) ** 2
    nuclei = np.zeros(n, bool)
    for i in range(1, n):
        area = float(stats[i, cv2.CC_STAT_AREA]) * f * f
        if area <= area_factor * unit:
            continue
        x, y, bw, bh = stats[i, :4]
        sub = (lab[y : y + bh, x : x + bw] == i).astype(np.uint8)
        contours, _ = cv2.findContours(sub, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.convexHull(np.concatenate(contours))
        nuclei[i] = stats[i, cv2.CC_STAT_AREA] / max(cv2.contourArea(hull), 1.0) > solidity
    if not nuclei.any():
        return np.zeros(m.shape, bool)
    out = nuclei[lab].astype(np.uint8)
    if f > 1:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_NEAREST)
    out = cv2.dilate(out, _disk(0.5 * half_width + f))
    return out.astype(bool)


def _saddles(labels: np.ndarray, dt: np.ndarray) -> dict[tuple[int, int], float]:
    """Highest distance value on the boundary of each pair of touching labels."""
    out: dict[tuple[int, int], float] = {}
    for a, b, da, db in (
        (labels[:, :-1], labels[:, 1:], dt[:, :-1], dt[:, 1:]),
        (labels[:-1, :], labels[1:, :], dt[:-1, :], dt[1:, :]),
    ):
        sel = (a != b) & (a > 0) & (b > 0)
        if not sel.any():
            continue
        la, lb = a[sel], b[sel]
        lo, hi = np.minimum(la, lb), np.maximum(la, lb)
        val = np.minimum(da[sel], db[sel])
        key = lo.astype(np.int64) * (int(labels.max()) + 1) + hi
        order = np.argsort(key, kind="stable")
        key, val = key[order], val[order]
        uniq, start = np.unique(key, return_index=True)
        best = np.maximum.reduceat(val, start)
        m = int(labels.max()) + 1
        for k, v in zip(uniq.tolist(), best.tolist(), strict=True):
            pair = (k // m, k % m)
            out[pair] = max(out.get(pair, 0.0), float(v))
    return out


def split_touching(
    mask: np.ndarray,
    half_width: float,
    *,
    peak_radius_factor: float = 0.5,
    saddle_ratio: float = 0.62,
) -> np.ndarray:
    """Label ``mask``, splitting touching chromosomes at necks (distance-transform watershed).

    Markers are the local maxima of the distance transform (within a disk of
    ``peak_radius_factor * half_width``); the watershed of the negated distance
    transform grows them into regions. Two neighbouring regions are merged again when
    the highest distance on their shared boundary (the saddle) is at least
    ``saddle_ratio`` times the lower of their two peaks - i.e. when there is no neck
    between them. Merging runs from the highest saddle down, with each merged region
    keeping its highest peak (a persistence / h-maxima criterion relative to width).

    Parameters
    ----------
    mask : numpy.ndarray
        bool ``(H, W)`` foreground.
    half_width : float
        Typical chromosome half-width (px).
    peak_radius_factor : float, optional
        Radius of the local-maximum test, relative to ``half_width``.
    saddle_ratio : float, optional
        In (0, 1]; smaller merges more (fewer splits), 1 merges only equal plateaus.

    Returns
    -------
    numpy.ndarray
        int32 ``(H, W)`` labels 1..N (0 background), numbered in raster order.

    Examples
    --------
    >>> m = np.zeros((40, 70), bool)
    >>> yy, xx = np.mgrid[:40, :70]
    >>> m |= (yy - 20) ** 2 + (xx - 18) ** 2 < 12 ** 2
    >>> m |= (yy - 20) ** 2 + (xx - 48) ** 2 < 12 ** 2
    >>> m[18:23, 25:42] = True                 # a thin bridge between two blobs
    >>> lab = split_touching(m, 6.0)
    >>> int(lab.max()), lab[20, 18] != lab[20, 48]
    (2, np.True_)
    """
    m = np.asarray(mask, bool)
    if not m.any():
        return np.zeros(m.shape, np.int32)
    dt = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
    dts = cv2.GaussianBlur(dt, (0, 0), 1.0) * m
    r = max(peak_radius_factor * half_width, 1.0)
    peaks = (dts > 0) & (dts >= cv2.dilate(dts, _disk(r)) - 1e-6)
    _, markers = cv2.connectedComponents(peaks.astype(np.uint8), connectivity=8)
    labels = watershed(-dts, markers, mask=m).astype(np.int32)
    n = int(labels.max())
    if n <= 1:
        return labels
    peak = _label_max(dts, labels, n)
    parent = np.arange(n + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for (a, b), s in sorted(_saddles(labels, dts).items(), key=lambda kv: -kv[1]):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        if s >= saddle_ratio * min(peak[ra], peak[rb]):
            parent[rb] = ra
            peak[ra] = max(peak[ra], peak[rb])
    roots = np.array([find(i) for i in range(n + 1)])
    _, relabel = np.unique(roots, return_inverse=True)
    return relabel.astype(np.int32)[labels]


def split_by_level(
    mask: np.ndarray,
    dark: np.ndarray,
    level: float,
    min_piece: float,
) -> np.ndarray:
    """Split components that fall apart into large pieces at a darker threshold.

    Touching chromosomes often meet at pale arm ends: at a darker threshold ``level``
    the component breaks into pieces. Where a component holds two or more pieces of at
    least ``min_piece`` pixels, the pieces become markers of a watershed of the
    (smoothed) darkness inside it; other components keep one label. The returned
    mask has a one-pixel gap between the regions of a split component, so that a
    following :func:`split_touching` treats them as separate objects.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.

    Examples
    --------
    >>> d = np.zeros((20, 40), np.uint8); d[5:15, 2:38] = 60
    >>> d[5:15, 4:18] = 150; d[5:15, 22:36] = 150   # two dark bodies, pale contact
    >>> out = split_by_level(d > 30, d, 100, 50)
    >>> int(cv2.connectedComponents(out.astype(np.uint8), connectivity=4)[0]) - 1
    2
    """
    m = np.asarray(mask, bool)
    d = np.asarray(dark, np.uint8)
    strong = (d > level) & m
    n_s, lab_s, stats_s, _ = cv2.connectedComponentsWithStats(strong.astype(np.uint8), 8)
    big = np.concatenate([[False], stats_s[1:, cv2.CC_STAT_AREA] >= min_piece])
    if big.sum() < 2:
        return m
    n_c, lab_c = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
    pieces = np.flatnonzero(big)
    # the fg component holding each piece (a piece lies inside one component)
    comp_of = np.zeros(n_s, np.int64)
    sel = strong
    comp_of[lab_s[sel]] = lab_c[sel]
    per_comp = np.bincount(comp_of[pieces], minlength=n_c)
    split_comp = per_comp >= 2
    split_comp[0] = False
    if not split_comp.any():
        return m
    region = split_comp[lab_c]
    markers = np.where(big[lab_s] & region, lab_s, 0).astype(np.int32)
    smooth = cv2.GaussianBlur(d, (0, 0), 1.5)
    lab = watershed(-smooth.astype(np.int32), markers, mask=region, watershed_line=True)
    out = m.copy()
    out[region] = lab[region] > 0
    return out


def merge_small_regions(labels: np.ndarray, min_area: float) -> np.ndarray:
    """Merge regions smaller than ``min_area`` into the neighbour they share most border with.

    Regions without a touching neighbour are kept (the debris filter has run before).

    Examples
    --------
    >>> lab = np.zeros((5, 8), np.int32); lab[:, :6] = 1; lab[:, 6:] = 2
    >>> merge_small_regions(lab, 12).max()
    np.int32(1)
    """
    lab = np.asarray(labels, np.int32).copy()
    n = int(lab.max())
    if n <= 1:
        return lab
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    small = [i for i in range(1, n + 1) if 0 < areas[i] < min_area]
    if not small:
        return lab
    target = np.arange(n + 1)
    # border lengths between label pairs
    counts: dict[tuple[int, int], int] = {}
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :])):
        sel = (a != b) & (a > 0) & (b > 0)
        for x, y in zip(a[sel].tolist(), b[sel].tolist(), strict=True):
            key = (min(x, y), max(x, y))
            counts[key] = counts.get(key, 0) + 1
    for i in sorted(small, key=lambda k: areas[k]):
        best, best_len = 0, 0
        for (x, y), c in counts.items():
            other = y if x == i else x if y == i else 0
            if other and c > best_len and areas[other] >= areas[i]:
                best, best_len = other, c
        if best:
            target[i] = best
    for i in range(1, n + 1):  # resolve chains a -> b -> c
        j, seen = i, set()
        while target[j] != j and j not in seen:
            seen.add(j)
            j = int(target[j])
        target[i] = j
    _, relabel = np.unique(target, return_inverse=True)
    return relabel.astype(np.int32)[lab]


def _objects(labels: np.ndarray, dark: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(labels.max())
    if n == 0:
        return np.zeros((0, 4), int), np.zeros(0), np.zeros(0, int)
    slices = ndi.find_objects(labels, max_label=n)
    boxes = np.array(
        [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices if s is not None], int
    )
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n + 1)
    sums = np.bincount(flat, weights=np.asarray(dark, np.float64).ravel(), minlength=n + 1)
    areas = counts[1:]
    scores = sums[1:] / np.maximum(areas, 1) / 255.0
    return boxes, scores, areas


def detect_chromosomes(
    image: np.ndarray,
    *,
    polarity: str = "auto",
    background_radius: int = 60,
    smooth: float = 1.0,
    method: str = "otsu",
    threshold_scale: float = 1.3,
    hysteresis: float = 0.5,
    block_size: int = 101,
    offset: float = -10.0,
    close_radius: int = 1,
    open_radius: int = 1,
    min_area_factor: float = 0.4,
    min_darkness: float = 0.0,
    nucleus_width_factor: float = 2.6,
    nucleus_area_factor: float = 12.0,
    nucleus_solidity: float = 0.8,
    split: bool = True,
    peak_radius_factor: float = 0.5,
    saddle_ratio: float = 0.62,
    min_piece_factor: float = 1.0,
    split_level: float = 1.8,
    box_pad_factor: float = 0.25,
) -> Detections:
    """Find every chromosome of a metaphase image: boxes, masks, scores.

    Parameters
    ----------
    image : numpy.ndarray
        Grey or colour metaphase, any depth (:func:`karyoflow.preprocess.intensity.to_grey`).
    polarity : {"auto", "dark_on_light", "light_on_dark"}, optional
        See :func:`karyoflow.preprocess.intensity.normalise_polarity`.
    background_radius, smooth : optional
        :func:`darkness_map`.
    method, threshold_scale, hysteresis, block_size, offset, close_radius, open_radius
        :func:`foreground_mask`.
    min_area_factor, min_darkness, nucleus_width_factor, nucleus_area_factor, nucleus_solidity
        :func:`remove_debris_and_nuclei` (sizes relative to the estimated width).
    split : bool, optional
        Split touching chromosomes (:func:`split_touching`).
    peak_radius_factor, saddle_ratio : optional
        :func:`split_touching`.
    min_piece_factor : float, optional
        Pieces of a split smaller than this x ``(2 w)^2`` are merged into their
        largest-contact neighbour (:func:`merge_small_regions`).
    split_level : float, optional
        Before the watershed, split components that fall apart into large pieces at
        ``split_level`` x the strong threshold (:func:`split_by_level`); 0 disables it.
    box_pad_factor : float, optional
        Boxes are the masks' bounding boxes grown by this x ``w`` px on every side
        (clipped to the image): annotated boxes are a little looser than the outline.

    Returns
    -------
    Detections

    Examples
    --------
    >>> img = np.full((120, 160), 220, np.uint8)
    >>> img[20:80, 20:34] = 60                    # two separate chromosomes
    >>> img[30:100, 60:74] = 70
    >>> det = detect_chromosomes(img, background_radius=30, box_pad_factor=0)
    >>> len(det), det.boxes.tolist()  # a 1 px blur rim around each bar
    (2, [[19, 19, 35, 81], [59, 29, 75, 101]])
    """
    grey = to_grey(np.asarray(image))
    grey, _ = normalise_polarity(grey, mode=polarity)
    dark = darkness_map(grey, background_radius=background_radius, smooth=smooth)
    fg = foreground_mask(
        dark,
        method=method,
        threshold_scale=threshold_scale,
        hysteresis=hysteresis,
        block_size=block_size,
        offset=offset,
        close_radius=close_radius,
        open_radius=open_radius,
    )
    hw = typical_half_width(fg)
    fg = remove_debris_and_nuclei(
        fg,
        dark,
        hw,
        min_area_factor=min_area_factor,
        min_darkness=min_darkness,
        nucleus_width_factor=nucleus_width_factor,
        nucleus_area_factor=nucleus_area_factor,
        nucleus_solidity=nucleus_solidity,
    )
    if split and split_level > 0:
        otsu, _ = cv2.threshold(dark, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        piece = max(min_piece_factor, min_area_factor, 0.1) * (2.0 * hw) ** 2
        sep = split_by_level(fg, dark, float(otsu) * threshold_scale * split_level, piece)
    else:
        sep = fg
    if split:
        labels = split_touching(
            sep,
            hw,
            peak_radius_factor=peak_radius_factor,
            saddle_ratio=saddle_ratio,
        )
        if sep is not fg:  # give the one-pixel gaps back to their neighbours
            gap = fg & (labels == 0)
            grown = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8))
            labels[gap] = grown[gap].astype(np.int32)
        if min_piece_factor > 0:
            labels = merge_small_regions(labels, min_piece_factor * (2.0 * hw) ** 2)
    else:
        _, lab = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
        labels = lab.astype(np.int32)
    boxes, scores, areas = _objects(labels, dark)
    if box_pad_factor > 0 and len(boxes):
        k = round(float(box_pad_factor) * hw)
        h, w = labels.shape
        boxes = boxes + np.array([-k, -k, k, k])
        boxes = np.clip(boxes, 0, [w, h, w, h])
    return Detections(boxes=boxes, labels=labels, scores=scores, areas=areas, half_width=hw)


def detector_defaults() -> dict[str, Any]:
    """Keyword defaults of :func:`detect_chromosomes` (its tunables), as a new dict.

    Examples
    --------
    >>> detector_defaults()["method"]
    'otsu'
    """
    sig = inspect.signature(detect_chromosomes)
    return {
        k: p.default
        for k, p in sig.parameters.items()
        if p.kind == p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }
