"""Deterministic, stratified train/val/test splits by cell.

A cell (one metaphase or one karyogram) is the unit of splitting: all instances of a
cell share its split, so no cell is seen in training and evaluated in testing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["SPLITS", "assign_splits", "stable_seed"]

#: Split names in their canonical order.
SPLITS: tuple[str, ...] = ("train", "val", "test")


def stable_seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` that is stable across processes.

    Python's ``hash`` is salted per process; this is not.

    Examples
    --------
    >>> stable_seed(42, "cells") == stable_seed(42, "cells")
    True
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split names {sorted(unknown)}; expected {list(SPLITS)}")
    out = {s: float(fractions.get(s, 0.0)) for s in SPLITS}
    if any(v < 0 for v in out.values()):
        raise ValueError(f"split fractions must be >= 0, got {out}")
    total = sum(out.values())
    if not np.isclose(total, 1.0, atol=1e-6):
        raise ValueError(f"split fractions must sum to 1, got {total:g}")
    return out


def assign_splits(
    cells: Sequence[str],
    strata: Mapping[str, str] | None,
    fractions: Mapping[str, float],
    seed: int,
    preset: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Assign every cell to a split, stratified and deterministic.

    Cells are grouped by stratum (e.g. karyotype or sex), shuffled within each stratum
    with a seed derived from ``seed`` and the stratum name, and dealt out so that each
    split's share of every stratum tracks ``fractions`` (to within one cell).

    Parameters
    ----------
    cells : sequence of str
        Cell ids; duplicates are ignored. Order does not matter.
    strata : mapping, optional
        Cell id -> stratum name. Cells without one share the stratum ``""``.
    fractions : mapping
        Split name (``train``, ``val``, ``test``) -> fraction; must sum to 1.
    seed : int
        Random seed.
    preset : mapping, optional
        Cell id -> split given by the dataset itself; kept as is.

    Returns
    -------
    dict
        Cell id -> split name.

    Examples
    --------
    >>> cells = [f"c{i}" for i in range(10)]
    >>> out = assign_splits(cells, None, {"train": 0.8, "test": 0.2}, seed=0)
    >>> sorted(out.values()).count("test")
    2
    >>> out == assign_splits(cells[::-1], None, {"train": 0.8, "test": 0.2}, seed=0)
    True
    """
    frac = _check_fractions(fractions)
    preset = dict(preset or {})
    strata = dict(strata or {})
    bad = {c: s for c, s in preset.items() if s not in SPLITS}
    if bad:
        first = next(iter(bad.items()))
        raise ValueError(f"cell {first[0]!r}: unknown preset split {first[1]!r}")
    free = sorted({c for c in cells if c not in preset})
    by_stratum: dict[str, list[str]] = {}
    for cell in free:
        by_stratum.setdefault(str(strata.get(cell, "")), []).append(cell)
    order: list[str] = []
    for name in sorted(by_stratum):
        members = np.array(by_stratum[name], dtype=object)
        rng = np.random.default_rng(stable_seed(seed, "split", name))
        order.extend(members[rng.permutation(len(members))].tolist())
    # Deal cells in stratum order; each goes to the split furthest below its quota.
    # Within a stratum this interleaves the splits proportionally; across strata the
    # running totals keep the global proportions too.
    names = [s for s in SPLITS if frac[s] > 0]
    weights = np.array([frac[s] for s in names])
    counts = np.zeros(len(names))
    wanted = set(cells)
    out = {c: preset[c] for c in sorted(preset) if c in wanted}
    for i, cell in enumerate(order):
        deficit = weights * (i + 1) - counts
        k = int(np.argmax(deficit))
        counts[k] += 1
        out[cell] = names[k]
    return out
