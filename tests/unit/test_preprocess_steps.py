"""Single preprocessing steps on crafted arrays."""

from __future__ import annotations

import numpy as np
import pytest

from karyoflow.preprocess.augment import DEFAULT_AUGMENT, augment
from karyoflow.preprocess.intensity import (
    clahe,
    crop_box,
    denoise_nlm,
    normalise_polarity,
    to_grey,
)
from karyoflow.preprocess.resize import map_points, pad_resize

NO_RANDOM = {
    "rotation": 0.0,
    "hflip": 0.0,
    "vflip": 0.0,
    "scale": [1.0, 1.0],
    "translate": 0.0,
    "blur_prob": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
}


def chromosome(h: int = 60, w: int = 40, bg: int = 225, fg: int = 70) -> np.ndarray:
    img = np.full((h, w), bg, np.uint8)
    img[10 : h - 10, w // 2 - 5 : w // 2 + 5] = fg
    img[h // 3, w // 2 - 5 : w // 2 + 5] = bg - 40  # a pale band
    return img


# --------------------------------------------------------------------------- crop_box


def test_crop_box_inside_image() -> None:
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    crop, inner = crop_box(img, (3, 2, 6, 5), 2)
    assert crop.shape == (7, 7)
    assert inner == (2, 2, 5, 5)
    np.testing.assert_array_equal(crop, img[0:7, 1:8])


@pytest.mark.parametrize("box", [(0, 0, 4, 3), (7, 8, 10, 10), (-2, 3, 2, 6)])
def test_crop_box_at_edges_pads_and_keeps_box_centred(box: tuple[int, int, int, int]) -> None:
    img = np.full((10, 10), 200, np.uint8)
    img[3:6, 3:6] = 10
    x0, y0, x1, y1 = box
    crop, inner = crop_box(img, box, 3)
    assert crop.shape == (y1 - y0 + 6, x1 - x0 + 6)
    assert inner == (3, 3, 3 + x1 - x0, 3 + y1 - y0)
    # the box content is where inner_box says (clip the part inside the image)
    cx0, cy0 = max(x0, 0), max(y0, 0)
    np.testing.assert_array_equal(
        crop[3 + cy0 - y0 : 3 + y1 - y0, 3 + cx0 - x0 : 3 + x1 - x0], img[cy0:y1, cx0:x1]
    )
    # padding uses the background level, not black
    assert crop.min() >= 10 and (crop == 200).any()
    assert (crop[-1, -1] if x1 >= 10 else crop[0, 0]) == 200


def test_crop_box_colour_and_fill() -> None:
    img = np.zeros((5, 5, 3), np.uint8)
    crop, _ = crop_box(img, (0, 0, 5, 5), 1, fill=(1, 2, 3))
    assert crop.shape == (7, 7, 3)
    assert crop[0, 0].tolist() == [1, 2, 3]


def test_crop_box_rejects_empty_box() -> None:
    with pytest.raises(ValueError, match="empty box"):
        crop_box(np.zeros((5, 5), np.uint8), (3, 3, 3, 4), 1)


# --------------------------------------------------------------------------- grey


def test_to_grey_variants() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    assert to_grey(rgb).dtype == np.uint8 and int(to_grey(rgb)[0, 0]) == 150
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent -> white
    assert to_grey(rgba).tolist() == [[255, 255], [255, 255]]
    deep = np.full((20, 20), 1000, np.uint16)
    deep[5:15, 5:15] = 3000
    deep[0, 0] = 65535  # a hot pixel must not squash the range
    g = to_grey(deep)
    assert g.dtype == np.uint8 and g[10, 10] == 255 and g[1, 1] == 0


# --------------------------------------------------------------------------- polarity


def test_polarity_auto_detects_fluorescence() -> None:
    light = chromosome()
    dark = 255 - light
    out, inverted = normalise_polarity(dark)
    assert inverted
    np.testing.assert_array_equal(out, light)
    out, inverted = normalise_polarity(light)
    assert not inverted
    np.testing.assert_array_equal(out, light)


def test_polarity_auto_with_large_chromosome() -> None:
    # The chromosome covers most of the crop: the border still decides.
    img = np.full((30, 30), 240, np.uint8)
    img[2:28, 2:28] = 60
    assert not normalise_polarity(img)[1]
    assert normalise_polarity(255 - img)[1]


def test_polarity_forced_modes() -> None:
    img = chromosome()
    assert normalise_polarity(img, mode="light_on_dark")[1]
    assert not normalise_polarity(255 - img, mode="dark_on_light")[1]
    with pytest.raises(ValueError):
        normalise_polarity(img, mode="sideways")


# --------------------------------------------------------------------------- denoise/CLAHE


def test_nlm_reduces_noise() -> None:
    clean = chromosome(80, 60)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    out = denoise_nlm(noisy, h=12)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    err_before = np.abs(noisy.astype(float) - clean).mean()
    err_after = np.abs(out.astype(float) - clean).mean()
    assert err_after < 0.7 * err_before
    background = (slice(0, 8), slice(0, 60))
    assert out[background].std() < 0.6 * noisy[background].std()


def test_nlm_needs_odd_windows() -> None:
    with pytest.raises(ValueError):
        denoise_nlm(chromosome(), search=10)


def test_clahe_keeps_dtype_and_shape() -> None:
    img = (chromosome(50, 30) // 2 + 60).astype(np.uint8)
    out = clahe(img, clip_limit=3.0, tile_grid=2)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.ptp(out) >= np.ptp(img)
    np.testing.assert_array_equal(out, clahe(img, clip_limit=3.0, tile_grid=2))


# --------------------------------------------------------------------------- resize


@pytest.mark.parametrize("shape", [(120, 30), (30, 120), (48, 24), (20, 10)])
def test_pad_resize_keeps_aspect_and_maps_points(shape: tuple[int, int]) -> None:
    h, w = shape
    img = np.full(shape, 0, np.uint8)
    out, (sx, sy), (ox, oy) = pad_resize(img, (96, 48), background=255)
    assert out.shape == (96, 48)
    content = np.argwhere(out == 0)
    ch = np.ptp(content[:, 0]) + 1
    cw = np.ptp(content[:, 1]) + 1
    assert abs(ch / cw - h / w) / (h / w) < 0.1
    assert content[:, 0].min() == oy and content[:, 1].min() == ox
    # centred
    assert abs((96 - ch) - 2 * oy) <= 1 and abs((48 - cw) - 2 * ox) <= 1
    # the image corners map onto the content's corners
    corners = map_points(np.array([[-0.5, -0.5], [w - 0.5, h - 0.5]]), (sx, sy), (ox, oy))
    np.testing.assert_allclose(corners, [[ox - 0.5, oy - 0.5], [ox + cw - 0.5, oy + ch - 0.5]])


def test_pad_resize_maps_a_marked_pixel() -> None:
    img = np.full((40, 20), 255, np.uint8)
    img[9:12, 4:7] = 0  # centre (5, 10)
    out, scale, offset = pad_resize(img, (96, 48), background=255)
    x, y = map_points(np.array([[5.0, 10.0]]), scale, offset)[0]
    assert out[round(y), round(x)] < 50


# --------------------------------------------------------------------------- augment


def test_augment_is_deterministic() -> None:
    img = chromosome(96, 48)
    a = augment(img, np.random.default_rng(7), DEFAULT_AUGMENT, background=225, point=(20, 30))
    b = augment(img, np.random.default_rng(7), DEFAULT_AUGMENT, background=225, point=(20, 30))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    c = augment(img, np.random.default_rng(8), DEFAULT_AUGMENT, background=225, point=(20, 30))
    assert not np.array_equal(a[0], c[0])


def test_augment_identity_when_disabled() -> None:
    img = chromosome(96, 48)
    out, pt = augment(img, np.random.default_rng(0), NO_RANDOM, background=225, point=(3, 4))
    np.testing.assert_array_equal(out, img)
    assert pt == (3.0, 4.0)


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [({"hflip": 1.0}, (47 - 10, 20)), ({"vflip": 1.0}, (10, 95 - 20))],
)
def test_augment_flips_move_the_point(knobs: dict, expected: tuple[int, int]) -> None:
    img = np.full((96, 48), 255, np.uint8)
    img[19:22, 9:12] = 0
    out, pt = augment(
        img, np.random.default_rng(0), {**NO_RANDOM, **knobs}, background=255, point=(10, 20)
    )
    assert pt == pytest.approx(expected)
    assert out[expected[1], expected[0]] == 0


def test_augment_rotation_moves_point_with_pixels() -> None:
    img = np.full((96, 48), 255, np.uint8)
    img[29:32, 34:37] = 0  # centre (35, 30)
    params = {**NO_RANDOM, "rotation": 30.0, "scale": [0.8, 1.2], "translate": 0.1}
    for seed in range(5):
        out, (x, y) = augment(
            img, np.random.default_rng(seed), params, background=255, point=(35, 30)
        )
        assert out[round(y), round(x)] < 128


def test_augment_blur_and_jitter_keep_shape() -> None:
    img = chromosome(96, 48)
    params = {**NO_RANDOM, "blur_prob": 1.0, "brightness": 0.2, "contrast": 0.3}
    out, pt = augment(img, np.random.default_rng(3), params, background=225)
    assert out.shape == img.shape and out.dtype == np.uint8 and pt is None
    assert not np.array_equal(out, img)


def test_augment_nan_point_stays_nan() -> None:
    _, pt = augment(
        chromosome(), np.random.default_rng(0), {}, background=225, point=(np.nan, np.nan)
    )
    assert np.isnan(pt).all()


def test_augment_unknown_parameter() -> None:
    with pytest.raises(ValueError, match="shear"):
        augment(chromosome(), np.random.default_rng(0), {"shear": 3}, background=225)


def test_fill_holes_matches_scipy_on_random_masks():
    from scipy import ndimage as ndi

    from karyoflow.preprocess.mask import fill_holes

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (3, 7), (40, 30), (64, 64)]:
        for density in (0.3, 0.6, 0.8):
            m = rng.random(shape) < density
            assert np.array_equal(fill_holes(m), ndi.binary_fill_holes(m))
