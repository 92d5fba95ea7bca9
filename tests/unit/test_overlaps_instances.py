"""Geometric A/B assignment (karyoflow.tasks.segmentation.instances) on crafted crossings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from karyoflow.evaluate.segmentation import segmentation_report
from karyoflow.tasks.segmentation.instances import (
    split_instances,
    split_instances_batch,
    to_contact_classes,
    to_three_class,
)
from karyoflow.tasks.segmentation.task import resolve_seg_params


def _bar(p0, p1, size=48, width=5) -> np.ndarray:
    """Mask of a straight bar from p0 to p1 ((x, y) px)."""
    m = np.zeros((size, size), np.uint8)
    cv2.line(m, p0, p1, 1, width)
    return m.astype(bool)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4-class truth, grey) of two masks: overlap where both, darker there."""
    truth = np.zeros(a.shape, np.uint8)
    truth[a], truth[b], truth[a & b] = 1, 2, 3
    grey = (230 * 10 ** (-0.4 * (a.astype(float) + b))).astype(np.uint8)
    return truth, grey


def _chrom_iou(truth, pred) -> float:
    return segmentation_report(truth[None], pred[None])["chromosome_iou"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (((4, 24), (44, 24)), ((24, 4), (24, 44))),  # perpendicular X
        (((4, 30), (44, 18)), ((8, 6), (40, 44))),  # oblique X
        (((6, 40), (42, 8)), ((4, 16), (44, 34))),  # another oblique X
    ],
)
def test_x_crossing_pairs_opposite_arms(a, b):
    truth, grey = _pair(_bar(*a), _bar(*b))
    pred = split_instances(to_three_class(truth), grey)
    assert (pred == 3).sum() == (truth == 3).sum()  # the overlap is kept as it is
    assert _chrom_iou(truth, pred) > 0.95


def test_t_junction_and_end_overlap():
    # T: B ends on the middle of A (3 arms: A's two pair up, B's one ends)
    truth, grey = _pair(_bar((4, 10), (44, 10)), _bar((24, 8), (24, 44)))
    assert _chrom_iou(truth, split_instances(to_three_class(truth), grey)) > 0.95
    # two ends overlapping at an angle (2 arms: one each)
    # (the tips poking out beyond the overlap go to the nearest arm: not always right)
    truth, grey = _pair(_bar((4, 8), (24, 22)), _bar((22, 24), (44, 6)))
    assert _chrom_iou(truth, split_instances(to_three_class(truth), grey)) > 0.9


def test_one_chromosome_wholly_on_the_other():
    big = _bar((4, 24), (44, 24), width=9)
    small = _bar((18, 23), (28, 25), width=3)
    assert not (small & ~big).any()
    truth, grey = _pair(big, small)
    pred = split_instances(to_three_class(truth), grey)
    assert (pred == 2).sum() == 0 and ((pred == 1) == (truth == 1)).all()
    assert ((pred == 3) == (truth == 3)).all()


def test_contact_class_separates_touching_chromosomes():
    # a narrow V: the ends overlap, below it the two touch for a while (no overlap
    # between them), so without a cut their own pixels form one piece
    truth, grey = _pair(_bar((20, 4), (20, 44)), _bar((22, 4), (36, 44)))
    contact = to_contact_classes(truth)
    assert (truth == 3).any() and (contact == 3).sum() > 4
    assert _chrom_iou(truth, split_instances(to_three_class(truth), grey)) < 0.5
    pred = split_instances(contact, grey)
    assert _chrom_iou(truth, pred) > 0.95
    assert set(np.unique(pred)) == {0, 1, 2, 3}


def test_degenerate_maps_and_options():
    empty = np.zeros((8, 8), np.uint8)
    assert split_instances(empty).max() == 0
    only = empty.copy()
    only[2:4, 2:4] = 2
    assert (split_instances(only, min_overlap=0) == 3).sum() == 4
    assert (split_instances(only) == 3).sum() == 0  # under min_overlap px: chromosome
    two = empty.copy()
    two[1, 1:4], two[6, 1:7] = 1, 1  # no overlap: the two largest pieces are A and B
    out = split_instances(two)
    assert out[6, 1] != out[1, 1] and {out[1, 1], out[6, 1]} == {1, 2}
    with pytest.raises(ValueError, match="unknown split_instances option"):
        split_instances(empty, cutt=2)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        split_instances(np.zeros((2, 8, 8)))
    assert split_instances_batch(np.stack([two, only])).shape == (2, 8, 8)


def test_contact_classes_per_image_in_a_stack():
    stack = np.zeros((2, 4, 4), np.uint8)
    stack[0, 1, 1] = 1
    stack[1, 1, 1] = 2  # same place, other image: no contact
    assert to_contact_classes(stack).max() == 1
    assert to_three_class(stack).tolist() == (stack > 0).astype(int).tolist()


def test_mode_and_split_options_are_checked():
    assert resolve_seg_params({"mode": "contact_geometric"})["mode"] == "contact_geometric"
    with pytest.raises(ValueError, match="mode must be one of"):
        resolve_seg_params({"mode": "geometric"})
    with pytest.raises(ValueError, match="unknown split option 'cutt'"):
        resolve_seg_params({"split": {"cutt": 1}})
