"""Karyogram layout: ISCN rows, one scale for all, flags."""

from __future__ import annotations

import numpy as np

from karyoflow.karyogram import ISCN_ROWS, KaryogramItem, render_karyogram
from karyoflow.labels import LABELS


def _bar(length: int, value: int) -> np.ndarray:
    img = np.full((length + 4, 10), 255, np.uint8)
    img[2:-2, 2:8] = value
    return img


def _rows_with_run(grey: np.ndarray, value: int, run: int = 4) -> np.ndarray:
    """Rows holding ``run`` consecutive pixels of exactly ``value`` (not anti-aliased text)."""
    hit = (grey == value).astype(int)
    windows = np.lib.stride_tricks.sliding_window_view(hit, run, axis=1).sum(-1)
    return np.flatnonzero((windows == run).any(axis=1))


def test_rows_cover_every_label_once():
    flat = [lab for row in ISCN_ROWS for lab in row]
    assert sorted(flat) == sorted(LABELS) and len(flat) == len(set(flat)) == 24


def test_chromosomes_land_in_their_rows_at_one_scale():
    # chromosome 1 long and dark (value 10), Y short with its own grey (value 77)
    items = [KaryogramItem(_bar(80, 10), "1", 0.99), KaryogramItem(_bar(20, 77), "Y", 0.9)]
    out = render_karyogram(items, title=None, margin=10)
    grey = out[..., 0]
    rows_1 = _rows_with_run(grey, 10)
    rows_y = _rows_with_run(grey, 77)
    assert rows_1.size and rows_y.size
    assert rows_1.max() < rows_y.min()  # row 1-3 above row 21-22,Y
    # one zoom for every chromosome: their heights keep the 80:20 ratio
    assert abs(rows_1.size / rows_y.size - 4.0) < 0.3


def test_flags_and_unknown_labels_are_visible():
    items = [KaryogramItem(_bar(40, 10), "7", 0.4, flagged=True), KaryogramItem(_bar(40, 50), "??")]
    out = render_karyogram(items, title="47,XY,+7")
    red = (out[..., 0] > 150) & (out[..., 1] < 80) & (out[..., 2] < 80)
    assert red.any()  # the flagged frame and the '?' row label
    assert _rows_with_run(out[..., 0], 50).size  # the unknown chromosome is shown, not dropped


def test_empty_cell_still_renders():
    out = render_karyogram([], title="0 chromosomes")
    assert out.ndim == 3 and out.shape[0] > 100
