"""Mask coverage and connectivity on real single-chromosome crops (../shared/data).

Coverage = |mask & dark| / |dark|, where ``dark`` is the largest cluster (8-connected
after a 4-pixel dilation) of pixels at least 25 grey levels darker than the crop's
border median in the enhanced crop, less a 1-pixel rim: the blur rim outside the true
outline (on the synthetic test set, the ground-truth masks cover 0.87 of the un-eroded
``dark`` set but 0.99 of the eroded one).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from karyoflow.imageio import read_image
from karyoflow.preprocess.chain import resolve_params
from karyoflow.preprocess.intensity import clahe, crop_box, denoise_nlm, normalise_polarity
from karyoflow.preprocess.mask import apply_mask, chromosome_mask
from karyoflow.preprocess.straighten import straighten

pytestmark = pytest.mark.realdata


def _enhanced(path: Path) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    p = resolve_params({})
    grey = read_image(path, grey=True)
    crop, inner = crop_box(grey, (0, 0, grey.shape[1], grey.shape[0]), int(p["crop"]["margin"]))
    img, _ = normalise_polarity(crop, mode="auto")
    dn = p["denoise"]
    img = denoise_nlm(img, h=dn["h"], template=int(dn["template"]), search=int(dn["search"]))
    img = clahe(img, clip_limit=p["clahe"]["clip_limit"], tile_grid=int(p["clahe"]["tile_grid"]))
    return img, inner


def _coverage(img: np.ndarray, m: np.ndarray) -> float:
    border = np.concatenate(
        [img[:2].ravel(), img[-2:].ravel(), img[:, :2].ravel(), img[:, -2:].ravel()]
    )
    dark = img.astype(int) < float(np.median(border)) - 25
    near = cv2.dilate(dark.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    n, lab = cv2.connectedComponents(near, connectivity=8)
    counts = np.bincount(lab[dark], minlength=n)
    counts[0] = 0
    main = dark & (lab == int(np.argmax(counts)))
    main = cv2.erode(main.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return float((m & main).sum() / max(main.sum(), 1))


def _sample(root: Path, pattern: str, n: int) -> list[Path]:
    files = sorted(root.glob(pattern))
    pick = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int))
    return [files[i] for i in pick]


@pytest.mark.parametrize(
    ("folder", "pattern"),
    [("karyograms-612-half", "*.tiff/clase*/*.tiff"), ("pampaj7-datanew/DataNew", "*/*.tiff")],
)
def test_masks_cover_whole_chromosome(real_data: Path, folder: str, pattern: str) -> None:
    files = _sample(real_data / folder, pattern, 150)
    assert len(files) >= 100
    cov, single, fallback = [], [], []
    for f in files:
        img, inner = _enhanced(f)
        m = chromosome_mask(img, box=inner)
        cov.append(_coverage(img, m))
        single.append(cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[0] == 2)
        fallback.append(not straighten(apply_mask(img, m), m).applied)
    print(
        f"\n{folder}: coverage {np.mean(cov):.3f} (p5 {np.percentile(cov, 5):.3f}), "
        f"single component {np.mean(single):.3f}, straighten fallback {np.mean(fallback):.3f}"
    )
    assert np.mean(cov) >= 0.96  # measured 0.973 (karyograms), 0.983 (pampaj7)
    assert np.percentile(cov, 5) >= 0.92
    assert np.mean(single) >= 0.98
    assert np.mean(fallback) <= 0.05
