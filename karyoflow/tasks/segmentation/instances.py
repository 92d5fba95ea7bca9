"""A/B assignment by geometry: a 3-class map (background, chromosome, overlap) to 4 classes.

Which chromosome of a pair is "first" is arbitrary, so a network asked for labels 1 and
2 pixel by pixel has to invent an order and tends to split one chromosome between them.
The ``three_class_geometric`` mode instead predicts **0 background, 1 chromosome, 2
overlap** (:func:`to_three_class`; nothing arbitrary to learn) and assigns A and B
afterwards (:func:`split_instances`):

1. the overlap (slightly dilated, ``cut``) is removed from the chromosome region and the
   rest falls apart into connected pieces: usually 4 arms around a crossing, 3 for a T,
   2 where two ends overlap, 1 where one chromosome lies wholly on the other;
2. each piece touching the overlap gets an *outward direction* where it leaves the
   overlap (principal axis of its pixels within ``radius`` of the contact, pointing
   away from it);
3. the pieces are split into two groups (chromosomes) by trying every assignment: two
   arms of one chromosome at one overlap region cost ``(1 + cos angle) / 2`` (0 for
   opposite, collinear directions) plus a lateral-offset term; one arm (the chromosome
   ends in the overlap) costs ``end_cost``; three or more arms of one chromosome at one
   overlap region, or an empty chromosome, are ruled out (or penalised);
4. the pixels cut away in 1, small pieces and pieces not touching the overlap go to the
   nearest assigned piece; the overlap keeps label 3.

Works per image on plain numpy/scipy; :func:`split_instances_batch` maps it over a
stack.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

__all__ = [
    "DEFAULT_SPLIT",
    "split_instances",
    "split_instances_batch",
    "to_contact_classes",
    "to_three_class",
]

#: Options of :func:`split_instances` (end_cost and min_overlap chosen on the validation
#: pairs of config/examples/overlaps_real.yaml, docs/segmentation.md).
DEFAULT_SPLIT: dict[str, Any] = {
    "cut": 1,  # px the overlap is dilated by before the pieces are separated
    "min_piece": 6,  # px: smaller pieces are not arms (assigned to the nearest one)
    "radius": 8.0,  # px from the contact used for a piece's outward direction
    "contact": 2.0,  # px: piece pixels this close to the overlap are its contact
    "end_cost": 0.45,  # cost of a chromosome ending in an overlap region (one arm)
    "single_cost": 2.6,  # cost of one chromosome having no arm (lying wholly on the other)
    "lateral_scale": 8.0,  # px: lateral offset between paired arms at cost 1
    "lateral_weight": 0.5,
    "max_pieces": 10,  # more arms than this: the smallest are assigned by nearness
    "min_overlap": 8,  # px: smaller overlap regions are taken as chromosome (noise)
}

_EIGHT = np.ones((3, 3), bool)


def to_three_class(labels: ArrayLike) -> np.ndarray:
    """4-class labels (0 bg, 1 A, 2 B, 3 overlap) to 3 classes (0 bg, 1 chromosome, 2 overlap).

    Examples
    --------
    >>> to_three_class([0, 1, 2, 3]).tolist()
    [0, 1, 1, 2]
    """
    lab = np.asarray(labels)
    out = np.zeros(lab.shape, np.uint8)
    out[(lab == 1) | (lab == 2)] = 1
    out[lab == 3] = 2
    return out


def to_contact_classes(labels: ArrayLike, width: int = 1) -> np.ndarray:
    """4-class labels to 0 bg, 1 chromosome, 2 overlap, 3 contact (``contact_geometric``).

    Contact: pixels of one chromosome within ``width`` px (8-neighbourhood) of the other
    chromosome's own pixels, i.e. where the two touch outside the overlap; a line the
    geometric split can cut along. Works on one image ``(H, W)`` or a stack.

    Examples
    --------
    >>> to_contact_classes([[1, 1, 2, 2, 3]]).tolist()
    [[1, 3, 3, 1, 2]]
    """
    lab = np.asarray(labels)
    out = to_three_class(lab)
    ring = np.ones((3,) * lab.ndim, bool)
    if lab.ndim == 3:
        ring[0] = ring[2] = False  # stack: no contact across images
    a, b = lab == 1, lab == 2
    near_a = ndimage.binary_dilation(a, ring, iterations=width)
    near_b = ndimage.binary_dilation(b, ring, iterations=width)
    out[(a & near_b) | (b & near_a)] = 3
    return out


def _direction(
    piece: np.ndarray,
    near: np.ndarray,
    dist: np.ndarray,
    weight: np.ndarray,
    radius: float,
    hub: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(contact centroid, outward unit direction) of one piece, both ``(row, col)``.

    The direction runs from ``hub`` (centroid of the overlap region the piece touches)
    to the (grey-weighted) centroid of the piece's pixels within ``radius`` of its
    contact; for an elongated piece whose principal axis agrees with it (cos > 0.8) the
    axis is taken instead (straighter for long arms). Stubs keep the hub direction.
    """
    c0 = np.argwhere(near).mean(0)
    pts = np.argwhere(piece & (dist <= radius))
    if len(pts) < 3:
        pts = np.argwhere(piece)
    w = weight[pts[:, 0], pts[:, 1]] + 1e-3
    centre = (pts * w[:, None]).sum(0) / w.sum()
    out = centre - hub
    norm = float(np.hypot(*out))
    if norm < 1e-6:
        out, norm = centre - c0, float(np.hypot(*(centre - c0)))
    out = out / norm if norm > 1e-6 else np.array([1.0, 0.0])
    d = pts - centre
    vals, vecs = np.linalg.eigh((d * w[:, None]).T @ d / w.sum())
    axis = vecs[:, 1] * (1.0 if float(vecs[:, 1] @ out) >= 0 else -1.0)
    if vals[1] > 4.0 * max(vals[0], 1e-6) and float(axis @ out) > 0.8:
        return c0, axis
    return c0, out


def _pair_cost(a: tuple, b: tuple, opts: dict[str, Any]) -> float:
    """Cost of two arms (contact, direction) belonging to one chromosome."""
    (ca, da), (cb, db) = a, b
    angle = (1.0 + float(da @ db)) / 2.0
    # lateral offset of each contact from the other arm's axis line
    off = []
    for c, d, other in ((ca, da, cb), (cb, db, ca)):
        v = other - c
        off.append(abs(float(v[0] * d[1] - v[1] * d[0])))
    lateral = min(float(np.mean(off)) / float(opts["lateral_scale"]), 1.0)
    return angle + float(opts["lateral_weight"]) * lateral


def split_instances(
    three_class_map: ArrayLike, grey: ArrayLike | None = None, **options: Any
) -> np.ndarray:
    """Assign chromosome pixels of a 3-class map to chromosome A or B by geometry.

    Parameters
    ----------
    three_class_map : array_like
        ``(H, W)`` integer labels: 0 background, 1 chromosome, 2 overlap, and optionally
        3 contact (chromosome pixels where the two touch outside the overlap, see
        :func:`to_contact_classes`): cut like the overlap, then given to A or B.
    grey : array_like, optional
        ``(H, W)`` grey image (dark chromosomes on light): darker pixels weigh more in a
        piece's direction (the chromatin axis). None: uniform weights.
    **options
        Over :data:`DEFAULT_SPLIT` (``cut``, ``min_piece``, ``radius``, ``end_cost``,
        ...); an unknown name raises ValueError.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8: 0 background, 1 chromosome A, 2 chromosome B, 3 overlap (which
        chromosome is A is arbitrary).

    Examples
    --------
    An X of two bars: the four arms pair up across the crossing.

    >>> m = np.zeros((21, 21), np.uint8)
    >>> m[9:12, 1:20] = 1; m[1:20, 9:12] = 1; m[9:12, 9:12] = 2
    >>> out = split_instances(m)
    >>> out[10, 2] == out[10, 18] != out[2, 10] == out[18, 10], out[10, 10]
    (np.True_, np.uint8(3))
    """
    unknown = sorted(set(options) - set(DEFAULT_SPLIT))
    if unknown:
        raise ValueError(f"unknown split_instances option {unknown[0]!r}")
    opts = {**DEFAULT_SPLIT, **options}
    lab = np.asarray(three_class_map)
    if lab.ndim != 2:
        raise ValueError(f"three_class_map must be (H, W), got {lab.shape}")
    overlap = lab == 2
    if int(opts["min_overlap"]) > 0 and overlap.any():
        blobs, nb = ndimage.label(overlap, _EIGHT)
        area = ndimage.sum_labels(overlap, blobs, np.arange(1, nb + 1))
        overlap = np.isin(blobs, 1 + np.flatnonzero(area >= int(opts["min_overlap"])))
    boundary = lab == 3  # optional: chromosome pixels where A touches B (cut, not overlap)
    chrom = ((lab == 1) | (lab == 2) | boundary) & ~overlap
    out = np.zeros(lab.shape, np.uint8)
    out[overlap] = 3
    if not chrom.any():
        return out
    if grey is None:
        weight = np.ones(lab.shape, np.float64)
    else:
        g = np.asarray(grey, np.float64)
        weight = np.clip(g.max() - g, 0, None) if g.max() > g.min() else np.ones(lab.shape)

    cut = int(opts["cut"])
    cutter = ndimage.binary_dilation(overlap, _EIGHT, iterations=cut) if cut > 0 else overlap
    pieces, n = ndimage.label(chrom & ~cutter & ~boundary)
    sizes = ndimage.sum_labels(np.ones(lab.shape), pieces, np.arange(1, n + 1)) if n else []
    dist = (
        ndimage.distance_transform_edt(~overlap)
        if overlap.any()
        else np.full(lab.shape, np.inf, np.float64)
    )
    comps, n_comps = ndimage.label(overlap, _EIGHT)
    centroids = np.array(ndimage.center_of_mass(overlap, comps, range(1, n_comps + 1)))
    nearest_overlap = (
        ndimage.distance_transform_edt(~overlap, return_indices=True)[1] if overlap.any() else None
    )
    # arms: big enough pieces touching the overlap (contact within `contact` + cut px)
    reach = float(opts["contact"]) + cut
    arms: list[dict[str, Any]] = []
    stubs = np.zeros(lab.shape, bool)  # small pieces at the overlap
    for k in np.argsort(sizes)[::-1] if n else []:
        piece = pieces == k + 1
        if sizes[k] < int(opts["min_piece"]):
            if (piece & (dist <= reach)).any():
                stubs |= piece
            continue
        near = piece & (dist <= reach)
        if not near.any():
            continue
        if len(arms) >= int(opts["max_pieces"]):
            stubs |= piece
            continue
        # the overlap region it touches: the component nearest to its contact
        rr, cc = np.nonzero(near)
        comp_ids = comps[nearest_overlap[0][rr, cc], nearest_overlap[1][rr, cc]]
        comp = int(np.bincount(comp_ids).argmax())
        # distance from the contact, for the local direction
        local = ndimage.distance_transform_edt(~near)
        hub = centroids[comp - 1]
        contact, direction = _direction(piece, near, local, weight, float(opts["radius"]), hub)
        arms.append({"label": k + 1, "comp": comp, "geom": (contact, direction)})

    seeds = np.zeros(lab.shape, np.uint8)
    if not arms:
        # no overlap contact: the two largest pieces are A and B
        order = np.argsort(sizes)[::-1] if n else []
        for rank, k in enumerate(order[:2]):
            seeds[pieces == k + 1] = rank + 1
    else:
        groups = _best_grouping(arms, opts) if len(arms) > 1 else (0,)
        for arm, g in zip(arms, groups, strict=True):
            seeds[pieces == arm["label"]] = g + 1
        if len(set(groups)) < 2:  # the other chromosome: the stubs at the overlap, if any
            seeds[stubs] = 2
    # every other chromosome pixel: the label of the nearest seed
    if seeds.any():
        idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)[1]
        nearest = seeds[idx[0], idx[1]]
        out[chrom] = nearest[chrom]
    return out


def _best_grouping(arms: list[dict[str, Any]], opts: dict[str, Any]) -> tuple[int, ...]:
    """0/1 group per arm minimising the pairing cost (first arm in group 0)."""
    best, best_cost = None, np.inf
    n = len(arms)
    for rest in itertools.product((0, 1), repeat=n - 1):
        groups = (0, *rest)
        # one chromosome without an arm of its own (wholly on top of the other)
        cost = float(opts["single_cost"]) if len(set(groups)) < 2 else 0.0
        feasible = True
        for g in (0, 1):
            by_comp: dict[int, list[int]] = {}
            for i, arm in enumerate(arms):
                if groups[i] == g:
                    by_comp.setdefault(arm["comp"], []).append(i)
            for members in by_comp.values():
                if len(members) > 2:
                    feasible = False
                    break
                if len(members) == 2:
                    cost += _pair_cost(arms[members[0]]["geom"], arms[members[1]]["geom"], opts)
                else:
                    cost += float(opts["end_cost"])
            if not feasible:
                break
        if feasible and cost < best_cost:
            best, best_cost = groups, cost
    if best is None:  # more than 4 arms at one region: alternate by angle
        best = tuple(i % 2 for i in range(n))
    return best


def split_instances_batch(
    three_class_maps: ArrayLike, grey: ArrayLike | None = None, **options: Any
) -> np.ndarray:
    """:func:`split_instances` over a stack ``(N, H, W)`` (grey ``(N, H, W)`` or None).

    Examples
    --------
    >>> split_instances_batch(np.zeros((2, 4, 4), np.uint8)).shape
    (2, 4, 4)
    """
    maps = np.asarray(three_class_maps)
    out = np.zeros(maps.shape, np.uint8)
    for i in range(len(maps)):
        out[i] = split_instances(maps[i], None if grey is None else np.asarray(grey[i]), **options)
    return out
