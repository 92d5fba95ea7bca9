"""Aspect-preserving resize onto a fixed canvas, with the transform for points.

Points use OpenCV's pixel-centre convention (pixel ``i`` covers ``[i - 0.5, i + 0.5]``),
so a point ``(x, y)`` maps to ``((x + 0.5) * sx - 0.5 + ox, (y + 0.5) * sy - 0.5 + oy)``
(:func:`map_points`).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["map_points", "pad_resize"]


def pad_resize(
    grey: np.ndarray, size: tuple[int, int], *, background: int
) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Fit ``grey`` inside ``size`` keeping its aspect ratio, centred and padded.

    Parameters
    ----------
    grey : numpy.ndarray
        ``(h, w)`` image.
    size : tuple of int
        Output ``(height, width)``.
    background : int
        Padding value.

    Returns
    -------
    out : numpy.ndarray
        ``(height, width)`` image, same dtype.
    scale : tuple of float
        ``(sx, sy)``: the new over the old width and height. Both equal the fit scale up
        to the rounding of the resized size to whole pixels (< 0.5 px at the far edge).
    offset : tuple of int
        ``(ox, oy)``: where the resized image's top-left pixel lands in ``out``.

    Examples
    --------
    >>> img = np.zeros((10, 20), np.uint8)
    >>> out, scale, offset = pad_resize(img, (8, 8), background=255)
    >>> out.shape, scale, offset
    ((8, 8), (0.4, 0.4), (0, 2))
    >>> out[:2, 0].tolist(), out[2:6, 0].tolist()
    ([255, 255], [0, 0, 0, 0])
    """
    height, width = (int(v) for v in size)
    h, w = grey.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"empty image {grey.shape}")
    s = min(height / h, width / w)
    nw = min(width, max(1, round(w * s)))
    nh = min(height, max(1, round(h * s)))
    if (nw, nh) == (w, h):
        small = grey
    else:
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        small = cv2.resize(grey, (nw, nh), interpolation=interp)
    ox, oy = (width - nw) // 2, (height - nh) // 2
    out = np.full((height, width, *grey.shape[2:]), background, dtype=grey.dtype)
    out[oy : oy + nh, ox : ox + nw] = small
    return out, (nw / w, nh / h), (ox, oy)


def map_points(
    points: np.ndarray, scale: tuple[float, float], offset: tuple[float, float]
) -> np.ndarray:
    """Map ``(N, 2)`` ``(x, y)`` points through :func:`pad_resize`'s transform.

    NaN stays NaN.

    Examples
    --------
    >>> map_points(np.array([[9.5, 4.5]]), (0.4, 0.4), (0, 2)).tolist()
    [[3.5, 3.5]]
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scale, dtype=np.float64)
    off = np.asarray(offset, dtype=np.float64)
    return (pts + 0.5) * sc - 0.5 + off
