"""Data handling for the learned detector: metaphases in, training crops and boxes out.

* :func:`prepare_image` - grey metaphase to the network's input scale (dark on light);
* :func:`random_crop` - one augmented training crop and its boxes (rot90, flips, scale,
  contrast), deterministic for a given :class:`numpy.random.Generator`;
* :func:`training_batch` - a batch of such crops and their network targets;
* :func:`pad_to_multiple` - pad an image so both sides divide by the network's step;
* :func:`predict_map` - the network's output map of one image, optionally averaged over
  flipped / transposed views (test-time augmentation);
* :func:`detect_learned` - boxes of one metaphase from a trained model (optionally at
  several scales, fused);
* :func:`needs_inversion` - whether a metaphase is light-on-dark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from karyoflow.engine.views import DIHEDRAL_VIEWS, from_view, to_view
from karyoflow.tasks.detection.centernet import decode_boxes, encode_boxes
from karyoflow.tasks.detection.fusion import fuse_boxes

__all__ = [
    "PASS_FLOOR",
    "clip_boxes",
    "detect_learned",
    "needs_inversion",
    "pad_to_multiple",
    "predict_map",
    "prepare_image",
    "random_crop",
    "training_batch",
]


#: Lowest centre probability decoded from each pass of a multi-scale detection
#: (:func:`detect_learned` with several ``scales``) before the passes are fused.
PASS_FLOOR = 0.01


def needs_inversion(grey: np.ndarray, polarity: str = "auto") -> bool:
    """Whether a metaphase is light-on-dark and must be inverted for the network.

    ``polarity`` is what the image looks like (``"dark_on_light"``, ``"light_on_dark"``)
    or ``"auto"``: decided from the image's border against its extremes
    (:func:`karyoflow.preprocess.intensity.normalise_polarity`).

    Examples
    --------
    >>> fluo = np.zeros((9, 9), np.uint8); fluo[3:6, 3:6] = 200
    >>> needs_inversion(fluo), needs_inversion(255 - fluo), needs_inversion(fluo, "dark_on_light")
    (True, False, False)
    """
    if polarity != "auto":
        return polarity == "light_on_dark"
    from karyoflow.preprocess.intensity import normalise_polarity

    return bool(normalise_polarity(grey, mode="auto")[1])


def prepare_image(grey: np.ndarray, scale: float, *, invert: bool = False) -> np.ndarray:
    """Resize a grey metaphase by ``scale`` (area interpolation), optionally inverted.

    Parameters
    ----------
    grey : numpy.ndarray
        ``(H, W)`` uint8.
    scale : float
        Output size / input size.
    invert : bool, default False
        Invert (for light-on-dark images: the network expects dark chromosomes).

    Returns
    -------
    numpy.ndarray
        ``uint8`` image of about ``scale`` times the size.

    Examples
    --------
    >>> prepare_image(np.zeros((100, 60), np.uint8), 0.5).shape
    (50, 30)
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(
            f"prepare_image: expected a 2-D uint8 image, got {grey.shape} {grey.dtype}"
        )
    if scale <= 0:
        raise ValueError(f"prepare_image: scale must be positive, got {scale}")
    h, w = grey.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if scale != 1 else grey.copy()
    return 255 - out if invert else out


def pad_to_multiple(image: np.ndarray, step: int, fill: int = 255) -> np.ndarray:
    """Pad ``image`` at the bottom/right so that both sides are multiples of ``step``.

    Examples
    --------
    >>> pad_to_multiple(np.zeros((10, 17), np.uint8), 16).shape
    (16, 32)
    """
    h, w = image.shape[:2]
    ph, pw = (-h) % step, (-w) % step
    if ph == 0 and pw == 0:
        return image
    return cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=fill)


def clip_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Clip ``(N, 4)`` boxes to an image of ``shape`` ``(H, W)``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, shape[1])
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, shape[0])
    return b


def _rot90_boxes(boxes: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray:
    """Boxes after ``np.rot90(image, k)`` of an image of ``shape`` (counter-clockwise)."""
    b = boxes.copy()
    h, w = shape
    for _ in range(k % 4):
        x0, y0, x1, y1 = b.T
        b = np.stack([y0, w - x1, y1, w - x0], axis=1)
        h, w = w, h
    return b


def random_crop(
    rng: np.random.Generator,
    image: np.ndarray,
    boxes: np.ndarray,
    size: int,
    *,
    scale_range: tuple[float, float] = (0.8, 1.25),
    contrast: float = 0.2,
    brightness: float = 0.1,
    fill: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented square training crop of a prepared metaphase and its boxes.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice (same state -> same crop).
    image : numpy.ndarray
        ``(H, W)`` uint8 prepared image (:func:`prepare_image`).
    boxes : numpy.ndarray
        ``(N, 4)`` boxes in ``image`` pixels.
    size : int
        Side of the crop.
    scale_range : tuple of float, default (0.8, 1.25)
        Random zoom (log-uniform) before cropping.
    contrast, brightness : float
        Random contrast factor ``1 +- contrast`` about the background, and shift
        ``+- brightness * 255``.
    fill : int, default 255
        Grey value outside the image.

    Returns
    -------
    crop : numpy.ndarray
        ``(size, size)`` uint8.
    boxes : numpy.ndarray
        The boxes whose centre lies in the crop, clipped to it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = np.full((64, 64), 255, np.uint8); img[22:42, 27:37] = 0
    >>> crop, b = random_crop(rng, img, np.array([[27.0, 22.0, 37.0, 42.0]]), 64)
    >>> crop.shape, len(b)
    ((64, 64), 1)
    """
    lo, hi = scale_range
    z = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    h, w = image.shape
    # Crop window in source pixels, anywhere that overlaps the image.
    win = size / z
    x0 = rng.uniform(-win * 0.25, max(w - win * 0.75, -win * 0.25 + 1))
    y0 = rng.uniform(-win * 0.25, max(h - win * 0.75, -win * 0.25 + 1))
    m = np.array([[z, 0, -x0 * z], [0, z, -y0 * z]], np.float64)
    crop = cv2.warpAffine(
        image,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    b = (b - [x0, y0, x0, y0]) * z
    k = int(rng.integers(4))
    crop = np.rot90(crop, k)
    b = _rot90_boxes(b, k, (size, size))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        b = np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1)
    c = 1.0 + rng.uniform(-contrast, contrast)
    s = rng.uniform(-brightness, brightness) * 255
    crop = np.clip((crop.astype(np.float32) - 255) * c + 255 + s, 0, 255).astype(np.uint8)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    keep = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    return np.ascontiguousarray(crop), clip_boxes(b[keep], (size, size))


def training_batch(
    rng: np.random.Generator,
    images: list[np.ndarray],
    boxes: list[np.ndarray],
    batch_size: int,
    size: int,
    *,
    stride: int = 4,
    **augment: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random crops (:func:`random_crop`) and their targets (:func:`encode_boxes`).

    Returns
    -------
    x : numpy.ndarray
        ``(batch, size, size, 1)`` float32 raw grey values.
    y : numpy.ndarray
        ``(batch, size/stride, size/stride, 5)`` float32 targets.
    """
    x = np.empty((batch_size, size, size, 1), np.float32)
    y = np.empty((batch_size, size // stride, size // stride, 5), np.float32)
    for i in range(batch_size):
        j = int(rng.integers(len(images)))
        crop, b = random_crop(rng, images[j], boxes[j], size, **augment)
        x[i, ..., 0] = crop
        y[i] = encode_boxes(b, (size, size), stride=stride)
    return x, y


def predict_map(model: Any, image: np.ndarray, *, tta: int = 1) -> np.ndarray:
    """The detector's ``(h, w, 5)`` output map of one prepared image.

    With ``tta > 1`` the image is also seen flipped (``2``: left-right; ``4``: and
    up-down; ``8``: and transposed, i.e. all eight rotations/reflections); every view's
    map is brought back to the original frame (cells mirrored, x/y offsets mirrored as
    ``1 - offset``, width/height swapped for transposed views) and the maps are averaged:
    centre probabilities, offsets and log sizes.

    Parameters
    ----------
    model : keras.Model or callable
        ``(1, H, W, 1) float32 -> (1, H / stride, W / stride, 5)``.
    image : numpy.ndarray
        ``(H, W)`` network-scale image, both sides multiples of the network's step
        (:func:`pad_to_multiple`).
    tta : {1, 2, 4, 8}, default 1
        Number of views.

    Returns
    -------
    numpy.ndarray
        float64 map (:func:`karyoflow.tasks.detection.centernet.encode_boxes` layout).

    Examples
    --------
    A "network" that sees the identity of its input returns the same map for every view:

    >>> def net(x, training=False):  # a cell per 4x4 pixels: darkness; fixed offsets, sizes
    ...     x = x[0, ..., 0]
    ...     h, w = x.shape[0] // 4, x.shape[1] // 4
    ...     heat = 1 - x.reshape(h, 4, w, 4).mean(axis=(1, 3)) / 255
    ...     return np.stack([heat, heat * 0 + .5, heat * 0 + .5, heat * 0, heat * 0], -1)[None]
    >>> img = np.full((16, 32), 255, np.uint8); img[4:8, 20:24] = 0
    >>> m1, m8 = predict_map(net, img), predict_map(net, img, tta=8)
    >>> bool(np.allclose(m1, m8)), m8.shape
    (True, (4, 8, 5))
    """
    if int(tta) not in DIHEDRAL_VIEWS:
        raise ValueError(f"tta must be one of {sorted(DIHEDRAL_VIEWS)}, got {tta}")
    maps = []
    for view in DIHEDRAL_VIEWS[int(tta)]:
        batch = np.ascontiguousarray(to_view(image, view), np.float32)[None, ..., None]
        # A direct call, not predict(): every metaphase has its own size, and predict()
        # would trace a new graph for each one.
        pred = np.array(model(batch, training=False), np.float64)[0]
        fx, fy, tr = view
        if fx:  # offsets within a cell, in the view's frame, mirror too
            pred[..., 1] = 1.0 - pred[..., 1]
        if fy:
            pred[..., 2] = 1.0 - pred[..., 2]
        pred = from_view(pred, view)
        if tr:  # x and y, width and height trade places
            pred = pred[..., [0, 2, 1, 4, 3]]
        maps.append(pred)
    return maps[0] if len(maps) == 1 else np.mean(maps, axis=0)


def detect_learned(
    model: Any,
    image: np.ndarray,
    *,
    scale: float,
    threshold: float = 0.3,
    stride: int = 4,
    step: int = 16,
    invert: bool = False,
    tta: int = 1,
    scales: Sequence[float] = (1.0,),
    fusion_iou: float = 0.55,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of one grey metaphase from a trained detector.

    Parameters
    ----------
    model : keras.Model
        :func:`karyoflow.models.detector.centernet` (trained).
    image : numpy.ndarray
        ``(H, W)`` uint8 metaphase at its original size.
    scale : float
        The scale the model was trained at.
    threshold : float, default 0.3
        Smallest centre probability.
    stride, step : int
        Output stride and the size multiple of the network.
    invert : bool, default False
        Invert first (light-on-dark images).
    tta : {1, 2, 4, 8}, default 1
        Test-time views averaged (:func:`predict_map`): more views, fewer false
        detections, ``tta`` times the network time.
    scales : sequence of float, default (1.0,)
        Test-time scales, relative to ``scale``: the image is also seen enlarged (e.g.
        ``(1.0, 1.1, 1.2, 1.3)``), which separates the centres of close and crossing
        chromosomes, and the boxes of all passes are merged by weighted box fusion
        (:func:`karyoflow.tasks.detection.fusion.fuse_boxes`; a box found by one pass of four
        keeps a quarter of its score). Each pass costs about ``s**2`` times the network
        time of one.
    fusion_iou : float, default 0.55
        IoU at which boxes of different passes are fused. With several scales each
        pass is decoded down to :data:`PASS_FLOOR` (0.01) before the fusion and the
        fused boxes are then kept from ``threshold``.

    Returns
    -------
    boxes : numpy.ndarray
        ``(M, 4)`` in original pixels, clipped to the image.
    scores : numpy.ndarray
        ``(M,)``.
    """
    factors = [float(s) for s in scales]
    if not factors or min(factors) <= 0:
        raise ValueError(f"scales must be positive numbers, got {list(scales)}")
    passes_boxes, passes_scores = [], []
    for factor in factors:
        s = scale * factor
        small = pad_to_multiple(prepare_image(image, s, invert=invert), step)
        pred = predict_map(model, small, tta=tta)
        # several passes: decode each one down to a fixed floor, so that a fused score
        # does not depend on the threshold it is compared with
        floor = threshold if len(factors) == 1 else min(threshold, PASS_FLOOR)
        boxes, scores = decode_boxes(pred, stride=stride, threshold=floor)
        passes_boxes.append(clip_boxes(boxes / s, image.shape[:2]))
        passes_scores.append(scores)
    if len(factors) == 1:
        return passes_boxes[0], passes_scores[0]
    boxes, scores = fuse_boxes(passes_boxes, passes_scores, iou_threshold=fusion_iou)
    keep = scores >= threshold
    return boxes[keep], scores[keep]
