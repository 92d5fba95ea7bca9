"""ISCN G-band ideograms of the human karyotype.

The ideograms ship with the package (``karyoflow/data/ideogram/homo-sapiens-<res>.json``,
CC0, from the ``ideogram`` npm package). Each band line reads
``"<chr> <arm> <band> <iscn_start> <iscn_stop> <bp_start> <bp_stop> <stain> [<density>]"``.
ISCN units give every chromosome's relative length and its centromere position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from karyoflow.labels import LABELS, canonical_label

__all__ = ["RESOLUTIONS", "Band", "ChromosomeIdeogram", "load_ideogram", "stain_density"]

#: Band resolutions (bands per haploid set) shipped with the package.
RESOLUTIONS: tuple[int, ...] = (400, 550)

#: Optical density of each stain class (0 = background, ~1 = darkest band).
_STAIN_OD: dict[str, float] = {
    "gneg": 0.30,
    "acen": 0.52,
    "gvar": 0.82,
    "stalk": 0.22,
}
_GPOS_OD: dict[int, float] = {25: 0.45, 50: 0.60, 75: 0.78, 100: 0.95}


@dataclass(frozen=True)
class Band:
    """One cytogenetic band.

    Attributes
    ----------
    arm : str
        ``"p"`` or ``"q"``.
    name : str
        Band name within the arm, e.g. ``"36.3"``.
    start, stop : float
        ISCN units from the p-terminus.
    stain : str
        ``gneg``, ``gpos``, ``acen``, ``gvar`` or ``stalk``.
    density : int
        Staining density of ``gpos`` bands (25, 50, 75, 100); 0 otherwise.
    """

    arm: str
    name: str
    start: float
    stop: float
    stain: str
    density: int

    @property
    def optical_density(self) -> float:
        """Nominal optical density of this band (see :func:`stain_density`)."""
        return stain_density(self.stain, self.density)


@dataclass(frozen=True)
class ChromosomeIdeogram:
    """Band layout of one chromosome.

    Attributes
    ----------
    label : str
        Canonical label (``"1"``..``"22"``, ``"X"``, ``"Y"``).
    bands : tuple of Band
        Bands from p-ter to q-ter.
    length : float
        Total length in ISCN units.
    centromere : float
        ISCN position of the centromere (the boundary between the p and q ``acen`` bands).
    """

    label: str
    bands: tuple[Band, ...]
    length: float
    centromere: float

    @property
    def centromere_index(self) -> float:
        """Centromere index: the p-arm fraction of the length (0.5 = metacentric)."""
        return self.centromere / self.length


def stain_density(stain: str, density: int = 0) -> float:
    """Nominal optical density of a band stain.

    Parameters
    ----------
    stain : str
        ``gneg``, ``gpos``, ``acen``, ``gvar`` or ``stalk``.
    density : int, optional
        ``gpos`` density (25, 50, 75 or 100).

    Returns
    -------
    float
        0 = background, ~1 = darkest band.

    Examples
    --------
    >>> stain_density("gpos", 100) > stain_density("gpos", 25) > stain_density("gneg")
    True
    """
    if stain == "gpos":
        return _GPOS_OD.get(int(density), 0.6)
    try:
        return _STAIN_OD[stain]
    except KeyError:
        raise ValueError(f"unknown band stain {stain!r}") from None


def _parse(lines: list[str]) -> dict[str, ChromosomeIdeogram]:
    grouped: dict[str, list[Band]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 8:
            raise ValueError(f"malformed ideogram band line: {line!r}")
        label = canonical_label(parts[0])
        density = int(parts[8]) if len(parts) > 8 else 0
        band = Band(parts[1], parts[2], float(parts[3]), float(parts[4]), parts[7], density)
        grouped.setdefault(label, []).append(band)
    result: dict[str, ChromosomeIdeogram] = {}
    for label in LABELS:
        bands = tuple(sorted(grouped[label], key=lambda b: b.start))
        p_acen = [b.stop for b in bands if b.stain == "acen" and b.arm == "p"]
        if p_acen:
            centromere = max(p_acen)
        else:  # no acen band: use the p/q boundary
            centromere = max((b.stop for b in bands if b.arm == "p"), default=0.0)
        length = max(b.stop for b in bands)
        result[label] = ChromosomeIdeogram(label, bands, length, centromere)
    return result


@cache
def _load(resolution: int) -> dict[str, ChromosomeIdeogram]:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"ideogram resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    path = resources.files("karyoflow") / "data" / "ideogram" / f"homo-sapiens-{resolution}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return _parse(data["chrBands"])


def load_ideogram(resolution: int = 400) -> dict[str, ChromosomeIdeogram]:
    """Load the packaged ISCN ideogram (cached).

    Parameters
    ----------
    resolution : int, optional
        Bands per haploid set: 400 or 550.

    Returns
    -------
    dict of str to ChromosomeIdeogram
        Keyed by canonical label, in :data:`karyoflow.labels.LABELS` order.

    Examples
    --------
    >>> ideo = load_ideogram(400)
    >>> len(ideo), ideo["1"].length > ideo["21"].length
    (24, True)
    >>> round(ideo["1"].centromere_index, 2)
    0.49
    """
    return dict(_load(int(resolution)))
