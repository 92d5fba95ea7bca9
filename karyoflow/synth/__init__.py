"""Synthetic G-banded chromosome data: the project's embedded default dataset.

* :mod:`karyoflow.synth.ideogram` - ISCN band ideograms (packaged, CC0).
* :mod:`karyoflow.synth.render` - single chromosomes: straight, bent, rotated.
* :mod:`karyoflow.synth.metaphase` - karyotypes and whole metaphase spreads.
* :mod:`karyoflow.synth.overlaps` - labelled overlapping chromosome pairs.
* :mod:`karyoflow.synth.dataset` - :func:`synthesize`, the whole dataset on disk.
"""

from __future__ import annotations

from karyoflow.synth.dataset import DEFAULT_PARAMS, resolve_params, synthesize
from karyoflow.synth.ideogram import Band, ChromosomeIdeogram, load_ideogram
from karyoflow.synth.metaphase import (
    Metaphase,
    compose_metaphase,
    iscn_karyotype,
    karyotype_labels,
)
from karyoflow.synth.overlaps import make_overlap_pair, od_from_grey
from karyoflow.synth.render import (
    RenderedChromosome,
    bend,
    od_to_grey,
    render_chromosome,
    render_straight,
    rotate,
)

__all__ = [
    "DEFAULT_PARAMS",
    "Band",
    "ChromosomeIdeogram",
    "Metaphase",
    "RenderedChromosome",
    "bend",
    "compose_metaphase",
    "iscn_karyotype",
    "karyotype_labels",
    "load_ideogram",
    "make_overlap_pair",
    "od_from_grey",
    "od_to_grey",
    "render_chromosome",
    "render_straight",
    "resolve_params",
    "rotate",
    "synthesize",
]
