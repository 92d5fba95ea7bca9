"""Random augmentation of a preprocessed chromosome image (and of one point on it).

One affine warp (flips, rotation, scale and translation about the image centre), then
an optional Gaussian blur and a brightness/contrast change. Every random number comes
from the ``rng`` passed in, drawn in a fixed order whatever the parameters, so the result
is a deterministic function of the rng state and the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

__all__ = ["DEFAULT_AUGMENT", "augment", "augment_matrix"]

#: Default augmentation parameters.
#:
#: ``rotation``: maximum rotation in degrees (uniform in ``[-r, r]``);
#: ``hflip`` / ``vflip``: probabilities of a left-right / top-bottom flip (``vflip`` is 0
#: by default because orientation puts the short arm on top);
#: ``scale``: ``[min, max]`` zoom factor (uniform);
#: ``translate``: maximum shift as a fraction of width/height (uniform in ``[-t, t]``);
#: ``blur_prob``: probability of a Gaussian blur with an odd kernel drawn from
#: ``blur_kernel`` ``[min, max]`` and sigma from ``blur_sigma`` ``[min, max]``;
#: ``brightness``: maximum shift as a fraction of 255; ``contrast``: maximum relative
#: change of contrast about mid-grey (factor uniform in ``[1 - c, 1 + c]``).
DEFAULT_AUGMENT: dict[str, Any] = {
    "rotation": 10.0,
    "hflip": 0.5,
    "vflip": 0.0,
    "scale": [0.9, 1.1],
    "translate": 0.05,
    "blur_prob": 0.2,
    "blur_kernel": [5, 9],
    "blur_sigma": [0.1, 5.0],
    "brightness": 0.1,
    "contrast": 0.1,
}


def augment_matrix(
    shape: tuple[int, ...],
    *,
    angle: float = 0.0,
    scale: float = 1.0,
    hflip: bool = False,
    vflip: bool = False,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The 2 x 3 forward affine of :func:`augment` for an image of ``shape``.

    Flip, then rotate by ``angle`` degrees (counter-clockwise on screen) and scale, all
    about the pixel centre of the image, then shift by ``shift`` pixels.

    Examples
    --------
    >>> augment_matrix((5, 9), hflip=True) @ np.array([0.0, 2.0, 1.0])
    array([8., 2.])
    """
    h, w = shape[:2]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    flip = np.diag([-1.0 if hflip else 1.0, -1.0 if vflip else 1.0, 1.0])
    flip[0, 2] = 2 * cx if hflip else 0.0
    flip[1, 2] = 2 * cy if vflip else 0.0
    rot = np.vstack([cv2.getRotationMatrix2D((cx, cy), float(angle), float(scale)), [0, 0, 1]])
    m = rot @ flip
    m[0, 2] += shift[0]
    m[1, 2] += shift[1]
    return m[:2]


def _check(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(params) - set(DEFAULT_AUGMENT) - {"copies"}
    if unknown:
        raise ValueError(f"unknown augment parameter {sorted(unknown)[0]!r}")
    return {**DEFAULT_AUGMENT, **params}


def augment(
    image: np.ndarray,
    rng: np.random.Generator,
    params: Mapping[str, Any] | None = None,
    *,
    background: int,
    point: tuple[float, float] | None = None,
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Randomly flip, rotate, scale, shift, blur and re-contrast ``image``.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8`` ``(H, W)`` image; the output has the same shape.
    rng : numpy.random.Generator
        Source of all randomness (e.g.
        ``np.random.default_rng(stable_seed(seed, "augment", dataset, instance_id, k))``).
    params : mapping, optional
        Overrides of :data:`DEFAULT_AUGMENT` (a ``copies`` key is ignored).
    background : int
        Fill for pixels moved in from outside.
    point : tuple of float, optional
        ``(x, y)`` in pixel-centre coordinates, moved with the geometric transforms;
        NaN stays NaN.

    Returns
    -------
    image : numpy.ndarray
    point : tuple of float or None
        The transformed point (``None`` if none was given).

    Examples
    --------
    >>> img = np.full((20, 10), 255, np.uint8); img[2:5, 1:3] = 0
    >>> p = {"rotation": 0, "hflip": 1.0, "scale": [1, 1], "translate": 0,
    ...      "blur_prob": 0, "brightness": 0, "contrast": 0}
    >>> out, pt = augment(img, np.random.default_rng(0), p, background=255, point=(1.5, 3.0))
    >>> pt, bool((out[2:5, 7:9] == 0).all())
    ((7.5, 3.0), True)
    """
    p = _check(params or {})
    h, w = image.shape[:2]
    # Draw everything, always, in a fixed order.
    u = rng.random(12)
    angle = (2 * u[0] - 1) * float(p["rotation"])
    do_h = u[1] < float(p["hflip"])
    do_v = u[2] < float(p["vflip"])
    s_lo, s_hi = (float(v) for v in p["scale"])
    scale = s_lo + u[3] * (s_hi - s_lo)
    t = float(p["translate"])
    shift = ((2 * u[4] - 1) * t * w, (2 * u[5] - 1) * t * h)
    do_blur = u[6] < float(p["blur_prob"])
    k_lo, k_hi = (int(v) for v in p["blur_kernel"])
    kernels = [k for k in range(k_lo, k_hi + 1) if k % 2 == 1] or [max(1, k_lo | 1)]
    ksize = kernels[min(int(u[7] * len(kernels)), len(kernels) - 1)]
    g_lo, g_hi = (float(v) for v in p["blur_sigma"])
    sigma = g_lo + u[8] * (g_hi - g_lo)
    bright = (2 * u[9] - 1) * float(p["brightness"]) * 255.0
    contrast = 1.0 + (2 * u[10] - 1) * float(p["contrast"])

    m = augment_matrix(image.shape, angle=angle, scale=scale, hflip=do_h, vflip=do_v, shift=shift)
    identity = np.allclose(m, [[1, 0, 0], [0, 1, 0]])
    if identity:
        out = image.copy()
    elif not angle and scale == 1.0 and not any(shift):
        out = cv2.flip(image, {(True, False): 1, (False, True): 0, (True, True): -1}[do_h, do_v])
    else:
        out = cv2.warpAffine(
            image,
            m,
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=int(background),
        )
    if do_blur:
        out = cv2.GaussianBlur(out, (ksize, ksize), sigma)
    if bright or contrast != 1.0:
        lut = np.clip(np.rint((np.arange(256) - 127.5) * contrast + 127.5 + bright), 0, 255)
        out = cv2.LUT(out, lut.astype(np.uint8))
    new_point = None
    if point is not None:
        x, y = (float(v) for v in point)
        nx, ny = (m @ np.array([x, y, 1.0])).tolist()
        new_point = (round(nx, 6), round(ny, 6))
    return out, new_point
