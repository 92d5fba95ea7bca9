"""Unit tests of preprocess.mask / straighten / orient on edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from karyoflow.preprocess.mask import apply_mask, chromosome_mask, select_component
from karyoflow.preprocess.orient import (
    estimate_centromere,
    orient,
    orient_vertical,
    short_arm_up,
    transform_points,
)
from karyoflow.preprocess.straighten import straighten
from karyoflow.synth.ideogram import load_ideogram
from karyoflow.synth.render import bend, od_to_grey, render_straight

METHODS = ["medial_axis", "projection", "none"]


def _grey(od: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(od_to_grey(np.pad(od, 6))), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def straight():
    c = render_straight(
        load_ideogram()["7"], length_px=90, width_px=14, rng=np.random.default_rng(0)
    )
    return c, _grey(c.image), np.pad(c.mask, 6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["empty", "pixel", "full"])
def test_degenerate_inputs(method: str, kind: str) -> None:
    g = np.full((20, 15), 220, np.uint8)
    m = np.zeros((20, 15), bool)
    if kind == "pixel":
        m[10, 7] = True
    elif kind == "full":
        m[:] = True
    r = straighten(g, m, method=method)
    assert r.image.dtype == np.uint8 and r.mask.dtype == bool
    if kind != "full":
        assert not r.applied and r.reason
    o = orient(r.image, r.mask)
    assert o.image.dtype == np.uint8
    _, _, mat = orient_vertical(g, m)
    assert mat.shape == (2, 3)


def test_chromosome_mask_empty_and_full() -> None:
    assert not chromosome_mask(np.full((10, 10), 230, np.uint8)).any()
    assert not chromosome_mask(np.zeros((0, 0), np.uint8)).any()
    assert not select_component(np.zeros((5, 5), bool), (0, 0, 5, 5)).any()
    assert apply_mask(np.zeros((3, 3), np.uint8), np.ones((3, 3), bool)).sum() == 0


def test_straight_input_stays_unchanged(straight) -> None:
    _, g, m = straight
    r = straighten(g, m, method="medial_axis")
    assert r.applied
    rows = np.flatnonzero(r.mask.any(axis=1))
    assert abs((rows[-1] - rows[0] + 1) - (np.ptp(np.flatnonzero(m.any(axis=1))) + 1)) <= 3
    assert abs(int(r.mask.sum()) / int(m.sum()) - 1) < 0.06
    # rows follow the original rows: same band profile
    a = np.where(m, g, 0).sum(1)[m.any(1)] / m.sum(1)[m.any(1)]
    b = np.where(r.mask, r.image, 0).sum(1)[rows] / r.mask.sum(1)[rows]
    n = 64
    a = np.interp(np.linspace(0, a.size - 1, n), np.arange(a.size), a)
    b = np.interp(np.linspace(0, b.size - 1, n), np.arange(b.size), b)
    assert np.corrcoef(a, b)[0, 1] > 0.95
    p = straighten(g, m, method="projection")
    assert not p.applied and "fill ratio" in p.reason


def test_map_points_consistency(straight) -> None:
    c, _, _ = straight
    b = bend(c, 1.0, profile="arc")
    g, m = _grey(b.image), np.pad(b.mask, 6)
    axis = b.axis + 6
    r = straighten(g, m, method="medial_axis")
    mapped = r.map_points(axis)
    # the centre line maps to the centre column (away from the tips, where the estimated
    # line can veer by a few pixels), monotonically along the rows
    assert np.abs(mapped[15:-15, 0] - np.median(mapped[:, 0])).max() < 1.5
    assert np.abs(mapped[:, 0] - np.median(mapped[:, 0])).max() < 6
    d = np.diff(mapped[:, 1])
    assert (d > 0).all() or (d < 0).all()
    assert abs(abs(mapped[-1, 1] - mapped[0, 1]) - b.length_px) < 3
    # mapped points land inside the straightened mask
    xi, yi = np.rint(mapped[5:-5]).astype(int).T
    assert r.mask[yi, xi].all()
    _, om, mat = orient_vertical(g, m)
    inside = np.rint(transform_points(mat, axis[5:-5])).astype(int)
    assert om[inside[:, 1], inside[:, 0]].all()


def test_short_arm_up_flips() -> None:
    m = np.zeros((30, 8), bool)
    m[2:28, 2:6] = True
    g = np.arange(30 * 8, dtype=np.uint8).reshape(30, 8)
    g2, _, cy, flipped = short_arm_up(g, m, 22.0)
    assert flipped and cy == 7.0 and (g2 == g[::-1]).all()
    assert short_arm_up(g, m, 8.0)[3] is False


def test_orient_puts_constriction_up() -> None:
    m = np.zeros((60, 16), bool)
    m[3:57, 4:12] = True
    m[44:47, 4:6] = m[44:47, 10:12] = False  # constriction low
    assert abs(estimate_centromere(m) - 45) <= 1
    r = orient(np.where(m, 60, 220).astype(np.uint8), m)
    assert r.flipped and r.centromere[1] < r.image.shape[0] / 2
    # the matrix carries the constriction to the reported centromere
    assert abs(transform_points(r.matrix, np.array([[8.0, 45.0]]))[0, 1] - r.centromere[1]) <= 1.5


@pytest.mark.parametrize("method", METHODS)
def test_determinism(straight, method: str) -> None:
    c, _, _ = straight
    b = bend(c, 0.9, profile="s", rng=np.random.default_rng(3))
    g = _grey(b.image)
    m1, m2 = chromosome_mask(g), chromosome_mask(g.copy())
    assert (m1 == m2).all()
    r1, r2 = straighten(g, m1, method=method), straighten(g, m2, method=method)
    assert (r1.image == r2.image).all() and (r1.mask == r2.mask).all()
    assert r1.reason == r2.reason


def test_crop_to_mask_is_the_identity_warp():
    from karyoflow.preprocess.orient import crop_to_mask, warp_to_box

    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(3, 40, 2)
        m = rng.random((h, w)) < 0.3
        if not m.any():
            continue
        g = rng.integers(0, 255, (h, w)).astype(np.uint8)
        got = crop_to_mask(g, m, pad=2, background=200)
        want = warp_to_box(g, m, np.eye(2, 3), pad=2, background=200)
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
