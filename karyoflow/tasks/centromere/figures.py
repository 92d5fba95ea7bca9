"""Figure: chromosome crops with the true and the predicted centromere as crosses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_centromere_predictions"]


def plot_centromere_predictions(
    images: np.ndarray,
    pred: np.ndarray,
    path: str | Path,
    *,
    true: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 12,
    title: str = "",
) -> Path:
    """A grid of crops, predicted centromere as a red ``x``, true one as a green ``+``.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` grey crops.
    pred : numpy.ndarray
        ``(N, 2)`` predicted ``(x, y)`` pixel-centre coordinates.
    path : str or Path
        PNG to write (deterministic bytes for the same inputs).
    true : numpy.ndarray, optional
        ``(N, 2)`` true points (NaN rows are not drawn).
    titles : sequence of str, optional
        One short caption per crop (e.g. class and error).
    columns : int, default 12
    title : str, optional

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os
    >>> imgs = np.full((2, 24, 12), 230, np.uint8)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = plot_centromere_predictions(imgs, np.array([[5, 8], [6, 12]]), f"{tmp}/c.png",
    ...                                     true=np.array([[5, 9], [6, 11]]))
    ...     os.path.getsize(p) > 0
    True
    """
    from matplotlib.figure import Figure

    from karyoflow.evaluate.plots import save_figure

    n = len(images)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    h, w = images.shape[1:3] if n else (2, 1)
    cell_w = 1.1
    cell_h = cell_w * h / w * 0.55 + 0.3
    fig = Figure(figsize=(cols * cell_w * 0.6 + 0.4, rows * cell_h + 0.6))
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        if true is not None and np.isfinite(true[i]).all():
            ax.plot(true[i][0], true[i][1], "+", color="#00c000", ms=9, mew=1.8)
        ax.plot(pred[i][0], pred[i][1], "x", color="#ff2020", ms=7, mew=1.8)
        if titles is not None:
            ax.set_title(titles[i], fontsize=6, pad=2)
    head = (
        title
        + ("  " if title else "")
        + "red x: predicted"
        + (", green +: true" if true is not None else "")
    )
    fig.suptitle(head, fontsize=8)
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=1 - 0.5 / fig.get_figheight(),
        wspace=0.1,
        hspace=0.35,
    )
    return save_figure(fig, path)
