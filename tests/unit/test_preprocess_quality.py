"""Quality of masking, straightening and centromere estimation on synthetic ground truth.

Run with ``-s`` to see the measured numbers.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from karyoflow.labels import LABELS
from karyoflow.preprocess.mask import chromosome_mask
from karyoflow.preprocess.orient import orient, transform_points
from karyoflow.preprocess.straighten import straighten
from karyoflow.synth import compose_metaphase, karyotype_labels
from karyoflow.synth.ideogram import load_ideogram
from karyoflow.synth.render import bend, od_to_grey, render_straight, rotate

PAD = 8


def _degrade(od: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    g = od_to_grey(np.pad(od, PAD), background=float(rng.uniform(215, 240)))
    g = cv2.GaussianBlur(g, (0, 0), float(rng.uniform(0.6, 1.1)))
    g = g + rng.normal(0.0, 2.5, g.shape)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def bent_set() -> list[dict]:
    """72 chromosomes (3 per label): straight reference + bent/rotated/blurred/noisy."""
    ideo = load_ideogram()
    rng = np.random.default_rng(20240611)
    out = []
    for i in range(72):
        lab = LABELS[i % 24]
        length, width = float(rng.uniform(40, 160)), float(rng.uniform(12, 20))
        straight = render_straight(ideo[lab], length_px=length, width_px=width, rng=rng)
        k = float(rng.uniform(0.3, 1.2)) * float(rng.choice([-1.0, 1.0]))
        k = float(np.sign(k) * min(abs(k), length / (0.8 * width)))
        prof = str(rng.choice(["arc", "kink", "s"]))
        chrom = rotate(bend(straight, k, rng=rng, profile=prof), float(rng.uniform(0, 360)))
        out.append(
            {
                "label": lab,
                "grey": _degrade(chrom.image, rng),
                "mask": np.pad(chrom.mask, PAD),
                "axis": chrom.axis + PAD,
                "cen": np.array(chrom.centromere) + PAD,
                "ref_grey": _degrade(straight.image, rng),
                "ref_mask": np.pad(straight.mask, PAD),
            }
        )
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _profile(grey: np.ndarray, mask: np.ndarray, n: int = 64) -> np.ndarray:
    """Mean grey of the mask in each row, over the mask's rows, resampled to ``n``."""
    rows = np.flatnonzero(mask.any(axis=1))
    r = np.arange(rows[0], rows[-1] + 1)
    v = np.where(mask, grey.astype(np.float64), 0.0).sum(axis=1)[r] / np.maximum(
        mask.sum(axis=1)[r], 1
    )
    return np.interp(np.linspace(0, v.size - 1, n), np.arange(v.size), v)


def test_straightening_band_profile_and_centromere(bent_set: list[dict]) -> None:
    corr: dict[str, list[float]] = {"none": [], "medial_axis": [], "projection": []}
    hits: dict[str, list[bool]] = {k: [] for k in corr}
    for d in bent_set:
        mask = chromosome_mask(d["grey"])
        ref = _profile(d["ref_grey"], d["ref_mask"])
        for method in corr:
            r = straighten(d["grey"], mask, method=method)
            o = orient(r.image, r.mask)

            def to_out(p: np.ndarray, r=r, o=o) -> np.ndarray:
                return transform_points(o.matrix, r.map_points(p))

            prof = _profile(o.image, o.mask)
            pter, qter = to_out(d["axis"][[0, -1]])
            if pter[1] > qter[1]:  # compare in p-ter -> q-ter order (known from the truth)
                prof = prof[::-1]
            corr[method].append(float(np.corrcoef(prof, ref)[0, 1]))
            true_cy = to_out(d["cen"][None])[0, 1]
            rows = np.flatnonzero(o.mask.any(axis=1))
            length = rows[-1] - rows[0] + 1
            hits[method].append(abs(o.centromere[1] - true_cy) <= 0.1 * length)
    means = {k: float(np.mean(v)) for k, v in corr.items()}
    rates = {k: float(np.mean(v)) for k, v in hits.items()}
    print(
        f"\nband-profile correlation (n={len(bent_set)}): "
        + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
    )
    print("centromere within 10% of length: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    assert means["medial_axis"] >= 0.9
    assert means["medial_axis"] > means["none"]
    assert rates["medial_axis"] >= 0.9


def test_mask_iou_isolated(bent_set: list[dict]) -> None:
    ious = [_iou(chromosome_mask(d["grey"]), d["mask"]) for d in bent_set]
    print(f"\nmask IoU isolated: mean {np.mean(ious):.3f}, min {np.min(ious):.3f}")
    assert np.mean(ious) >= 0.9


def test_mask_iou_metaphase_crops() -> None:
    rng = np.random.default_rng(7)
    ious, contact = [], []
    for _ in range(2):
        m = compose_metaphase(karyotype_labels("XX"), rng)
        h, w = m.image.shape
        for obj, ch, (ox, oy) in zip(m.objects, m.chromosomes, m.offsets, strict=True):
            x0, y0, x1, y1 = obj["bbox"]
            cx0, cy0, cx1, cy1 = max(x0 - 6, 0), max(y0 - 6, 0), min(x1 + 6, w), min(y1 + 6, h)
            truth = np.zeros((h, w), bool)
            ch_h, ch_w = ch.mask.shape
            truth[oy : oy + ch_h, ox : ox + ch_w] = ch.mask
            box = (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0)
            est = chromosome_mask(m.image[cy0:cy1, cx0:cx1], box=box)
            ious.append(_iou(est, truth[cy0:cy1, cx0:cx1]))
            contact.append(obj["contact"])
    ious_a, contact_a = np.array(ious), np.array(contact)
    free = ious_a[contact_a == "free"]
    print(
        f"\nmask IoU metaphase crops: mean {ious_a.mean():.3f} (n={ious_a.size}), "
        f"free {free.mean():.3f} (n={free.size}), touching/overlapping "
        f"{ious_a[contact_a != 'free'].mean():.3f}"
    )
    assert ious_a.mean() >= 0.9
