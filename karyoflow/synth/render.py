"""Render single G-banded chromosomes from an ISCN ideogram.

Conventions
-----------
* Images are float32 optical density (OD): 0 = background, ~1 = the darkest band.
  Overlapping chromatin adds OD (transmittances multiply); :func:`od_to_grey` turns OD into
  a bright-field grey image.
* Pixel centres sit at integer coordinates: pixel ``image[i, j]`` is the point ``(x=j, y=i)``.
  Polygons, axes and centromeres use the same ``(x, y)`` coordinates.
* A straight chromosome is vertical with the p arm up (p-ter at the top).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial import cKDTree

from karyoflow.synth.ideogram import ChromosomeIdeogram, load_ideogram, stain_density

__all__ = [
    "RenderedChromosome",
    "bend",
    "mask_polygon",
    "od_to_grey",
    "render_chromosome",
    "render_straight",
    "rotate",
]

BendProfile = Literal["arc", "kink", "s"]


@dataclass
class RenderedChromosome:
    """A rendered chromosome in its own small image.

    Attributes
    ----------
    image : numpy.ndarray
        float32 HxW optical density, 0 = background, ~1 = darkest band.
    mask : numpy.ndarray
        bool HxW chromosome mask.
    centromere : tuple of float
        ``(x, y)`` pixel position of the centromere on the axis.
    polygon : numpy.ndarray
        ``(N, 2)`` float ``x, y`` outline of ``mask``.
    axis : numpy.ndarray
        ``(M, 2)`` float ``x, y`` centre line from p-ter to q-ter.
    label : str
        Canonical label.
    """

    image: np.ndarray
    mask: np.ndarray
    centromere: tuple[float, float]
    polygon: np.ndarray
    axis: np.ndarray
    label: str

    @property
    def length_px(self) -> float:
        """Length of the centre line in pixels."""
        return float(np.linalg.norm(np.diff(self.axis, axis=0), axis=1).sum())

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return (int(self.image.shape[0]), int(self.image.shape[1]))


def od_to_grey(
    od: np.ndarray, background: float | np.ndarray = 235.0, contrast: float = 0.72
) -> np.ndarray:
    """Bright-field transmission: ``grey = background * 10 ** (-contrast * od)``.

    Parameters
    ----------
    od : numpy.ndarray
        Optical density (0 = background).
    background : float or numpy.ndarray, optional
        Grey level of clear glass (a scalar or an illumination field of ``od``'s shape).
    contrast : float, optional
        Decades of attenuation per OD unit; 0.72 puts OD 1 near grey 45.

    Returns
    -------
    numpy.ndarray
        float32 grey levels (not clipped or rounded).

    Examples
    --------
    >>> od_to_grey(np.array([0.0, 1.0])).round().tolist()
    [235.0, 45.0]
    """
    return (np.asarray(background, np.float32) * np.power(10.0, -contrast * od)).astype(np.float32)


def mask_polygon(mask: np.ndarray, epsilon: float = 0.5) -> np.ndarray:
    """Outline of the largest connected region of a mask.

    Parameters
    ----------
    mask : numpy.ndarray
        bool HxW.
    epsilon : float, optional
        Douglas-Peucker tolerance in pixels (0 keeps every boundary pixel).

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float64 ``x, y`` vertices (boundary pixel centres); ``(0, 2)`` if empty.

    Examples
    --------
    >>> m = np.zeros((5, 6), bool); m[1:4, 2:5] = True
    >>> mask_polygon(m).tolist()
    [[2.0, 1.0], [2.0, 3.0], [4.0, 3.0], [4.0, 1.0]]
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), np.float64)
    contour = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    if epsilon > 0 and len(contour) > 4:
        contour = cv2.approxPolyDP(contour, epsilon, True)
    return contour.reshape(-1, 2).astype(np.float64)


def _band_profile(
    ideo: ChromosomeIdeogram,
    length_px: float,
    rng: np.random.Generator,
    band_blur: float,
    density_jitter: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Optical density along the axis, sampled 4x per pixel: ``(s_px, od)``."""
    stops = np.array([b.stop for b in ideo.bands])
    od = np.array([stain_density(b.stain, b.density) for b in ideo.bands])
    od = np.clip(od + rng.normal(0.0, density_jitter, od.size), 0.08, 1.05)
    n = max(8, int(np.ceil(length_px * 4)))
    s_px = (np.arange(n) + 0.5) / 4.0 * (length_px / (n / 4.0))
    u = s_px / length_px * ideo.length
    idx = np.clip(np.searchsorted(stops, u, side="right"), 0, len(stops) - 1)
    profile = gaussian_filter1d(od[idx], sigma=max(band_blur, 1e-3) * 4.0, mode="nearest")
    return s_px, profile


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def render_straight(
    ideo: ChromosomeIdeogram,
    *,
    length_px: float,
    width_px: float,
    rng: np.random.Generator,
    chromatid_gap: float = 0.8,
    constriction: float = 0.3,
    band_blur: float = 0.7,
    density_jitter: float = 0.05,
    texture: float = 0.10,
    telomere_splay: float = 0.05,
    contrast: float = 1.0,
    rim: float = 0.15,
) -> RenderedChromosome:
    """Render one straight, vertical chromosome (p arm up).

    Two sister chromatids (rounded capsules) run side by side with a slight gap, which
    shows as a lighter longitudinal line; they converge and narrow at the centromere
    (the primary constriction). Bands follow the ideogram's stains, blurred along the
    axis, with random per-band density jitter and a faint granular texture.

    Parameters
    ----------
    ideo : ChromosomeIdeogram
        Bands and centromere of the chromosome.
    length_px, width_px : float
        Length (p-ter to q-ter) and full width (both chromatids) in pixels.
    rng : numpy.random.Generator
        Source of the band jitter, texture and telomere splay; the result is a pure
        function of the inputs and the generator's state.
    chromatid_gap : float, optional
        Gap between sister chromatids in pixels; it sets the width and depth of the
        lighter groove between them (0 = no groove).
    constriction : float, optional
        Relative narrowing at the centromere (0 = none).
    band_blur : float, optional
        Gaussian blur of the band pattern along the axis, pixels.
    density_jitter : float, optional
        Standard deviation of the per-band OD jitter.
    texture : float, optional
        Relative amplitude of the granular chromatin texture.
    telomere_splay : float, optional
        Maximum extra separation of the chromatids at the telomeres, as a fraction of width.
    contrast : float, optional
        Overall OD scale (staining intensity).
    rim : float, optional
        Extra OD of the darker rim just inside the outline.

    Returns
    -------
    RenderedChromosome

    Examples
    --------
    >>> ideo = load_ideogram()["1"]
    >>> c = render_straight(ideo, length_px=80, width_px=14, rng=np.random.default_rng(0))
    >>> c.axis[0].tolist(), c.axis[-1].tolist(), round(c.centromere[1], 1)
    ([12.0, 4.0], [12.0, 84.0], 43.2)
    """
    length = float(length_px)
    width = float(width_px)
    if length <= 2 or width <= 2:
        raise ValueError(f"length_px and width_px must exceed 2 px, got {length_px}, {width_px}")
    pad = int(np.ceil(2.0 + 2.0 * band_blur))
    h = int(np.ceil(length)) + 2 * pad + 1
    w = int(np.ceil(width * (1.0 + telomere_splay))) + 2 * pad + 1
    w += (w + 1) % 2  # odd width: the axis is on a pixel column
    cx = (w - 1) / 2.0
    top = float(pad)

    s = np.arange(h, dtype=np.float64) - top  # axis coordinate of each row
    s_c = ideo.centromere_index * length
    gap = float(np.clip(chromatid_gap, 0.0, width / 3.0))
    rc0 = (width - gap) / 4.0
    chromatid_dip = float(np.clip(0.35 * gap, 0.0, 0.6))
    sigma_c = max(1.0, 0.3 * width)
    cons = constriction * np.exp(-0.5 * ((s - s_c) / sigma_c) ** 2)
    for band in ideo.bands:  # satellite stalks of acrocentrics are thin
        if band.stain == "stalk":
            a, b = (v / ideo.length * length for v in (band.start, band.stop))
            cons = np.maximum(
                cons, 0.45 * (1.0 - _smoothstep(np.abs(s - (a + b) / 2) - (b - a) / 2))
            )
    rc = rc0 * (1.0 - 0.6 * cons)
    splay_amp = rng.uniform(0.0, telomere_splay * width, size=2)
    tel = splay_amp[0] * np.exp(-np.clip(s, 0, None) / (1.5 * rc0)) + splay_amp[1] * np.exp(
        -np.clip(length - s, 0, None) / (1.5 * rc0)
    )
    off = (gap / 2.0 + rc0) * (1.0 - cons) + tel / 2.0

    x = np.abs(np.arange(w, dtype=np.float64)[None, :] - cx)
    half = off + rc  # half-width of the envelope of both chromatids
    cap = np.clip(np.minimum(s, length - s) / (0.5 * width), 0.0, 1.0)
    half_eff = (half * np.sqrt(1.0 - (1.0 - cap) ** 2))[:, None]  # rounded telomeres
    edge = max(0.6, 0.12 * width)
    mask = (x <= half_eff) & (half_eff > 0)
    envelope = _smoothstep((half_eff - x) / edge + 0.5) * (half_eff > 0)
    # each chromatid is a cylinder: thicker (darker) along its own centre line
    u = np.clip((x - off[:, None]) / rc[:, None], -1.0, 1.0)
    shading = 0.8 + 0.2 * np.sqrt(1.0 - u**2)
    groove = 1.0 - chromatid_dip * np.exp(-0.5 * (x / max(0.5, gap)) ** 2)
    profile = envelope * shading * groove

    s_px, band = _band_profile(ideo, length, rng, band_blur, density_jitter)
    band_rows = np.interp(s, s_px, band)

    noise = rng.normal(0.0, 1.0, size=(h, w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=0.9, borderType=cv2.BORDER_REFLECT)
    noise /= max(float(noise.std()), 1e-6)
    # a darker rim just inside the outline, as in real bright-field chromosomes
    rim_od = rim * np.exp(-0.5 * ((half_eff - x - 1.0) / 1.0) ** 2) * envelope
    image = contrast * (band_rows[:, None] * profile + rim_od) * (1.0 + texture * noise)
    image = np.clip(image, 0.0, None).astype(np.float32)

    n_axis = max(2, int(np.ceil(length)) + 1)
    axis = np.stack([np.full(n_axis, cx), top + np.linspace(0.0, length, n_axis)], axis=1)
    return RenderedChromosome(
        image=image,
        mask=mask,
        centromere=(cx, top + s_c),
        polygon=mask_polygon(mask),
        axis=axis,
        label=ideo.label,
    )


def _curvature_profile(
    s: np.ndarray, length: float, curvature: float, profile: BendProfile, rng
) -> np.ndarray:
    """Curvature k(s) (rad/px) with ``sum |k| ds == |curvature|`` over ``[0, length]``."""
    inside = (s >= 0) & (s <= length)
    if profile == "arc":
        k = np.where(inside, 1.0, 0.0)
    else:
        r = rng if rng is not None else np.random.default_rng(0)
        if profile == "kink":
            s0 = r.uniform(0.3, 0.7) * length
            sig = r.uniform(0.12, 0.25) * length
            k = np.exp(-0.5 * ((s - s0) / sig) ** 2) * inside
        elif profile == "s":
            s0, s1 = r.uniform(0.2, 0.4) * length, r.uniform(0.6, 0.8) * length
            sig = 0.12 * length
            k = (
                np.exp(-0.5 * ((s - s0) / sig) ** 2) - np.exp(-0.5 * ((s - s1) / sig) ** 2)
            ) * inside
        else:
            raise ValueError(f"unknown bend profile {profile!r}; use 'arc', 'kink' or 's'")
    ds = s[1] - s[0]
    total = np.abs(k).sum() * ds
    return k * (abs(curvature) / total) * np.sign(curvature) if total > 0 else k * 0.0


def bend(
    chrom: RenderedChromosome,
    curvature: float,
    *,
    rng: np.random.Generator | None = None,
    profile: BendProfile | None = None,
) -> RenderedChromosome:
    """Bend a straight chromosome along its axis by a known total angle.

    The straight axis becomes a smooth curve whose tangent turns by ``curvature`` radians
    in total (the integral of ``|k(s)|`` along the axis): a uniform arc, a kink
    concentrated around one point, or an S-bend (two opposite turns). Every point at axis
    position ``s`` and signed normal offset ``n`` maps to ``P(s) + n N(s)``, so lengths
    along the axis are preserved; image, mask, centromere, polygon and axis are mapped
    consistently (the polygon is re-traced from the bent mask).

    Parameters
    ----------
    chrom : RenderedChromosome
        A chromosome with a straight axis (any orientation).
    curvature : float
        Total bend angle in radians; the sign picks the direction, 0 returns a copy.
    rng : numpy.random.Generator, optional
        Picks the profile (when ``profile`` is None) and where a kink/S-bend sits.
        Without it the bend is a uniform arc.
    profile : {"arc", "kink", "s"}, optional
        Curvature profile; default ``"arc"`` without ``rng``, random with it.

    Returns
    -------
    RenderedChromosome
        In a new canvas large enough to hold the bent chromosome.

    Raises
    ------
    ValueError
        If the axis is not straight.

    Examples
    --------
    >>> c = render_straight(load_ideogram()["7"], length_px=60, width_px=12,
    ...                     rng=np.random.default_rng(1))
    >>> b = bend(c, np.pi / 3)
    >>> abs(b.length_px - c.length_px) < 1.0, abs(int(b.mask.sum()) / int(c.mask.sum()) - 1) < 0.05
    (True, True)
    """
    if curvature == 0:
        return replace(
            chrom,
            image=chrom.image.copy(),
            mask=chrom.mask.copy(),
            polygon=chrom.polygon.copy(),
            axis=chrom.axis.copy(),
        )
    origin = chrom.axis[0].astype(np.float64)
    chord = chrom.axis[-1] - origin
    length = float(np.linalg.norm(chord))
    t0 = chord / length
    n0 = np.array([t0[1], -t0[0]])  # (1, 0) for a vertical axis pointing down
    dev = np.abs((chrom.axis - origin) @ n0).max()
    if dev > 1.0:
        raise ValueError(f"bend expects a straight axis (max deviation {dev:.2f} px)")
    if profile is None:
        profile = "arc" if rng is None else rng.choice(["arc", "arc", "kink", "s"]).item()

    h, w = chrom.image.shape
    ext = float(h + w)
    ds = 0.25
    s = np.arange(-ext, length + ext + ds, ds)
    k = _curvature_profile(s, length, curvature, profile, rng)
    phi = np.concatenate([[0.0], np.cumsum((k[1:] + k[:-1]) / 2.0) * ds])
    cos, sin = np.cos(phi), np.sin(phi)
    tang = np.stack([cos * t0[0] - sin * t0[1], sin * t0[0] + cos * t0[1]], axis=1)
    norm = np.stack([cos * n0[0] - sin * n0[1], sin * n0[0] + cos * n0[1]], axis=1)
    steps = (tang[1:] + tang[:-1]) / 2.0 * ds
    pts = np.concatenate([[np.zeros(2)], np.cumsum(steps, axis=0)])
    i0 = int(np.argmin(np.abs(s)))
    pts = pts - pts[i0] + origin  # P(0) = origin (p-ter stays put)

    def forward(xy: np.ndarray) -> np.ndarray:
        rel = np.asarray(xy, np.float64).reshape(-1, 2) - origin
        sq, nq = rel @ t0, rel @ n0
        px = np.interp(sq, s, pts[:, 0]) + nq * np.interp(sq, s, norm[:, 0])
        py = np.interp(sq, s, pts[:, 1]) + nq * np.interp(sq, s, norm[:, 1])
        return np.stack([px, py], axis=1)

    support = chrom.mask | (chrom.image > 1e-3)
    ys, xs = np.nonzero(support)
    mapped = forward(np.stack([xs, ys], axis=1).astype(np.float64))
    margin = 3.0
    lo = np.floor(mapped.min(axis=0) - margin)
    hi = np.ceil(mapped.max(axis=0) + margin)
    out_w, out_h = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1

    sel = (s >= -margin - w) & (s <= length + margin + w)
    tree = cKDTree(pts[sel])
    gx, gy = np.meshgrid(np.arange(out_w) + lo[0], np.arange(out_h) + lo[1])
    q = np.stack([gx.ravel(), gy.ravel()], axis=1)
    _, idx = tree.query(q)
    idx = np.flatnonzero(sel)[idx]
    delta = q - pts[idx]
    n_off = (delta * norm[idx]).sum(axis=1)
    t_off = (delta * tang[idx]).sum(axis=1)
    src = origin + (s[idx] + t_off)[:, None] * t0 + n_off[:, None] * n0
    map_x = src[:, 0].reshape(out_h, out_w).astype(np.float32)
    map_y = src[:, 1].reshape(out_h, out_w).astype(np.float32)
    image = cv2.remap(chrom.image, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
    mask_f = cv2.remap(
        chrom.mask.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0
    )
    mask = mask_f >= 0.5
    axis = forward(chrom.axis) - lo
    cen = forward(np.array(chrom.centromere))[0] - lo
    return RenderedChromosome(
        image=image,
        mask=mask,
        centromere=(float(cen[0]), float(cen[1])),
        polygon=mask_polygon(mask),
        axis=axis,
        label=chrom.label,
    )


def rotate(chrom: RenderedChromosome, angle_deg: float) -> RenderedChromosome:
    """Rotate a chromosome about its image centre into a canvas that holds it all.

    Parameters
    ----------
    chrom : RenderedChromosome
    angle_deg : float
        Counter-clockwise as displayed (OpenCV convention).

    Returns
    -------
    RenderedChromosome

    Examples
    --------
    >>> c = render_straight(load_ideogram()["21"], length_px=20, width_px=10,
    ...                     rng=np.random.default_rng(2))
    >>> r = rotate(c, 90.0)
    >>> r.shape == c.shape[::-1], bool(r.axis[0, 0] < r.axis[-1, 0])
    (True, True)
    """
    h, w = chrom.image.shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    mat = cv2.getRotationMatrix2D(centre, float(angle_deg), 1.0)
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    rc = corners @ mat[:, :2].T + mat[:, 2]
    lo = np.floor(rc.min(axis=0) + 1e-6)
    hi = np.ceil(rc.max(axis=0) - 1e-6)
    mat[:, 2] -= lo
    size = (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
    image = cv2.warpAffine(chrom.image, mat, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    mask = (
        cv2.warpAffine(
            chrom.mask.astype(np.float32), mat, size, flags=cv2.INTER_LINEAR, borderValue=0.0
        )
        >= 0.5
    )

    def fwd(xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, np.float64).reshape(-1, 2) @ mat[:, :2].T + mat[:, 2]

    cen = fwd(np.array(chrom.centromere))[0]
    return RenderedChromosome(
        image=image,
        mask=mask,
        centromere=(float(cen[0]), float(cen[1])),
        polygon=mask_polygon(mask),
        axis=fwd(chrom.axis),
        label=chrom.label,
    )


def render_chromosome(
    label: str,
    rng: np.random.Generator,
    *,
    ideogram: dict[str, ChromosomeIdeogram] | int = 400,
    px_per_unit: float,
    width_px: float,
    max_bend: float = np.pi / 3,
    rotation: bool = True,
    length_jitter: float = 0.05,
    **render_kwargs: float,
) -> RenderedChromosome:
    """Straight render, then a random bend, then a random rotation.

    Parameters
    ----------
    label : str
        Canonical label.
    rng : numpy.random.Generator
    ideogram : dict or int, optional
        Ideogram mapping, or a resolution for :func:`load_ideogram`.
    px_per_unit : float
        Pixels per ISCN unit (chromosome 1 is ~15100 units at 400 bands).
    width_px : float
        Chromosome width in pixels.
    max_bend : float, optional
        Largest total bend angle in radians (limited further for short chromosomes so
        that the inner edge keeps a positive radius).
    rotation : bool, optional
        Rotate by a uniform random angle.
    length_jitter : float, optional
        Relative standard deviation of the per-chromosome length (uneven condensation).
    **render_kwargs
        Passed to :func:`render_straight`.

    Returns
    -------
    RenderedChromosome

    Examples
    --------
    >>> c = render_chromosome("X", np.random.default_rng(3), px_per_unit=0.006, width_px=12)
    >>> c.label, bool(c.mask.any())
    ('X', True)
    """
    ideo_map = load_ideogram(ideogram) if isinstance(ideogram, int) else ideogram
    ideo = ideo_map[label]
    length = ideo.length * px_per_unit * float(np.clip(1 + rng.normal(0, length_jitter), 0.8, 1.2))
    width = float(width_px) * float(rng.uniform(0.93, 1.07))
    chrom = render_straight(ideo, length_px=length, width_px=width, rng=rng, **render_kwargs)
    limit = min(float(max_bend), length / (0.8 * width))
    theta = float(rng.uniform(-1.0, 1.0)) * limit
    if abs(theta) > 0.05:
        chrom = bend(chrom, theta, rng=rng)
    if rotation:
        chrom = rotate(chrom, float(rng.uniform(0.0, 360.0)))
    return chrom
