"""Straightening of bent chromosomes.

Two methods:

* :func:`straighten_medial_axis` - the centre line (longest skeleton path, extended to
  the tips and smoothed) is unrolled with ``cv2.remap``: row ``i`` of the output samples
  the perpendicular to the centre line at arc length ``i``.
* :func:`straighten_projection` - the projection-based method of the literature: the
  chromosome is split at its bend (the minimum of the horizontal projection once the
  long axis is vertical) and each half is rotated upright separately.

Both return a :class:`StraightenResult` whose ``map_points`` carries input ``x, y``
points (a known centromere, say) to the output.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from skimage.morphology import skeletonize

from karyoflow.preprocess.mask import background_level, fill_holes
from karyoflow.preprocess.orient import orient_vertical, transform_points

__all__ = [
    "StraightenResult",
    "centre_line",
    "straighten",
    "straighten_medial_axis",
    "straighten_projection",
]


def _identity(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64).reshape(-1, 2).copy()


@dataclass
class StraightenResult:
    """Output of the straightening functions.

    Attributes
    ----------
    image : numpy.ndarray
        uint8 straightened grey (background outside the mask when applied).
    mask : numpy.ndarray
        bool mask of ``image``.
    applied : bool
        False when the input was returned unchanged.
    reason : str
        Why it was (not) applied.
    map_points : callable
        Maps ``(N, 2)`` input ``x, y`` points to ``image`` coordinates.
    """

    image: np.ndarray
    mask: np.ndarray
    applied: bool
    reason: str
    map_points: Callable[[np.ndarray], np.ndarray] = field(default=_identity, repr=False)


def _unchanged(grey: np.ndarray, mask: np.ndarray, reason: str) -> StraightenResult:
    return StraightenResult(
        image=np.asarray(grey).copy(),
        mask=np.asarray(mask, bool).copy(),
        applied=False,
        reason=reason,
        map_points=_identity,
    )


# --------------------------------------------------------------------------- medial axis

_OFFSETS = ((0, 1), (1, -1), (1, 0), (1, 1))  # (dy, dx): each undirected pair once


def _sweep(nbrs: list[list[tuple[int, float]]], source: int) -> tuple[list[float], list[int]]:
    """Single-source shortest paths on a small skeleton graph (Dijkstra with a heap)."""
    n = len(nbrs)
    dist = [math.inf] * n
    pred = [-1] * n
    dist[source] = 0.0
    heap = [(0.0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, w in nbrs[u]:
            nd = d + w
            if nd < dist[v]:
                dist[v] = nd
                pred[v] = u
                heapq.heappush(heap, (nd, v))
    return dist, pred


def _longest_path(skel: np.ndarray) -> np.ndarray:
    """Longest geodesic path through a skeleton, ``(K, 2)`` ``x, y`` float.

    Double sweep: the farthest node from a tip (or, for loops, from the best-connected
    node) is one end; the farthest node from it is the other. Skeletons have a few
    hundred pixels, so a heap-based Dijkstra in Python beats building a sparse matrix.
    """
    ys, xs = np.nonzero(skel)
    n = ys.size
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.array([[xs[0], ys[0]]], np.float64)
    h, w = skel.shape
    index = np.full((h + 2, w + 2), -1, np.int64)
    index[ys + 1, xs + 1] = np.arange(n)
    nbrs: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for dy, dx in _OFFSETS:
        nb = index[ys + 1 + dy, xs + 1 + dx]
        ok = np.flatnonzero(nb >= 0)
        weight = math.hypot(dy, dx)
        for a, b in zip(ok.tolist(), nb[ok].tolist(), strict=True):
            nbrs[a].append((b, weight))
            nbrs[b].append((a, weight))
    deg = np.fromiter((len(x) for x in nbrs), np.int64, n)
    ends = np.flatnonzero(deg == 1)
    if ends.size == 2 and int(deg.max()) <= 2:
        # an unbranched line: the farthest node from one tip is the other tip
        a = int(ends[1])
    else:
        start = int(ends[0]) if ends.size else int(np.argmax(deg))
        dist, _ = _sweep(nbrs, start)
        finite = [d if d < math.inf else -1.0 for d in dist]
        a = int(np.argmax(finite))
    dist, pred = _sweep(nbrs, a)
    finite = [d if d < math.inf else -1.0 for d in dist]
    b = int(np.argmax(finite))
    path = [b]
    while path[-1] != a and pred[path[-1]] >= 0:
        path.append(pred[path[-1]])
    p = np.asarray(path[::-1])
    return np.stack([xs[p], ys[p]], axis=1).astype(np.float64)


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    """Resample a polyline at ``step`` arc-length spacing (keeps both ends)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return points[:1].copy()
    n = max(2, int(np.floor(s[-1] / step)) + 1)
    t = np.linspace(0.0, (n - 1) * step, n)
    return np.stack([np.interp(t, s, points[:, 0]), np.interp(t, s, points[:, 1])], axis=1)


def _march(mask: np.ndarray, start: np.ndarray, direction: np.ndarray, limit: float) -> float:
    """Distance from ``start`` along ``direction`` to the last point inside ``mask``."""
    t = np.arange(0.0, limit, 0.25)
    pts = start + t[:, None] * direction
    xi = np.rint(pts[:, 0]).astype(int)
    yi = np.rint(pts[:, 1]).astype(int)
    h, w = mask.shape
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    inside = np.zeros(t.size, bool)
    inside[ok] = mask[yi[ok], xi[ok]]
    out = np.flatnonzero(~inside)
    return float(t[out[0]] - 0.25) if out.size else float(t[-1])


def _major_axis_length(mask: np.ndarray) -> float:
    """Length of a mask along its major axis: 4 standard deviations (2 x 2 sigma)."""
    mom = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    if mom["m00"] <= 0:
        return 0.0
    a, b, c = mom["mu20"] / mom["m00"], mom["mu02"] / mom["m00"], mom["mu11"] / mom["m00"]
    lam = 0.5 * (a + b) + np.sqrt(0.25 * (a - b) ** 2 + c * c)
    return float(4.0 * np.sqrt(max(lam, 0.0)))


def _inscribed_radius(mask: np.ndarray) -> float:
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    return float(dist.max())


def centre_line(
    mask: np.ndarray,
    *,
    smooth: float = 3.0,
    step: float = 1.0,
    trim: float | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """Smooth centre line of a mask from tip to tip, resampled every ``step`` pixels.

    The longest path through the skeleton is trimmed at both ends by ``trim`` pixels
    (default: 0.7 x the largest inscribed radius: skeleton ends fork into the corners),
    smoothed with a Gaussian of ``smooth`` pixels along its length, then extended along
    its end tangents to the mask boundary. ``radius`` (the largest inscribed radius)
    is computed when not given. The line runs downwards (first point uppermost).

    Returns
    -------
    numpy.ndarray
        ``(M, 2)`` ``x, y``; ``(0, 2)`` for an empty mask.

    Examples
    --------
    >>> m = np.zeros((30, 11), bool); m[3:27, 3:8] = True
    >>> c = centre_line(m)
    >>> c[0].round().tolist(), c[-1].round().tolist(), bool(np.allclose(c[:, 0], 5, atol=0.5))
    ([5.0, 3.0], [5.0, 26.0], True)
    """
    return _centre_line(mask, smooth=smooth, step=step, trim=trim, radius=radius)[0]


def _centre_line(
    mask: np.ndarray,
    *,
    smooth: float = 3.0,
    step: float = 1.0,
    trim: float | None = None,
    radius: float | None = None,
) -> tuple[np.ndarray, float]:
    """:func:`centre_line` plus the fraction of skeleton pixels off the longest path."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros((0, 2)), 0.0
    if radius is None:
        radius = _inscribed_radius(mask)
    skel = skeletonize(mask)
    path = _longest_path(skel)
    n_skel = int(np.count_nonzero(skel))
    branched = 1.0 - path.shape[0] / n_skel if n_skel else 0.0
    if path.shape[0] < 2:
        ys, xs = np.nonzero(mask)
        path = np.array([[xs.mean(), ys.mean()]] * 2)
    path = _resample(path, 0.5)
    length = 0.5 * (path.shape[0] - 1)
    cut = 0.7 * radius if trim is None else float(trim)
    cut = min(cut, 0.3 * length)
    k = round(cut / 0.5)
    if k > 0 and path.shape[0] > 2 * k + 2:
        path = path[k:-k]
    if smooth > 0 and path.shape[0] > 3:
        # odd reflection about the end points keeps straight ends straight
        q = min(path.shape[0] - 1, int(np.ceil(4 * smooth / 0.5)))
        ext = np.concatenate(
            [2 * path[0] - path[q:0:-1], path, 2 * path[-1] - path[-2 : -q - 2 : -1]]
        )
        ext = np.stack(
            [gaussian_filter1d(ext[:, i], smooth / 0.5, mode="nearest") for i in range(2)],
            axis=1,
        )
        path = ext[q : q + path.shape[0]]
    span = 2.0 * radius + cut + 4.0
    ends = []
    for end, inner in ((path[0], path[min(path.shape[0] - 1, 6)]), (path[-1], path[-7:][0])):
        d = end - inner
        nrm = float(np.hypot(*d))
        if nrm < 1e-6:
            ends.append(end)
            continue
        d = d / nrm
        ends.append(end + d * _march(mask, end, d, span))
    line = np.concatenate([ends[0][None], path, ends[1][None]])
    d = line[-1] - line[0]
    if d[1] < 0 or (d[1] == 0 and d[0] < 0):  # deterministic direction: downwards
        line = line[::-1]
    return _resample(line, step), branched


def straighten_medial_axis(
    grey: np.ndarray,
    mask: np.ndarray,
    *,
    smooth: float = 3.0,
    step: float = 1.0,
    half_width: int | None = None,
    background: int | None = None,
    pad: int = 2,
    check: bool = True,
    area_range: tuple[float, float] = (0.75, 1.3),
    max_branched: float = 0.55,
    min_length: float = 0.8,
) -> StraightenResult:
    """Unroll the chromosome along its smoothed medial axis.

    Output row ``i`` samples (bilinear) the perpendicular to the centre line at arc
    length ``i * step`` (plus ``pad`` rows at each end); column ``half_width`` is the
    centre line. The output mask is the warped mask, cleaned to the component on the
    centre line; pixels outside it get the background level.

    Parameters
    ----------
    grey : numpy.ndarray
        uint8 HxW.
    mask : numpy.ndarray
        bool HxW, one chromosome.
    smooth : float, optional
        Gaussian smoothing of the centre line, pixels of arc length.
    step : float, optional
        Output row spacing along the centre line, pixels.
    half_width : int, optional
        Half the output width; default 1.5 x the largest inscribed radius + 3.
    background : int, optional
        Fill level; default the median grey outside ``mask``.
    pad : int, optional
        Rows added beyond each tip.
    check : bool, optional
        Check the result and return the input unchanged (``applied=False``, with the
        failed check as ``reason``) when the unrolling went wrong: the straightened
        mask area must lie within ``area_range`` x the input mask area, at most
        ``max_branched`` of the skeleton pixels may lie off its longest path (a
        branched, blob-like or fragmented mask has no single centre line), and the
        straightened length must be at least ``min_length`` x the length of the input
        mask's major axis (4 standard deviations along it).
    area_range, max_branched, min_length : optional
        Thresholds of the checks.

    Returns
    -------
    StraightenResult
        Unchanged (``applied=False``) for an empty or tiny mask, or one failing a check.

    Examples
    --------
    >>> m = np.zeros((40, 40), bool); yy, xx = np.mgrid[:40, :40]
    >>> m[(np.hypot(xx - 2, yy - 38) < 30) & (np.hypot(xx - 2, yy - 38) > 23)] = True
    >>> r = straighten_medial_axis(np.where(m, 60, 220).astype(np.uint8), m)
    >>> r.applied, r.image.shape[0] > 35, bool(abs(r.mask.sum(1)[5:-5] - 7).max() <= 2)
    (True, True, True)
    """
    grey = np.asarray(grey)
    mask = np.asarray(mask, bool)
    if grey.shape != mask.shape:
        raise ValueError(f"grey {grey.shape} and mask {mask.shape} differ in shape")
    area = int(mask.sum())
    if area < 9:
        return _unchanged(grey, mask, f"mask too small ({area} px)")
    if area == mask.size:
        return _unchanged(grey, mask, "mask fills the whole crop")
    bg = background_level(grey, mask) if background is None else int(background)
    radius = _inscribed_radius(mask)
    line, branched = _centre_line(mask, smooth=smooth, step=step, radius=radius)
    if line.shape[0] < 3:
        return _unchanged(grey, mask, "degenerate centre line")
    if check and branched > max_branched:
        return _unchanged(grey, mask, f"branched skeleton ({branched:.2f} off the centre line)")
    # extend by pad rows at both ends along the end tangents
    t0 = line[0] - line[1]
    t1 = line[-1] - line[-2]
    t0 /= max(np.hypot(*t0), 1e-9)
    t1 /= max(np.hypot(*t1), 1e-9)
    k = np.arange(pad, 0, -1, dtype=np.float64)[:, None] * step
    line = np.concatenate([line[0] + k * t0, line, line[-1] + k[::-1] * t1])
    tang = np.gradient(line, axis=0)
    tang /= np.maximum(np.linalg.norm(tang, axis=1, keepdims=True), 1e-9)
    normal = np.stack([tang[:, 1], -tang[:, 0]], axis=1)  # (1, 0) for a downward line
    if half_width is None:
        half_width = int(np.ceil(1.5 * radius)) + 3
    hw = int(half_width)
    offs = np.arange(-hw, hw + 1, dtype=np.float64)
    map_x = (line[:, None, 0] + offs[None, :] * normal[:, None, 0]).astype(np.float32)
    map_y = (line[:, None, 1] + offs[None, :] * normal[:, None, 1]).astype(np.float32)
    out_m = cv2.remap(mask.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0) >= 0.5
    n, lab = cv2.connectedComponents(out_m.astype(np.uint8), connectivity=4)
    n -= 1  # label 0 is the background
    if n > 1:
        centre = lab[:, hw]
        counts = np.bincount(centre[centre > 0], minlength=n + 1)
        if counts.any():
            out_m = lab == int(np.argmax(counts))
    out_m = fill_holes(out_m)
    if not out_m.any():
        return _unchanged(grey, mask, "empty straightened mask")
    if check:
        ratio = float(np.count_nonzero(out_m)) / area
        if not area_range[0] <= ratio <= area_range[1]:
            return _unchanged(grey, mask, f"straightened area ratio {ratio:.2f}")
        rows = np.flatnonzero(out_m.any(axis=1))
        out_len = float(rows[-1] - rows[0] + 1) * step
        major = _major_axis_length(mask)
        if out_len < min_length * major:
            return _unchanged(
                grey, mask, f"straightened length {out_len:.0f} < {min_length} x {major:.0f}"
            )
    out_g = cv2.remap(grey, map_x, map_y, cv2.INTER_LINEAR, borderValue=bg)
    out_g[~out_m] = bg
    origin = line.copy()
    tang_c, norm_c = tang.copy(), normal.copy()

    def map_points(points: np.ndarray) -> np.ndarray:
        q = np.asarray(points, np.float64).reshape(-1, 2)
        d2 = ((q[:, None, :] - origin[None, :, :]) ** 2).sum(axis=2)
        i = np.argmin(d2, axis=1)
        rel = q - origin[i]
        y = i + (rel * tang_c[i]).sum(axis=1) / step
        x = hw + (rel * norm_c[i]).sum(axis=1)
        return np.stack([x, y], axis=1)

    return StraightenResult(
        image=out_g, mask=out_m, applied=True, reason="medial axis", map_points=map_points
    )


# ---------------------------------------------------------------------------- projection


def _min_width_angle(points: np.ndarray, angle_step: float, span: float = 60.0) -> float:
    """Rotation (degrees, OpenCV sense) within +-span that makes ``points`` narrowest in x."""
    ang = np.deg2rad(np.arange(-span, span + 1e-9, angle_step))
    c = points - points.mean(axis=0)
    # x' after an OpenCV rotation by angle a (counter-clockwise as displayed)
    xr = c[None, :, 0] * np.cos(ang)[:, None] + c[None, :, 1] * np.sin(ang)[:, None]
    widths = xr.max(axis=1) - xr.min(axis=1)
    best = np.flatnonzero(widths <= widths.min() + 1e-9)
    return float(np.rad2deg(ang[best[np.argmin(np.abs(ang[best]))]]))


def fill_ratio(mask: np.ndarray) -> float:
    """Mask area over the area of its minimum-area bounding rectangle.

    Examples
    --------
    >>> m = np.zeros((10, 10), bool); m[2:8, 3:6] = True
    >>> fill_ratio(m)
    1.0
    """
    pts = np.column_stack(np.nonzero(mask)[::-1]).astype(np.float32)
    if pts.shape[0] < 3:
        return 1.0
    (_, _), (w, h), _ = cv2.minAreaRect(pts)
    return float(min(1.0, mask.sum() / max((w + 1.0) * (h + 1.0), 1.0)))


def straighten_projection(
    grey: np.ndarray,
    mask: np.ndarray,
    *,
    fill_threshold: float = 0.55,
    angle_step: float = 2.0,
    background: int | None = None,
    end_exclusion: float = 0.2,
) -> StraightenResult:
    """Projection-based straightening (split at the bend, rotate each half upright).

    The chromosome is first rotated so that its long axis is vertical
    (:func:`~karyoflow.preprocess.orient.orient_vertical`); the bend is the minimum of
    the horizontal projection (mask pixels per row) outside the ``end_exclusion``
    fraction at either end. Each half is rotated (within +-60 degrees, ``angle_step``)
    to its narrowest, and the two are stacked, centred, top half first. Only bent
    chromosomes are processed: the mask must fill less than ``fill_threshold`` of its
    minimum-area rectangle.

    Returns
    -------
    StraightenResult
        Unchanged with a reason when the mask is empty, not bent enough or too short.

    Examples
    --------
    >>> m = np.zeros((40, 40), bool); m[4:34, 4:10] = True; m[28:34, 4:34] = True
    >>> r = straighten_projection(np.where(m, 60, 220).astype(np.uint8), m)
    >>> r.applied, r.image.shape[0] > r.image.shape[1]
    (True, True)
    >>> straighten_projection(np.zeros((5, 5), np.uint8), np.zeros((5, 5), bool)).reason
    'empty mask'
    """
    grey = np.asarray(grey)
    mask = np.asarray(mask, bool)
    if not mask.any():
        return _unchanged(grey, mask, "empty mask")
    if mask.sum() < 9:
        return _unchanged(grey, mask, f"mask too small ({int(mask.sum())} px)")
    fr = fill_ratio(mask)
    if fr >= fill_threshold:
        return _unchanged(grey, mask, f"fill ratio {fr:.2f} >= {fill_threshold} (not bent)")
    bg = background_level(grey, mask) if background is None else int(background)
    g, m, mat = orient_vertical(grey, mask, background=bg)
    prof = m.sum(axis=1).astype(np.float64)
    rows = np.flatnonzero(prof > 0)
    top, bottom = int(rows[0]), int(rows[-1])
    length = bottom - top + 1
    lo = top + round(end_exclusion * length)
    hi = bottom - round(end_exclusion * length)
    if hi - lo < 1:
        return _unchanged(grey, mask, "chromosome too short to split")
    split = lo + int(np.argmin(prof[lo : hi + 1]))
    halves = []
    for rs in (slice(0, split), slice(split, m.shape[0])):
        hm = np.zeros_like(m)
        hm[rs] = m[rs]
        if hm.sum() < 3:
            return _unchanged(grey, mask, "empty half after split")
        pts = np.column_stack(np.nonzero(hm)[::-1]).astype(np.float64)
        ang = _min_width_angle(pts, angle_step)
        c = pts.mean(axis=0)
        rot = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), ang, 1.0)
        hg, hmm, hmat = _warp_half(g, hm, rot, bg)
        halves.append((hg, hmm, hmat))
    width = max(h[0].shape[1] for h in halves)
    images, masks, mats = [], [], []
    y_off = 0
    for hg, hmm, hmat in halves:
        x_off = (width - hg.shape[1]) // 2
        pad = ((0, 0), (x_off, width - hg.shape[1] - x_off))
        images.append(np.pad(hg, pad, constant_values=bg))
        masks.append(np.pad(hmm, pad))
        full = hmat.copy()
        full[:, 2] += (x_off, y_off)
        mats.append(np.vstack([full, [0, 0, 1]]) @ np.vstack([mat, [0, 0, 1]]))
        y_off += hg.shape[0]
    out_g = np.concatenate(images, axis=0)
    out_m = np.concatenate(masks, axis=0)
    mat_top, mat_bottom = mats[0][:2], mats[1][:2]

    def map_points(points: np.ndarray) -> np.ndarray:
        q = np.asarray(points, np.float64).reshape(-1, 2)
        in_top = transform_points(mat, q)[:, 1] < split
        return np.where(
            in_top[:, None], transform_points(mat_top, q), transform_points(mat_bottom, q)
        )

    return StraightenResult(
        image=out_g,
        mask=out_m,
        applied=True,
        reason=f"projection (fill ratio {fr:.2f}, split at row {split})",
        map_points=map_points,
    )


def _warp_half(
    grey: np.ndarray, mask: np.ndarray, rot: np.ndarray, bg: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate one half and crop it to its mask rows (no vertical padding)."""
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    tp = transform_points(rot, pts)
    lo = np.floor(tp.min(axis=0)) - np.array([2.0, 0.0])
    hi = np.ceil(tp.max(axis=0)) + np.array([2.0, 0.0])
    mat = rot.copy()
    mat[:, 2] -= lo
    size = (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
    out_m = (
        cv2.warpAffine(mask.astype(np.float32), mat, size, flags=cv2.INTER_LINEAR, borderValue=0)
        >= 0.5
    )
    out_g = cv2.warpAffine(grey, mat, size, flags=cv2.INTER_LINEAR, borderValue=int(bg))
    out_g[~out_m] = bg
    return out_g, out_m, mat


def straighten(
    grey: np.ndarray, mask: np.ndarray, method: str = "medial_axis", **kwargs: object
) -> StraightenResult:
    """Dispatch to :func:`straighten_medial_axis`, :func:`straighten_projection` or none.

    Examples
    --------
    >>> m = np.zeros((8, 8), bool); m[2:6, 3:5] = True
    >>> r = straighten(np.zeros((8, 8), np.uint8), m, method="none")
    >>> r.applied, r.reason
    (False, 'method none')
    """
    if method == "medial_axis":
        return straighten_medial_axis(grey, mask, **kwargs)  # type: ignore[arg-type]
    if method == "projection":
        return straighten_projection(grey, mask, **kwargs)  # type: ignore[arg-type]
    if method == "none":
        return _unchanged(grey, mask, "method none")
    raise ValueError(f"unknown straightening method {method!r}; use medial_axis, projection, none")
