"""Orientation of single-chromosome crops: long axis vertical, short (p) arm up.

Matrices are OpenCV 2x3 affine matrices mapping input ``(x, y)`` pixel coordinates to
output coordinates (pixel centres at integers), so callers can carry points along with
:func:`transform_points`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from karyoflow.preprocess.mask import background_level

__all__ = [
    "OrientResult",
    "crop_to_mask",
    "estimate_centromere",
    "orient",
    "orient_vertical",
    "short_arm_up",
    "transform_points",
    "width_profile",
]


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to ``(N, 2)`` ``x, y`` points.

    Examples
    --------
    >>> transform_points(np.array([[1.0, 0, 2], [0, 1, 3]]), np.array([[1.0, 1.0]])).tolist()
    [[3.0, 4.0]]
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    m = np.asarray(matrix, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _major_axis_angle(mask: np.ndarray) -> float:
    """Angle (degrees, image coordinates) of the mask's major axis from the x axis."""
    mom = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    if mom["m00"] <= 0:
        return 90.0
    mu20, mu02, mu11 = mom["mu20"], mom["mu02"], mom["mu11"]
    return float(np.degrees(0.5 * np.arctan2(2.0 * mu11, mu20 - mu02)))


def warp_to_box(
    grey: np.ndarray,
    mask: np.ndarray,
    matrix: np.ndarray,
    *,
    pad: int = 2,
    background: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp ``grey``/``mask`` by ``matrix`` into a canvas cropped to the mask's box + pad.

    Returns the warped grey (background outside the mask), mask and the full matrix
    (``matrix`` with the crop translation folded in).

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:3, 2] = True
    >>> g, mm, a = warp_to_box(np.full((5, 5), 9, np.uint8), m, np.eye(2, 3), pad=1)
    >>> mm.shape, a[:, 2].tolist()
    ((6, 5), [0.0, 1.0])
    """
    bg = background_level(grey, mask) if background is None else int(background)
    mat = np.asarray(matrix, np.float64).copy()
    # Corners of every mask pixel, so that nothing is cut at any angle. An affine map's
    # extremes over the pixels are reached at the vertices of their convex hull, so only
    # those are transformed (the same box as with every pixel, at a fraction of the cost).
    found = cv2.findNonZero(np.asarray(mask, np.uint8))
    if found is None:
        pts = np.zeros((0, 2), np.float64)
    else:
        pts = cv2.convexHull(found).reshape(-1, 2).astype(np.float64)
    corners = pts[:, None, :] + np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    tp = transform_points(mat, corners.reshape(-1, 2))
    lo = np.floor(tp.min(axis=0)) - pad
    hi = np.ceil(tp.max(axis=0)) + pad
    mat[:, 2] -= lo
    size = (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
    out_m = (
        cv2.warpAffine(mask.astype(np.float32), mat, size, flags=cv2.INTER_LINEAR, borderValue=0)
        >= 0.5
    )
    out_g = cv2.warpAffine(np.asarray(grey), mat, size, flags=cv2.INTER_LINEAR, borderValue=int(bg))
    out_g[~out_m] = bg
    return out_g, out_m, mat


def orient_vertical(
    grey: np.ndarray, mask: np.ndarray, *, background: int | None = None, pad: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate so that the mask's long axis (second image moments) is vertical.

    The result is cropped to the rotated mask's bounding box plus ``pad`` pixels;
    pixels outside the mask are set to ``background`` (default the median grey outside
    the mask).

    Parameters
    ----------
    grey : numpy.ndarray
        uint8 HxW.
    mask : numpy.ndarray
        bool HxW.
    background : int, optional
        Fill level outside the mask.
    pad : int, optional
        Margin around the mask's bounding box.

    Returns
    -------
    grey, mask, matrix : numpy.ndarray
        Rotated uint8 grey, bool mask and the 2x3 matrix mapping input ``x, y`` to output
        ``x, y``. An empty mask returns the inputs (copied) and the identity.

    Examples
    --------
    >>> m = np.zeros((20, 30), bool); m[8:12, 3:27] = True   # horizontal bar
    >>> g, mm, a = orient_vertical(np.where(m, 50, 220).astype(np.uint8), m)
    >>> mm.shape[0] > mm.shape[1], int(mm.sum()) == int(m.sum())
    (True, True)
    """
    grey = np.asarray(grey)
    mask = np.asarray(mask, bool)
    if not mask.any():
        return grey.copy(), mask.copy(), np.eye(2, 3)
    theta = _major_axis_angle(mask)  # major axis angle from +x, y down
    ys, xs = np.nonzero(mask)
    centre = (float(xs.mean()), float(ys.mean()))
    # OpenCV angle is counter-clockwise as displayed; rotate the major axis onto +y
    rot = 90.0 - theta
    rot = (rot + 90.0) % 180.0 - 90.0  # smallest rotation, in [-90, 90)
    mat = cv2.getRotationMatrix2D(centre, -rot, 1.0)
    return warp_to_box(grey, mask, mat, pad=pad, background=background)


def width_profile(mask: np.ndarray) -> np.ndarray:
    """Width of the mask in each row (pixel count), float.

    Examples
    --------
    >>> width_profile(np.array([[0, 1, 1], [1, 1, 1], [0, 0, 0]], bool)).tolist()
    [2.0, 3.0, 0.0]
    """
    return np.asarray(mask, bool).sum(axis=1).astype(np.float64)


def estimate_centromere(mask: np.ndarray, *, smooth: float = 2.5, margin: float = 1.0) -> float:
    """Row of the primary constriction: the narrowest point away from the telomeres.

    The per-row width is smoothed (Gaussian, ``smooth`` pixels); rows within ``margin``
    times the median width of either end are excluded (rounded telomeres are narrow
    too), but at least 5 % of the length and at most 35 %. The narrowest remaining row
    is returned; its depth is compared with the widths on either side so that a
    tapering end does not win over a real constriction. Acrocentrics (13-15, 21, 22)
    have their constriction (and the narrow satellite stalk) close to one end, which the
    end exclusion keeps within reach.

    Parameters
    ----------
    mask : numpy.ndarray
        bool HxW of a vertical chromosome.
    smooth : float, optional
        Gaussian sigma of the width profile, pixels.
    margin : float, optional
        End exclusion in units of the median width.

    Returns
    -------
    float
        Row index (in ``mask`` coordinates); NaN for an empty mask, the middle row for
        a very short one.

    Examples
    --------
    >>> m = np.zeros((40, 12), bool); m[2:38, 2:10] = True; m[14:17, 2:4] = False
    >>> m[14:17, 8:10] = False
    >>> estimate_centromere(m)
    15.0
    """
    mask = np.asarray(mask, bool)
    w = width_profile(mask)
    rows = np.flatnonzero(w > 0)
    if rows.size == 0:
        return float("nan")
    top, bottom = int(rows[0]), int(rows[-1])
    length = bottom - top + 1
    if length < 5:
        return float((top + bottom) / 2.0)
    prof = gaussian_filter1d(w[top : bottom + 1], max(smooth, 1e-3), mode="nearest")
    med = float(np.median(w[top : bottom + 1]))
    excl = int(np.clip(round(margin * med), round(0.05 * length), round(0.35 * length)))
    excl = min(excl, (length - 1) // 2)
    idx = np.arange(length)
    inner = (idx >= excl) & (idx <= length - 1 - excl)
    # depth of each row below the widest point on either side of it
    left_max = np.maximum.accumulate(prof)
    right_max = np.maximum.accumulate(prof[::-1])[::-1]
    depth = np.minimum(left_max, right_max) - prof
    score = np.where(inner, depth + 1e-3 * (med - prof), -np.inf)
    best = int(np.argmax(score))
    return float(top + best)


def short_arm_up(
    grey: np.ndarray, mask: np.ndarray, centromere_y: float
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Flip vertically if the centromere is in the lower half of the mask.

    Returns ``(grey, mask, centromere_y, flipped)``; the halves are those of the mask's
    vertical extent.

    Examples
    --------
    >>> m = np.zeros((10, 3), bool); m[1:9] = True
    >>> g, mm, c, f = short_arm_up(np.zeros((10, 3), np.uint8), m, 7.0)
    >>> c, f
    (2.0, True)
    >>> short_arm_up(g, mm, 3.0)[2:]
    (3.0, False)
    """
    rows = np.flatnonzero(np.asarray(mask, bool).any(axis=1))
    h = np.asarray(mask).shape[0]
    mid = (rows[0] + rows[-1]) / 2.0 if rows.size else (h - 1) / 2.0
    if np.isfinite(centromere_y) and centromere_y > mid:
        return (
            np.ascontiguousarray(grey[::-1]),
            np.ascontiguousarray(mask[::-1]),
            float(h - 1 - centromere_y),
            True,
        )
    return grey, mask, float(centromere_y), False


@dataclass
class OrientResult:
    """Result of :func:`orient`.

    Attributes
    ----------
    image : numpy.ndarray
        uint8 vertical chromosome, short arm up.
    mask : numpy.ndarray
        bool mask of ``image``.
    centromere : tuple of float
        ``(x, y)`` estimated centromere in ``image`` coordinates.
    flipped : bool
        Whether the image was flipped vertically to put the short arm up.
    matrix : numpy.ndarray
        2x3 affine matrix mapping input ``x, y`` to ``image`` coordinates (rotation,
        crop and flip).
    """

    image: np.ndarray
    mask: np.ndarray
    centromere: tuple[float, float]
    flipped: bool
    matrix: np.ndarray


def crop_to_mask(
    grey: np.ndarray, mask: np.ndarray, *, background: int | None = None, pad: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`warp_to_box` for the identity, without resampling: crop + background fill.

    For an image that is already vertical (the output of medial-axis straightening):
    the same canvas, pixels and matrix as :func:`warp_to_box` with ``np.eye(2, 3)``.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:3, 2] = True
    >>> g = np.full((5, 5), 9, np.uint8)
    >>> a, b = crop_to_mask(g, m, pad=1), warp_to_box(g, m, np.eye(2, 3), pad=1)
    >>> all(np.array_equal(x, y) for x, y in zip(a, b))
    True
    """
    grey = np.asarray(grey)
    mask = np.asarray(mask, bool)
    bg = background_level(grey, mask) if background is None else int(background)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    # warp_to_box's canvas: pixel corners (+-0.5) floored/ceiled, plus pad
    x0, y0 = int(cols[0]) - 1 - pad, int(rows[0]) - 1 - pad
    x1, y1 = int(cols[-1]) + 2 + pad, int(rows[-1]) + 2 + pad  # exclusive
    h, w = mask.shape
    out_g = np.full((y1 - y0, x1 - x0), bg, grey.dtype)
    out_m = np.zeros((y1 - y0, x1 - x0), bool)
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
    out_m[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = mask[sy0:sy1, sx0:sx1]
    inner = out_g[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    inner[...] = grey[sy0:sy1, sx0:sx1]
    out_g[~out_m] = bg
    mat = np.array([[1.0, 0.0, -float(x0)], [0.0, 1.0, -float(y0)]])
    return out_g, out_m, mat


def orient(
    grey: np.ndarray,
    mask: np.ndarray,
    *,
    background: int | None = None,
    smooth: float = 2.5,
    margin: float = 1.0,
    rotate: bool = True,
) -> OrientResult:
    """Long axis vertical, then short arm up (:func:`orient_vertical`, centromere, flip).

    ``rotate=False`` skips the rotation for an image that is vertical by construction
    (medial-axis straightening): no second resampling, only :func:`crop_to_mask`.

    Examples
    --------
    >>> m = np.zeros((16, 50), bool); m[5:11, 4:46] = True; m[5:7, 12:14] = False
    >>> m[9:11, 12:14] = False
    >>> r = orient(np.where(m, 60, 220).astype(np.uint8), m)
    >>> r.image.shape[0] > r.image.shape[1], r.centromere[1] < r.image.shape[0] / 2
    (True, True)
    """
    if rotate or not np.asarray(mask).any():
        g, m, mat = orient_vertical(grey, mask, background=background)
    else:
        g, m, mat = crop_to_mask(grey, mask, background=background)
    cy = estimate_centromere(m, smooth=smooth, margin=margin)
    g, m, cy, flipped = short_arm_up(g, m, cy)
    mat = np.asarray(mat, np.float64).copy()
    if flipped:
        h = m.shape[0]
        mat = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, h - 1.0]]) @ np.vstack([mat, [0, 0, 1]])
    if np.isfinite(cy) and m.any():
        row = m[int(np.clip(round(cy), 0, m.shape[0] - 1))]
        cols = np.flatnonzero(row)
        cx = float(cols.mean()) if cols.size else float(np.nonzero(m)[1].mean())
    else:
        cx = float("nan")
    return OrientResult(image=g, mask=m, centromere=(cx, float(cy)), flipped=flipped, matrix=mat)
