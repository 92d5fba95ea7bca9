"""Box encoding, loss and decoding for the learned detector (:mod:`karyoflow.models.detector`).

Pure functions on arrays: :func:`encode_boxes` turns the boxes of one image into the
5-channel training target of the network (a Gaussian peak per box centre on the
heat map, plus offset and log size at the centre cell), :func:`decode_boxes` turns a
predicted map back into scored boxes (local maxima of the heat map), and
:func:`centernet_loss` is the training loss (penalty-reduced focal loss on the heat
map, L1 on offset and size at the true centres).

Boxes are ``(x0, y0, x1, y1)`` in input pixels; the map has one cell per ``stride``
input pixels.

>>> t = encode_boxes([[8, 8, 24, 40]], (64, 64), stride=4)
>>> t.shape, float(t[6, 4, 0])
((16, 16, 5), 1.0)
>>> boxes, scores = decode_boxes(t, stride=4, threshold=0.5)
>>> boxes.round(1).tolist(), scores.tolist()
([[8.0, 8.0, 24.0, 40.0]], [1.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "centernet_loss",
    "decode_boxes",
    "encode_boxes",
    "gaussian_radius",
]


def gaussian_radius(width: float, height: float, min_overlap: float = 0.7) -> float:
    """Radius (in the units of ``width``/``height``) of the centre's Gaussian peak.

    The largest shift of a box's corners that keeps its IoU with the true box above
    ``min_overlap`` (the rule of CornerNet/CenterNet, the smallest of its three cases).

    Examples
    --------
    >>> round(gaussian_radius(10, 20), 2)
    3.68
    """
    h, w = float(height), float(width)
    a1, b1, c1 = 1.0, h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4.0, 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def encode_boxes(
    boxes: Any,
    shape: tuple[int, int],
    *,
    stride: int = 4,
    min_overlap: float = 0.7,
) -> np.ndarray:
    """Training target of one image.

    Parameters
    ----------
    boxes : array_like
        ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` in input pixels; boxes whose centre lies
        outside the image are ignored (they belong to a neighbouring crop).
    shape : tuple of int
        Input ``(H, W)``, multiples of ``stride``.
    stride : int, default 4
        Input pixels per map cell.
    min_overlap : float, default 0.7
        IoU that sets the width of each Gaussian (:func:`gaussian_radius`).

    Returns
    -------
    numpy.ndarray
        ``(H/stride, W/stride, 5)`` float32: heat map (1 exactly at each centre cell,
        Gaussian around it, the maximum where peaks meet), then ``dx, dy, log w, log h``
        (in cells) at the centre cells and 0 elsewhere.
    """
    h, w = int(shape[0]) // stride, int(shape[1]) // stride
    out = np.zeros((h, w, 5), np.float32)
    b = np.asarray(boxes, np.float64).reshape(-1, 4) / stride
    ys, xs = np.mgrid[0:h, 0:w]
    for x0, y0, x1, y1 in b:
        bw, bh = x1 - x0, y1 - y0
        if bw <= 0 or bh <= 0:
            continue
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ix, iy = int(np.floor(cx)), int(np.floor(cy))
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        sigma = max(gaussian_radius(bw, bh, min_overlap), 0.0) / 3 + 1e-3
        sigma = max(sigma, 0.5)
        g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
        np.maximum(out[..., 0], g.astype(np.float32), out=out[..., 0])
        out[iy, ix, 0] = 1.0
        out[iy, ix, 1:] = (cx - ix, cy - iy, np.log(bw), np.log(bh))
    return out


def decode_boxes(
    pred: np.ndarray,
    *,
    stride: int = 4,
    threshold: float = 0.3,
    max_boxes: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and scores from one predicted (or target) map.

    Every cell that is the maximum of its 3x3 neighbourhood and scores at least
    ``threshold`` gives one box (no box-overlap suppression: crossing chromosomes
    have overlapping boxes).

    Parameters
    ----------
    pred : numpy.ndarray
        ``(h, w, 5)`` map (:func:`encode_boxes` layout).
    stride : int, default 4
        Input pixels per cell.
    threshold : float, default 0.3
        Smallest centre probability of a detection.
    max_boxes : int, default 200
        Keep at most this many, best first.

    Returns
    -------
    boxes : numpy.ndarray
        ``(M, 4)`` float64 in input pixels, best score first.
    scores : numpy.ndarray
        ``(M,)`` centre probabilities.
    """
    p = np.asarray(pred, np.float64)
    heat = p[..., 0]
    padded = np.pad(heat, 1, constant_values=-np.inf)
    h, w = heat.shape
    neigh = np.max(
        np.stack([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]),
        axis=0,
    )
    iy, ix = np.nonzero((heat >= neigh) & (heat >= threshold))
    scores = heat[iy, ix]
    order = np.argsort(-scores, kind="stable")[:max_boxes]
    iy, ix, scores = iy[order], ix[order], scores[order]
    cx = (ix + p[iy, ix, 1]) * stride
    cy = (iy + p[iy, ix, 2]) * stride
    bw = np.exp(np.clip(p[iy, ix, 3], -5, 8)) * stride
    bh = np.exp(np.clip(p[iy, ix, 4], -5, 8)) * stride
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return boxes.reshape(-1, 4), scores


def centernet_loss(size_weight: float = 1.0, offset_weight: float = 1.0):
    """Keras loss for the 5-channel map: focal heat-map loss + L1 box terms.

    The heat-map term is CenterNet's penalty-reduced focal loss (alpha 2, beta 4),
    normalised by the number of centres in the batch; offset and log size are L1 at the
    centre cells only.

    Parameters
    ----------
    size_weight, offset_weight : float
        Weights of the log-size and offset terms.

    Returns
    -------
    callable
        ``loss(y_true, y_pred)`` for :meth:`keras.Model.compile`.
    """
    from keras import ops

    def loss(y_true, y_pred):
        t_heat, p_heat = y_true[..., 0], ops.clip(y_pred[..., 0], 1e-6, 1 - 1e-6)
        pos = ops.cast(ops.equal(t_heat, 1.0), "float32")
        neg = 1.0 - pos
        pos_loss = ops.log(p_heat) * ops.square(1 - p_heat) * pos
        neg_loss = ops.log(1 - p_heat) * ops.square(p_heat) * ops.power(1 - t_heat, 4) * neg
        n = ops.maximum(ops.sum(pos), 1.0)
        focal = -(ops.sum(pos_loss) + ops.sum(neg_loss)) / n
        l1 = ops.abs(y_true[..., 1:] - y_pred[..., 1:]) * ops.expand_dims(pos, -1)
        off = ops.sum(l1[..., :2]) / n
        size = ops.sum(l1[..., 2:]) / n
        return focal + offset_weight * off + size_weight * size

    loss.__name__ = "centernet_loss"
    return loss
