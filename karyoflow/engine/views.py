"""Test-time views: predictions averaged over mirrored (and transposed) copies.

* Classification (:func:`crop_views`, :func:`average_over_views`, modes
  :data:`TTA_MODES`): a chromosome mirrored left-right is the same chromosome (the
  training augmentation ``hflip`` relies on it); upside down it is too, but a dataset
  whose crops are oriented consistently (p arm up, as in karyograms) may lose by it.
  Which views help is a property of the dataset: choose on the validation split
  (docs/training.md).
* Dense outputs (detection maps, segmentation maps): the eight rotations/reflections of
  an image (:data:`DIHEDRAL_VIEWS`), :func:`to_view` and its inverse :func:`from_view`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "DIHEDRAL_VIEWS",
    "TTA_MODES",
    "average_over_views",
    "crop_views",
    "from_view",
    "to_view",
]

#: Views per number of views, as ``(flip x, flip y, transpose)``: 1 the image, 2 and its
#: mirror, 4 all flips, 8 also transposed (every rotation by 90 degrees and reflection).
DIHEDRAL_VIEWS: dict[int, tuple[tuple[bool, bool, bool], ...]] = {
    1: ((False, False, False),),
    2: ((False, False, False), (True, False, False)),
    4: tuple((fx, fy, False) for fy in (False, True) for fx in (False, True)),
    8: tuple((fx, fy, tr) for tr in (False, True) for fy in (False, True) for fx in (False, True)),
}


def to_view(image: np.ndarray, view: tuple[bool, bool, bool], axes: tuple[int, int] = (0, 1)):
    """``image`` seen in ``view`` = (flip x, flip y, transpose): transposed first, then
    flipped; ``axes`` are its (y, x) axes.

    Examples
    --------
    >>> a = np.arange(6).reshape(2, 3)
    >>> to_view(a, (True, False, True)).tolist()
    [[3, 0], [4, 1], [5, 2]]
    >>> bool((from_view(to_view(a, (True, True, True)), (True, True, True)) == a).all())
    True
    """
    fx, fy, tr = view
    ay, ax = axes
    out = np.swapaxes(image, ay, ax) if tr else image
    out = np.flip(out, ay) if fy else out
    return np.flip(out, ax) if fx else out


def from_view(image: np.ndarray, view: tuple[bool, bool, bool], axes: tuple[int, int] = (0, 1)):
    """The inverse of :func:`to_view`: a map computed on the view, in the image's frame."""
    fx, fy, tr = view
    ay, ax = axes
    out = np.flip(image, ax) if fx else image
    out = np.flip(out, ay) if fy else out
    return np.swapaxes(out, ay, ax) if tr else out


#: Views per classification mode: the crop, its mirror image, all four flips
#: (:data:`DIHEDRAL_VIEWS` without transposition: crops are not square).
TTA_MODES: dict[str, tuple[tuple[bool, bool, bool], ...]] = {
    "none": DIHEDRAL_VIEWS[1],
    "hflip": DIHEDRAL_VIEWS[2],
    "flips": DIHEDRAL_VIEWS[4],
}


def crop_views(images: np.ndarray, mode: str = "none") -> list[np.ndarray]:
    """The test-time views of a stack of crops.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` or ``(N, H, W, C)`` crops.
    mode : {"none", "hflip", "flips"}
        ``hflip``: the crops and their left-right mirrors; ``flips``: also upside down
        and both.

    Returns
    -------
    list of numpy.ndarray
        One contiguous stack per view, the crops themselves first.

    Examples
    --------
    >>> x = np.arange(6).reshape(1, 2, 3)
    >>> [v[0].tolist() for v in crop_views(x, "hflip")]
    [[[0, 1, 2], [3, 4, 5]], [[2, 1, 0], [5, 4, 3]]]
    >>> len(crop_views(x, "flips")), len(crop_views(x))
    (4, 1)
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time view mode {mode!r}; use one of {sorted(TTA_MODES)}")
    arr = np.asarray(images)
    return [np.ascontiguousarray(to_view(arr, view, axes=(1, 2))) for view in TTA_MODES[mode]]


def average_over_views(
    predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, mode: str = "none"
) -> np.ndarray:
    """Mean of ``predict(view)`` over the views of ``mode`` (:func:`crop_views`).

    Examples
    --------
    >>> x = np.array([[[0, 1]]], float)  # one 1x2 crop, dark on the left
    >>> average_over_views(lambda v: v[:, 0, :1], x, "hflip").tolist()  # left pixel
    [[0.5]]
    """
    views = crop_views(images, mode)
    if len(views) == 1:
        return np.asarray(predict(views[0]))
    return np.mean([np.asarray(predict(v), np.float64) for v in views], axis=0).astype(np.float32)
