"""Per-chromosome features that the fixed-size images lose.

Every crop is fitted to one model input size, so a chromosome 1 and a chromosome 21
fill the same canvas. Their *relative* size within the cell (length and area divided
by the cell's median) is among the strongest cues a cytogeneticist uses, and it does
not depend on the microscope's magnification. The preprocessing chain records
``length_px`` and ``area_px`` for every image; :func:`relative_size_features` turns them
into model inputs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIZE_FEATURES", "relative_size_features"]

#: Names of the columns returned by :func:`relative_size_features`.
SIZE_FEATURES: tuple[str, ...] = ("log_relative_length", "log_relative_area")


def relative_size_features(
    length_px: np.ndarray,
    area_px: np.ndarray,
    cell_ids: np.ndarray,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Log length and log area relative to the median chromosome of the same cell.

    Parameters
    ----------
    length_px, area_px : numpy.ndarray
        ``(N,)`` sizes in source pixels (NaN or <= 0 where unknown).
    cell_ids : numpy.ndarray
        ``(N,)`` cell of each row.
    reference : numpy.ndarray of bool, optional
        Rows that define each cell's median (e.g. the originals, not the augmented
        copies, which repeat them); default all rows.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float32: ``log(length / median length)`` and
        ``log(area / median area)`` of the cell; 0 where a size is unknown.

    Examples
    --------
    >>> f = relative_size_features(np.array([10.0, 20, 40, 5]), np.array([50.0, 100, 200, 25]),
    ...                            np.array(["a", "a", "a", "b"]))
    >>> np.round(np.exp(f[:, 0]), 2).tolist(), float(f[3, 1])
    ([0.5, 1.0, 2.0, 1.0], 0.0)
    """
    length = np.asarray(length_px, np.float64).reshape(-1)
    area = np.asarray(area_px, np.float64).reshape(-1)
    cells = np.asarray(cell_ids).astype(str).reshape(-1)
    if not length.shape == area.shape == cells.shape:
        raise ValueError("length_px, area_px and cell_ids must have the same length")
    ref = np.ones(cells.shape, bool) if reference is None else np.asarray(reference, bool)
    out = np.zeros((cells.size, 2), np.float64)
    if cells.size == 0:
        return out.astype(np.float32)
    _, inverse = np.unique(cells, return_inverse=True)
    for col, values in enumerate((length, area)):
        good = np.isfinite(values) & (values > 0)
        for cell in np.unique(inverse):
            rows = inverse == cell
            basis = values[rows & ref & good]
            if basis.size == 0:
                continue
            med = float(np.median(basis))
            sel = rows & good
            out[sel, col] = np.log(values[sel] / med)
    return out.astype(np.float32)
