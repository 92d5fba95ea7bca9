"""Overlapping chromosome pairs, the way the public overlapping-pairs dataset was made.

Two single chromosomes are cut out, one is rotated and translated over the other, and
every pixel is labelled 0 (background), 1 (first chromosome only), 2 (second only) or
3 (both). Chromatin adds optical density, so the overlap is darker in the grey image.
The functions take plain optical-density images and masks, so real crops work too
(see :func:`od_from_grey`).
"""

from __future__ import annotations

import cv2
import numpy as np

from karyoflow.synth.render import RenderedChromosome, od_to_grey

__all__ = ["make_overlap_pair", "od_from_grey"]

Chromosome = RenderedChromosome | tuple[np.ndarray, np.ndarray]


def od_from_grey(
    grey: np.ndarray, *, background: float | None = None, threshold: float = 0.08
) -> tuple[np.ndarray, np.ndarray]:
    """Optical density and mask of a bright-field single-chromosome crop.

    Parameters
    ----------
    grey : numpy.ndarray
        uint8 (or float) HxW crop, light background, dark chromosome.
    background : float, optional
        Clear-glass grey level; default: the 95th percentile of the crop.
    threshold : float, optional
        OD above which a pixel belongs to the chromosome (largest component, holes filled).

    Returns
    -------
    tuple of numpy.ndarray
        float32 OD (scale of :func:`karyoflow.synth.render.od_to_grey`) and bool mask.

    Examples
    --------
    >>> g = np.full((9, 9), 235, np.uint8); g[2:7, 3:6] = 80
    >>> od, m = od_from_grey(g)
    >>> int(m.sum()), round(float(od.max()), 2)
    (15, 0.65)
    """
    g = np.asarray(grey, np.float32)
    if g.ndim == 3:
        g = g[..., :3].mean(axis=2)
    bg = float(np.percentile(g, 95)) if background is None else float(background)
    od = np.clip(-np.log10(np.clip(g, 1.0, None) / max(bg, 1.0)) / 0.72, 0.0, None)
    raw = (od > threshold).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(raw, connectivity=8)
    if n <= 1:
        return od.astype(np.float32), np.zeros(g.shape, bool)
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (comp == keep).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(mask, contours, -1, 1, thickness=cv2.FILLED)
    return od.astype(np.float32), mask.astype(bool)


def _arrays(chrom: Chromosome) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(chrom, RenderedChromosome):
        return chrom.image.astype(np.float32), chrom.mask.astype(bool)
    image, mask = chrom
    return np.asarray(image, np.float32), np.asarray(mask, bool)


def _fit(od: np.ndarray, mask: np.ndarray, limit: int, pad: int = 2) -> tuple[np.ndarray, ...]:
    """Crop to the mask bounding box and shrink so that the longer side fits ``limit``."""
    ys, xs = np.nonzero(mask)
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, mask.shape[0])
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, mask.shape[1])
    od, mask = od[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    diag = float(np.hypot(*od.shape))  # any rotation must still fit
    if diag > limit:
        scale = limit / diag
        size = (max(1, round(od.shape[1] * scale)), max(1, round(od.shape[0] * scale)))
        od = cv2.resize(od, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return od, mask


def _rotate(od: np.ndarray, mask: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = od.shape
    side = int(np.ceil(np.hypot(h, w))) + 2
    mat = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    mat[:, 2] += ((side - w) / 2.0, (side - h) / 2.0)
    od_r = cv2.warpAffine(od, mat, (side, side), flags=cv2.INTER_LINEAR, borderValue=0.0)
    m_r = cv2.warpAffine(mask.astype(np.float32), mat, (side, side), flags=cv2.INTER_LINEAR)
    return od_r, m_r >= 0.5


def _paste(size: int, arr: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, float]:
    """Paste ``arr`` at ``(x0, y0)`` into a ``size``-square canvas; return the kept fraction."""
    out = np.zeros((size, size), arr.dtype)
    h, w = arr.shape
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0, dx1, dy1 = max(0, x0), max(0, y0), min(size, x0 + w), min(size, y0 + h)
    if dx1 > dx0 and dy1 > dy0:
        out[dy0:dy1, dx0:dx1] = arr[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    total = float(np.asarray(arr, np.float64).sum())
    return out, (float(np.asarray(out, np.float64).sum()) / total if total else 0.0)


def make_overlap_pair(
    a: Chromosome,
    b: Chromosome,
    rng: np.random.Generator,
    *,
    size: int = 94,
    max_shift: int | None = None,
    min_overlap: int = 4,
    background: tuple[float, float] = (215.0, 245.0),
    blur_sigma: float = 0.6,
    noise_sigma: float = 2.0,
    invert: bool = False,
    max_tries: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Overlay two chromosomes into one labelled pair image.

    The first chromosome is centred (with a small random shift); the second is rotated by a
    random angle and translated so that a random point of the first lies under it, offset by
    at most ``max_shift`` pixels. Placements are redrawn until the pair overlaps by at
    least ``min_overlap`` pixels, each chromosome keeps a non-overlapping part and both
    lie (almost) wholly inside the square.

    Parameters
    ----------
    a, b : RenderedChromosome or (numpy.ndarray, numpy.ndarray)
        Chromosomes, or ``(optical_density, mask)`` pairs (real crops: :func:`od_from_grey`).
        Either is shrunk if its diagonal exceeds ``size - 4``.
    rng : numpy.random.Generator
    size : int, optional
        Side of the square output (the public set is 94 px).
    max_shift : int, optional
        Largest extra translation of the second chromosome; default ``size // 10``.
    min_overlap : int, optional
        Minimum number of overlap pixels.
    background : (float, float), optional
        Range of the clear-glass grey level.
    blur_sigma, noise_sigma : float, optional
        Optical blur (px) and Gaussian noise (grey levels).
    invert : bool, optional
        Return a fluorescence-like image (bright chromosomes on a dark background).
    max_tries : int, optional
        Placement attempts before giving up.

    Returns
    -------
    grey : numpy.ndarray
        uint8 ``(size, size)``, darker where both chromosomes lie (brighter if ``invert``).
    labels : numpy.ndarray
        uint8 ``(size, size)``: 0 background, 1 first only, 2 second only, 3 both.

    Raises
    ------
    RuntimeError
        If no placement satisfies the constraints within ``max_tries``.

    Examples
    --------
    >>> from karyoflow.synth.render import render_chromosome
    >>> rng = np.random.default_rng(0)
    >>> a = render_chromosome("1", rng, px_per_unit=0.004, width_px=8)
    >>> b = render_chromosome("5", rng, px_per_unit=0.004, width_px=8)
    >>> grey, lab = make_overlap_pair(a, b, rng)
    >>> grey.shape, sorted(np.unique(lab).tolist())
    ((94, 94), [0, 1, 2, 3])
    """
    od_a, mask_a = _fit(*_arrays(a), size - 4)
    od_b0, mask_b0 = _fit(*_arrays(b), size - 4)
    if not mask_a.any() or not mask_b0.any():
        raise ValueError("both chromosomes need a non-empty mask")
    shift = size // 10 if max_shift is None else int(max_shift)
    for _ in range(max_tries):
        ha, wa = od_a.shape
        ax0 = (size - wa) // 2 + int(rng.integers(-shift, shift + 1))
        ay0 = (size - ha) // 2 + int(rng.integers(-shift, shift + 1))
        pa_mask, keep_a = _paste(size, mask_a.astype(np.uint8), ax0, ay0)
        if keep_a < 1.0:
            continue
        od_b, mask_b = _rotate(od_b0, mask_b0, float(rng.uniform(0.0, 360.0)))
        ys, xs = np.nonzero(pa_mask)
        k = int(rng.integers(len(xs)))
        target = np.array([xs[k], ys[k]]) + rng.integers(-shift, shift + 1, 2)
        bys, bxs = np.nonzero(mask_b)
        anchor = int(rng.integers(len(bxs)))
        bx0, by0 = int(target[0] - bxs[anchor]), int(target[1] - bys[anchor])
        pb_mask, keep_b = _paste(size, mask_b.astype(np.uint8), bx0, by0)
        if keep_b < 0.97:
            continue
        in_a, in_b = pa_mask.astype(bool), pb_mask.astype(bool)
        both = in_a & in_b
        if both.sum() < min_overlap or not (in_a & ~in_b).any() or not (in_b & ~in_a).any():
            continue
        od = _paste(size, od_a, ax0, ay0)[0] + _paste(size, od_b, bx0, by0)[0]
        labels = np.zeros((size, size), np.uint8)
        labels[in_a] = 1
        labels[in_b] = 2
        labels[both] = 3
        return _to_grey(od, rng, background, blur_sigma, noise_sigma, invert), labels
    raise RuntimeError(f"no overlapping placement found in {max_tries} tries")


def _to_grey(
    od: np.ndarray,
    rng: np.random.Generator,
    background: tuple[float, float],
    blur_sigma: float,
    noise_sigma: float,
    invert: bool,
) -> np.ndarray:
    grey = od_to_grey(od, float(rng.uniform(*background)))
    if blur_sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=blur_sigma)
    grey = grey + rng.normal(0.0, noise_sigma, grey.shape).astype(np.float32)
    out = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return (255 - out) if invert else out
