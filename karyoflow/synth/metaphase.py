"""Karyotypes and synthetic bright-field G-banded metaphase spreads."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from karyoflow.iscn import iscn_karyotype
from karyoflow.labels import LABELS, canonical_label, label_index
from karyoflow.synth.ideogram import ChromosomeIdeogram, load_ideogram
from karyoflow.synth.render import RenderedChromosome, od_to_grey, render_chromosome

__all__ = [
    "Metaphase",
    "compose_metaphase",
    "iscn_karyotype",
    "karyotype_labels",
]

AUTOSOMES: tuple[str, ...] = LABELS[:22]
_TOKEN = re.compile(r"^([+-])(\d{1,2}|X|Y)$")
_FULL = re.compile(r"^(\d{2}),([XY]+)((?:,[+-](?:\d{1,2}|X|Y))*)$")

Range = float | tuple[float, float] | Sequence[float]


def _sorted(labels: list[str]) -> list[str]:
    return sorted(labels, key=label_index)


def _parse_sex(sex: str) -> list[str]:
    norm = {"XX": "XX", "XY": "XY", "F": "XX", "M": "XY", "FEMALE": "XX", "MALE": "XY"}
    key = str(sex).strip().upper()
    if key not in norm:
        raise ValueError(f"sex must be 'XX' or 'XY', got {sex!r}")
    return list(norm[key])


def _apply_token(labels: list[str], token: str, original: str) -> None:
    match = _TOKEN.match(token)
    if not match:
        raise ValueError(
            f"invalid abnormality {original!r}: token {token!r} is not '+N', '-N', "
            "'+X', '+Y', '-X' or '-Y' (N = 1..22), nor '45,X'"
        )
    sign, chrom = match.groups()
    if chrom.isdigit() and not 1 <= int(chrom) <= 22:
        raise ValueError(f"invalid abnormality {original!r}: no autosome {chrom} (1..22)")
    chrom = canonical_label(chrom)
    if sign == "+":
        labels.append(chrom)
    elif chrom == "X":  # monosomy X: 45,X whatever the starting sex
        labels[:] = [lab for lab in labels if lab not in ("X", "Y")] + ["X"]
    elif chrom in labels:
        labels.remove(chrom)
    else:
        raise ValueError(f"invalid abnormality {original!r}: no chromosome {chrom} to lose")


def karyotype_labels(sex: str = "XY", abnormality: str | None = None) -> list[str]:
    """Chromosome labels of one cell.

    Parameters
    ----------
    sex : str, optional
        ``"XX"`` or ``"XY"`` (``"F"``/``"M"`` accepted).
    abnormality : str, optional
        ``None``/``""`` for a normal cell; otherwise comma-separated numeric changes:
        ``"+21"``, ``"+18"``, ``"+13"`` (any ``+N``/``-N``, N = 1..22), ``"-X"`` or
        ``"45,X"`` (monosomy X: 45,X whatever ``sex``), ``"+X"`` (47,XXY from XY, 47,XXX
        from XX), ``"+Y"`` (47,XYY), ``"-Y"``. A full ISCN summary such as
        ``"47,XY,+21"`` or ``"47,XXY"`` is also accepted (then ``sex`` is ignored and
        the count is checked).

    Returns
    -------
    list of str
        Canonical labels sorted in :data:`karyoflow.labels.LABELS` order.

    Raises
    ------
    ValueError
        For an unknown sex or an unparsable abnormality.

    Examples
    --------
    >>> len(karyotype_labels("XX")), karyotype_labels("XY", "+21").count("21")
    (46, 3)
    >>> karyotype_labels("XY", "45,X")[-2:]
    ['22', 'X']
    """
    labels = [lab for lab in AUTOSOMES for _ in range(2)]
    text = "" if abnormality is None else str(abnormality).strip().upper().replace(" ", "")
    full = _FULL.match(text)
    if full and text not in ("45,X",):
        count, sex_chroms, rest = full.groups()
        labels += list(sex_chroms)
        for token in filter(None, rest.split(",")):
            _apply_token(labels, token, abnormality or "")
        if len(labels) != int(count):
            raise ValueError(
                f"invalid karyotype {abnormality!r}: count {count} but {len(labels)} chromosomes"
            )
        return _sorted(labels)
    labels += _parse_sex(sex)
    if not text:
        return _sorted(labels)
    if text in ("45,X", "45,XO", "45,X0"):
        return _sorted([lab for lab in labels if lab not in ("X", "Y")] + ["X"])
    for token in text.split(","):
        _apply_token(labels, token, str(abnormality))
    return _sorted(labels)


@dataclass
class Metaphase:
    """One synthetic metaphase spread.

    Attributes
    ----------
    image : numpy.ndarray
        uint8 HxW grey bright-field image (light background, dark chromosomes).
    objects : list of dict
        One per chromosome, sorted by label: ``label`` (str), ``bbox`` ``(x0, y0, x1, y1)``
        ints with ``x1``/``y1`` exclusive, ``polygon`` ``[[x, y], ...]``, ``centromere``
        ``(x, y)``, and ``contact`` (``"free"``, ``"touch"`` or ``"overlap"``).
    karyotype : str
        ISCN summary of ``labels``.
    labels : list of str
        The cell's chromosome labels.
    chromosomes : list of RenderedChromosome
        The placed chromosomes in image coordinates (``image``/``mask`` are local crops
        whose top-left pixel is ``offsets[i]``), in ``objects`` order.
    offsets : list of tuple of int
        ``(x, y)`` of each local crop's top-left pixel.
    cell : dict
        The per-cell draws (width, chromosome 1 length, blur, ...).
    """

    image: np.ndarray
    objects: list[dict[str, Any]]
    karyotype: str
    labels: list[str]
    chromosomes: list[RenderedChromosome] = field(default_factory=list, repr=False)
    offsets: list[tuple[int, int]] = field(default_factory=list, repr=False)
    cell: dict[str, Any] = field(default_factory=dict)


def _draw(rng: np.random.Generator, value: Range) -> float:
    """A scalar, or a uniform draw from a ``(low, high)`` range."""
    if isinstance(value, (int, float)):
        return float(value)
    lo, hi = (float(v) for v in value)
    return float(rng.uniform(min(lo, hi), max(lo, hi))) if hi != lo else lo


def _draw_at(u: float, value: Range) -> float:
    """The point at fraction ``u`` of a ``(low, high)`` range (a scalar is returned as is)."""
    if isinstance(value, (int, float)):
        return float(value)
    lo, hi = sorted(float(v) for v in value)
    return lo + u * (hi - lo)


def _crop(chrom: RenderedChromosome, pad: int = 3) -> RenderedChromosome:
    """Crop a chromosome to its mask bounding box plus ``pad`` pixels."""
    ys, xs = np.nonzero(chrom.mask)
    h, w = chrom.mask.shape
    y0, x0 = max(int(ys.min()) - pad, 0), max(int(xs.min()) - pad, 0)
    y1, x1 = min(int(ys.max()) + pad + 1, h), min(int(xs.max()) + pad + 1, w)
    shift = np.array([x0, y0], np.float64)
    return replace(
        chrom,
        image=chrom.image[y0:y1, x0:x1],
        mask=chrom.mask[y0:y1, x0:x1],
        centromere=(chrom.centromere[0] - x0, chrom.centromere[1] - y0),
        polygon=chrom.polygon - shift,
        axis=chrom.axis - shift,
    )


def _shift(chrom: RenderedChromosome, dx: int, dy: int) -> RenderedChromosome:
    shift = np.array([dx, dy], np.float64)
    return replace(
        chrom,
        centromere=(chrom.centromere[0] + dx, chrom.centromere[1] + dy),
        polygon=chrom.polygon + shift,
        axis=chrom.axis + shift,
    )


@dataclass
class _Placer:
    """Scatter chromosome crops over a canvas, tracking occupancy."""

    height: int
    width: int
    centre: np.ndarray
    radius: float
    aspect: float
    tilt: float
    margin: int = 3
    gap: int = 3
    occ: np.ndarray = field(init=False)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    areas: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.occ = np.zeros((self.height, self.width), np.int32)

    def _spread_point(self, rng: np.random.Generator) -> np.ndarray:
        r = self.radius * np.sqrt(rng.uniform())
        a = rng.uniform(0, 2 * np.pi)
        p = np.array([r * np.cos(a), r * np.sin(a) * self.aspect])
        c, s = np.cos(self.tilt), np.sin(self.tilt)
        return self.centre + np.array([c * p[0] - s * p[1], s * p[0] + c * p[1]])

    def _corner(self, point: np.ndarray, shape: tuple[int, int]) -> tuple[int, int] | None:
        h, w = shape
        x0, y0 = round(point[0] - w / 2), round(point[1] - h / 2)
        m = self.margin
        if x0 < m or y0 < m or x0 + w > self.width - m or y0 + h > self.height - m:
            return None
        return x0, y0

    def place(
        self, mask: np.ndarray, mode: str, rng: np.random.Generator, tries: int = 120
    ) -> tuple[int, int]:
        """Find a top-left corner for ``mask`` (``mode``: free, touch or overlap)."""
        h, w = mask.shape
        kernel = np.ones((2 * self.gap + 1, 2 * self.gap + 1), np.uint8)
        near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        spaced = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        area = int(mask.sum())
        if mode != "free" and self.boxes:
            for _ in range(tries):
                j = int(rng.integers(len(self.boxes)))
                bx0, by0, bx1, by1 = self.boxes[j]
                owner = self.ids[j] + 1
                target = np.array([rng.uniform(bx0, bx1), rng.uniform(by0, by1)])
                jitter = rng.normal(0, 0.25, 2) * np.array([w, h])
                corner = self._corner(target + jitter, (h, w))
                if corner is None:
                    continue
                x0, y0 = corner
                region = self.occ[y0 : y0 + h, x0 : x0 + w]
                hit = region[mask]
                if mode == "touch":
                    if not hit.any() and region[near].any():
                        return x0, y0
                else:
                    others = hit[(hit != 0) & (hit != owner)]
                    frac = (hit == owner).sum() / max(1, min(area, self.areas[j]))
                    if others.size == 0 and 0.04 <= frac <= 0.3:
                        return x0, y0
        best: tuple[int, int, int] | None = None
        for attempt in range(tries * 3):
            if attempt and attempt % 60 == 0:
                self.radius *= 1.08
            corner = self._corner(self._spread_point(rng), (h, w))
            if corner is None:
                continue
            x0, y0 = corner
            conflict = int((self.occ[y0 : y0 + h, x0 : x0 + w][spaced] != 0).sum())
            if conflict == 0:
                return x0, y0
            if best is None or conflict < best[2]:
                best = (x0, y0, conflict)
        if best is None:  # nothing fits the spread: anywhere on the canvas
            x0 = int(rng.integers(self.margin, max(self.margin + 1, self.width - w - self.margin)))
            y0 = int(rng.integers(self.margin, max(self.margin + 1, self.height - h - self.margin)))
            best = (x0, y0, 1)
        return best[0], best[1]

    def commit(self, index: int, mask: np.ndarray, x0: int, y0: int) -> None:
        """Record ``mask`` placed at ``(x0, y0)`` as object ``index``."""
        h, w = mask.shape
        region = self.occ[y0 : y0 + h, x0 : x0 + w]
        region[mask & (region == 0)] = index + 1
        ys, xs = np.nonzero(mask)
        self.boxes.append(
            (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
        )
        self.areas.append(int(mask.sum()))
        self.ids.append(index)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field in [-1, 1] (bicubic upsampling of a coarse grid)."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    out = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, -1.0, 1.0)


def _blob(radius: float, sigma_scale: float = 0.5) -> np.ndarray:
    r = int(np.ceil(radius * 2.5)) + 1
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return np.exp(-0.5 * (xx**2 + yy**2) / (radius * sigma_scale) ** 2).astype(np.float32)


def _add_patch(od: np.ndarray, patch: np.ndarray, cx: float, cy: float) -> None:
    """Add ``patch`` centred on ``(cx, cy)``, clipped to the canvas."""
    ph, pw = patch.shape
    x0, y0 = round(cx) - pw // 2, round(cy) - ph // 2
    H, W = od.shape
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(W, x0 + pw), min(H, y0 + ph)
    if dx1 <= dx0 or dy1 <= dy0:
        return
    od[dy0:dy1, dx0:dx1] += patch[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]


def _nucleus(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Interphase nucleus: a round, slightly elliptical, mottled blob of OD."""
    r = int(np.ceil(radius * 1.25)) + 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    aspect = rng.uniform(0.85, 1.0)
    ang = rng.uniform(0, np.pi)
    c, s = np.cos(ang), np.sin(ang)
    u, v = c * xx + s * yy, (-s * xx + c * yy) / aspect
    dist = np.sqrt(u**2 + v**2)
    edge = 1.0 / (1.0 + np.exp((dist - radius) / 1.2))
    grain = cv2.GaussianBlur(rng.normal(0, 1, dist.shape).astype(np.float32), (0, 0), 1.5)
    grain /= max(float(grain.std()), 1e-6)
    mottle = _smooth_field(rng, dist.shape, 6)
    base = rng.uniform(0.7, 1.0)
    return (edge * base * (1.0 + 0.12 * grain + 0.1 * mottle)).astype(np.float32)


def compose_metaphase(
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    canvas: tuple[int, int] = (900, 900),
    ideogram: dict[str, ChromosomeIdeogram] | int = 400,
    width_px: Range = (14.0, 21.0),
    chr1_length_px: Range = (80.0, 120.0),
    max_bend_deg: float = 70.0,
    touch_prob: float = 0.08,
    overlap_prob: float = 0.04,
    debris: tuple[int, int] | int = (3, 15),
    nucleus_prob: float = 0.3,
    blur_sigma: Range = (0.7, 1.4),
    noise_sigma: float = 2.5,
    illumination: float = 0.06,
    background: Range = (218.0, 242.0),
    spread_density: Range = (0.06, 0.14),
) -> Metaphase:
    """Compose a bright-field G-banded metaphase spread.

    Chromosomes are rendered with one per-cell width and condensation (chromosome 1
    length), bent and rotated at random, then scattered over an elliptical spread; a
    fraction are placed touching or overlapping a neighbour. Overlapping chromatin adds
    optical density. Debris specks, an occasional interphase nucleus, smooth uneven
    illumination, optical blur and noise follow.

    Parameters
    ----------
    labels : sequence of str
        Chromosome labels (see :func:`karyotype_labels`).
    rng : numpy.random.Generator
    canvas : tuple of int, optional
        ``(height, width)`` in pixels.
    ideogram : dict or int, optional
        Ideogram mapping or resolution (400/550).
    width_px, chr1_length_px : float or (float, float), optional
        Chromosome width and chromosome-1 length in pixels, drawn once per cell from one
        shared (correlated) uniform draw: longer chromosomes come out wider.
    max_bend_deg : float, optional
        Largest total bend of a chromosome, degrees.
    touch_prob, overlap_prob : float, optional
        Probability that a chromosome is placed touching / overlapping one already placed.
    debris : int or (int, int), optional
        Number of debris specks (inclusive range).
    nucleus_prob : float, optional
        Probability of one interphase nucleus beside the spread.
    blur_sigma : float or (float, float), optional
        Gaussian optical blur, pixels.
    noise_sigma : float, optional
        Gaussian noise, grey levels.
    illumination : float, optional
        Relative amplitude of the smooth illumination field.
    background : float or (float, float), optional
        Grey level of clear glass.
    spread_density : float or (float, float), optional
        Fraction of the spread's ellipse covered by chromatin (higher = tighter spread).

    Returns
    -------
    Metaphase

    Examples
    --------
    >>> m = compose_metaphase(karyotype_labels("XX"), np.random.default_rng(0), canvas=(700, 700))
    >>> m.image.shape, m.image.dtype.name, len(m.objects), m.karyotype
    ((700, 700), 'uint8', 46, '46,XX')
    """
    ideo = load_ideogram(ideogram) if isinstance(ideogram, int) else ideogram
    height, width = (int(v) for v in canvas)
    labels = _sorted([canonical_label(lab) for lab in labels])
    # one magnification/condensation draw drives both length and width (correlated)
    scale = float(rng.uniform())
    width_u = float(np.clip(scale + rng.normal(0.0, 0.2), 0.0, 1.0))
    cell = {
        "width_px": _draw_at(width_u, width_px),
        "chr1_length_px": _draw_at(scale, chr1_length_px),
        "blur_sigma": _draw(rng, blur_sigma),
        "background": _draw(rng, background),
        "stain": float(rng.uniform(0.85, 1.1)),
        "band_blur": float(rng.uniform(0.7, 1.3)),
    }
    px_per_unit = cell["chr1_length_px"] / ideo["1"].length
    chroms = [
        _crop(
            render_chromosome(
                lab,
                rng,
                ideogram=ideo,
                px_per_unit=px_per_unit,
                width_px=cell["width_px"],
                max_bend=np.deg2rad(max_bend_deg),
                contrast=cell["stain"],
                band_blur=cell["band_blur"],
            )
        )
        for lab in labels
    ]

    total_area = sum(int(c.mask.sum()) for c in chroms)
    density = _draw(rng, spread_density)
    radius = float(np.sqrt(total_area / (np.pi * density)))
    radius = min(radius, 0.47 * min(height, width))
    room = np.array([width, height]) / 2.0 - radius
    centre = np.array([width, height]) / 2.0 + rng.uniform(-1, 1, 2) * np.maximum(room * 0.4, 0)
    placer = _Placer(
        height, width, centre, radius, float(rng.uniform(0.7, 1.0)), float(rng.uniform(0, np.pi))
    )

    od = np.zeros((height, width), np.float32)
    offsets: list[tuple[int, int]] = [(0, 0)] * len(chroms)
    order = rng.permutation(len(chroms))
    for k, i in enumerate(order):
        u = rng.uniform()
        mode = "free"
        if k > 0 and u < overlap_prob:
            mode = "overlap"
        elif k > 0 and u < overlap_prob + touch_prob:
            mode = "touch"
        x0, y0 = placer.place(chroms[i].mask, mode, rng)
        placer.commit(int(i), chroms[i].mask, x0, y0)
        offsets[i] = (x0, y0)
        h, w = chroms[i].image.shape
        od[y0 : y0 + h, x0 : x0 + w] += chroms[i].image

    occupied = placer.occ != 0
    if rng.uniform() < nucleus_prob:
        _place_nucleus(od, occupied, rng, cell)
    lo, hi = (debris, debris) if isinstance(debris, int) else debris
    n_debris = int(rng.integers(int(lo), int(hi) + 1))
    for _ in range(n_debris):
        r = float(rng.uniform(0.7, 2.6))
        _add_patch(od, _blob(r) * float(rng.uniform(0.3, 1.1)), *rng.uniform(0, [width, height]))
    for _ in range(int(rng.integers(0, 4))):  # faint out-of-focus smudges
        r = float(rng.uniform(8, 30))
        _add_patch(od, _blob(r) * float(rng.uniform(0.02, 0.07)), *rng.uniform(0, [width, height]))

    light = cell["background"] * (1.0 + illumination * _smooth_field(rng, (height, width), 4))
    grey = od_to_grey(od, light)
    grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=max(cell["blur_sigma"], 1e-3))
    grain = cv2.GaussianBlur(rng.normal(0.0, 1.0, grey.shape).astype(np.float32), (0, 0), 2.0)
    grey += grain * (noise_sigma * 2.0) + rng.normal(0.0, noise_sigma, grey.shape).astype(
        np.float32
    )
    image = np.clip(np.rint(grey), 0, 255).astype(np.uint8)

    contacts = _contacts(chroms, offsets, placer.occ)
    placed = [_shift(c, *offsets[i]) for i, c in enumerate(chroms)]
    objects = [_object(c, offsets[i], contacts[i]) for i, c in enumerate(placed)]
    return Metaphase(
        image=image,
        objects=objects,
        karyotype=iscn_karyotype(labels),
        labels=labels,
        chromosomes=placed,
        offsets=offsets,
        cell={**cell, "n_debris": n_debris},
    )


def _contacts(
    chroms: list[RenderedChromosome], offsets: list[tuple[int, int]], owner: np.ndarray
) -> list[str]:
    """``overlap`` / ``touch`` (within 1 px) / ``free`` for every placed chromosome."""
    count = np.zeros(owner.shape, np.int16)
    for c, (x0, y0) in zip(chroms, offsets, strict=True):
        h, w = c.mask.shape
        count[y0 : y0 + h, x0 : x0 + w] += c.mask
    out = []
    kernel = np.ones((3, 3), np.uint8)
    for i, (c, (x0, y0)) in enumerate(zip(chroms, offsets, strict=True)):
        h, w = c.mask.shape
        if (count[y0 : y0 + h, x0 : x0 + w][c.mask] > 1).any():
            out.append("overlap")
            continue
        ring = cv2.dilate(c.mask.astype(np.uint8), kernel).astype(bool) & ~c.mask
        near = owner[y0 : y0 + h, x0 : x0 + w][ring]
        out.append("touch" if ((near != 0) & (near != i + 1)).any() else "free")
    return out


def _place_nucleus(
    od: np.ndarray, occupied: np.ndarray, rng: np.random.Generator, cell: dict[str, Any]
) -> None:
    height, width = od.shape
    radius = float(rng.uniform(3.5, 6.0) * cell["width_px"])
    blob = _nucleus(rng, radius)
    for _ in range(40):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        y0, y1 = int(max(cy - radius - 6, 0)), int(min(cy + radius + 7, height))
        x0, x1 = int(max(cx - radius - 6, 0)), int(min(cx + radius + 7, width))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= (radius + 6) ** 2
        if not occupied[y0:y1, x0:x1][disk].any():
            _add_patch(od, blob, cx, cy)
            cell["nucleus"] = [round(float(cx), 1), round(float(cy), 1), round(radius, 1)]
            return


def _object(chrom: RenderedChromosome, offset: tuple[int, int], contact: str) -> dict[str, Any]:
    ys, xs = np.nonzero(chrom.mask)
    x0, y0 = offset
    bbox = (
        x0 + int(xs.min()),
        y0 + int(ys.min()),
        x0 + int(xs.max()) + 1,
        y0 + int(ys.max()) + 1,
    )
    return {
        "label": chrom.label,
        "bbox": bbox,
        "polygon": [[round(float(x), 2), round(float(y), 2)] for x, y in chrom.polygon],
        "centromere": (round(float(chrom.centromere[0]), 2), round(float(chrom.centromere[1]), 2)),
        "contact": contact,
    }
