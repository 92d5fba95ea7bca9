"""ISCN karyotype strings: write, parse, compare and validate numerical karyotypes.

One module for every ISCN string karyoflow reads or writes:

* :func:`iscn_karyotype` and :func:`iscn_from_counts` write the numerical summary of a
  cell (``"47,XY,+21"``, ``"45,X"``);
* :func:`mosaic_iscn` writes a case of several cell lines in the ISCN 2020/2024 mosaic
  form (``"mos 47,XX,+21[4]/46,XX[16]"``: abnormal lines first, largest first, the
  normal line last);
* :func:`parse_karyotype` and :func:`compare_karyotype` read the (often partial) truth
  strings of real datasets (``"46"``, ``"47,+21"``, ``"normal"``);
* :func:`validate_iscn` checks a string with the ``iscn-authenticator`` rule engine
  when it is installed (a development dependency) and, always, with the numerical
  checks that engine leaves out (count consistent with the changes, no unknown token,
  every cell line of a mosaic).

References
----------
.. [1] McGowan-Jordan J, Hastings RJ, Moore S (eds.). ISCN 2020: An International System
   for Human Cytogenomic Nomenclature. Karger, 2020 (mosaics: section 11.1.5).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from karyoflow.labels import LABELS, canonical_label, label_index

__all__ = [
    "NORMAL",
    "ParsedKaryotype",
    "compare_karyotype",
    "counts_from_iscn",
    "is_normal_iscn",
    "iscn_from_counts",
    "iscn_karyotype",
    "mosaic_iscn",
    "parse_karyotype",
    "validate_iscn",
]

#: Truth token for "numerically normal, sex not stated" (46,XX or 46,XY).
NORMAL = "normal"

AUTOSOMES: tuple[str, ...] = LABELS[:22]
_X, _Y = label_index("X"), label_index("Y")


def iscn_from_counts(counts: ArrayLike) -> str:
    """ISCN numeric summary of per-class chromosome counts.

    Parameters
    ----------
    counts : array_like of int, shape (24,)
        Copies of 1..22, X, Y (:data:`karyoflow.labels.LABELS` order).

    Returns
    -------
    str
        Count, sex chromosomes (X before Y), then autosomal gains ``+N`` and losses
        ``-N`` in chromosome order.

    Examples
    --------
    >>> c = np.full(24, 2); c[22], c[23] = 1, 1
    >>> iscn_from_counts(c)
    '46,XY'
    >>> c[20] = 3; iscn_from_counts(c)
    '47,XY,+21'
    """
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    if c.shape != (len(LABELS),) or c.min() < 0:
        raise ValueError(f"counts must be {len(LABELS)} non-negative integers, got {c.tolist()}")
    parts = [str(int(c.sum())), "X" * int(c[_X]) + "Y" * int(c[_Y])]
    for i, lab in enumerate(AUTOSOMES):
        delta = int(c[i]) - 2
        parts += [f"+{lab}"] * max(delta, 0) + [f"-{lab}"] * max(-delta, 0)
    return ",".join(p for p in parts if p)


def iscn_karyotype(labels: Sequence[str]) -> str:
    """ISCN numeric summary of a cell's chromosome labels.

    Parameters
    ----------
    labels : sequence of str
        Chromosome names (any form :func:`karyoflow.labels.canonical_label` accepts).

    Returns
    -------
    str
        As :func:`iscn_from_counts`.

    Examples
    --------
    >>> normal = [str(i) for i in range(1, 23)] * 2
    >>> iscn_karyotype(normal + ["X", "Y", "21"])
    '47,XY,+21'
    >>> iscn_karyotype(normal + ["X"]), iscn_karyotype(normal + ["X", "X", "Y"])
    ('45,X', '47,XXY')
    """
    counts = Counter(canonical_label(lab) for lab in labels)
    return iscn_from_counts([counts[lab] for lab in LABELS])


def counts_from_iscn(text: str) -> np.ndarray:
    """Per-class counts ``(24,)`` of a full numerical ISCN summary (inverse of
    :func:`iscn_from_counts`).

    Raises
    ------
    ValueError
        If ``text`` is not a full numerical summary with a sex part.

    Examples
    --------
    >>> counts_from_iscn("47,XXY").tolist()[-2:], int(counts_from_iscn("47,XY,+21")[20])
    ([2, 1], 3)
    """
    parsed = parse_karyotype(text)
    if parsed is None or parsed.sex is None:
        raise ValueError(f"not a full numerical ISCN summary: {text!r}")
    counts = np.full(len(LABELS), 2, dtype=np.int64)
    counts[_X], counts[_Y] = parsed.sex.count("X"), parsed.sex.count("Y")
    for tok in parsed.changes or ():
        if tok[1:] in ("X", "Y"):
            continue  # the sex part already holds the sex chromosomes
        counts[label_index(tok[1:])] += 1 if tok[0] == "+" else -1
    if int(counts.sum()) != parsed.count or counts.min() < 0:
        raise ValueError(f"{text!r}: the count {parsed.count} does not fit the changes")
    return counts


def is_normal_iscn(text: str) -> bool:
    """Whether a summary is a normal karyotype (``46,XX`` or ``46,XY``)."""
    return str(text).replace(" ", "") in ("46,XX", "46,XY")


@dataclass(frozen=True)
class ParsedKaryotype:
    """What a karyotype string states (``None`` = not stated).

    Attributes
    ----------
    count : int
        Chromosome count.
    sex : str or None
        Sex-chromosome complement (``"XY"``, ``"X"``, ``"XXY"``, ``""`` for none).
    changes : tuple of str or None
        Numeric changes relative to the normal complement (``"+21"``, ``"-X"``), sorted;
        ``None`` for a count-only string such as ``"46"``.
    """

    count: int
    sex: str | None
    changes: tuple[str, ...] | None


_KARYOTYPE = re.compile(r"^(\d{1,3})(?:,(XO|X0|[XY]+))?((?:,[+-](?:\d{1,2}|X|Y))*)$")


def parse_karyotype(text: object) -> ParsedKaryotype | None:
    """Parse a numeric karyotype; ``None`` when it is not one (mosaic, structural, ...).

    Accepted: ``"46"`` (count only), ``"46,XX"``, ``"47,XY,+21"``, ``"45,X"``,
    ``"47,+21"``, ``"47,+X"``, ``"45,-21"`` (count and changes without the sex).

    Examples
    --------
    >>> parse_karyotype("47,+21")
    ParsedKaryotype(count=47, sex=None, changes=('+21',))
    >>> parse_karyotype("46"), parse_karyotype("44,XX/XY"), parse_karyotype("46,3,15")
    (ParsedKaryotype(count=46, sex=None, changes=None), None, None)
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    norm = re.sub(r"\s+", "", str(text)).upper()
    match = _KARYOTYPE.match(norm)
    if not match:
        return None
    count, sex, rest = match.groups()
    tokens = [tok for tok in rest.split(",") if tok]
    for tok in tokens:
        if tok[1:].isdigit() and not 1 <= int(tok[1:]) <= 22:
            return None
    if sex is not None:
        sex = "X" if sex in ("XO", "X0") else "X" * sex.count("X") + "Y" * sex.count("Y")
    if sex is None and not tokens:
        return ParsedKaryotype(int(count), None, None)
    return ParsedKaryotype(int(count), sex, tuple(sorted(tokens, key=_token_key)))


def _token_key(token: str) -> tuple[int, int]:
    return label_index(token[1:]), 0 if token[0] == "+" else 1


def _apply_sex_tokens(sex: str, tokens: list[str]) -> str | None:
    """Sex complement after ``+X``/``-Y``... (``-X`` is monosomy X, as in synth)."""
    counts = Counter(sex)
    for tok in tokens:
        sign, chrom = tok[0], tok[1:]
        if sign == "+":
            counts[chrom] += 1
        elif chrom == "X":
            counts = Counter("X")
        elif counts[chrom] > 0:
            counts[chrom] -= 1
        else:
            return None
    return "X" * counts["X"] + "Y" * counts["Y"]


def compare_karyotype(predicted_iscn: str, truth: object) -> bool | None:
    """Whether a predicted ISCN summary agrees with what a truth string states.

    Parameters
    ----------
    predicted_iscn : str
        A full summary from :func:`iscn_karyotype` (``"47,XY,+21"``).
    truth : str or None
        Full ISCN (``"47,XY,+21"``, ``"45,X"``, ``"46,XX"``), :data:`NORMAL`
        (``"normal"``: 46,XX or 46,XY) or a partial string: ``"46"`` (only the count is
        compared), ``"47,+21"`` / ``"45,-21"`` (count and autosomal changes; the sex
        chromosomes must be a normal XX/XY), ``"47,+X"`` (XXX or XXY), ``"47,+Y"``
        (XXY or XYY), ``"45,X"``.

    Returns
    -------
    bool or None
        ``None`` when the truth is missing or not a numeric karyotype (``"46,3,15"``,
        mosaic ``"44,XX/XY"``, structural rearrangements).

    Raises
    ------
    ValueError
        If ``predicted_iscn`` is not a full numeric ISCN summary.

    Examples
    --------
    >>> compare_karyotype("47,XY,+21", "47,+21"), compare_karyotype("47,XXY", "47,+21")
    (True, False)
    >>> compare_karyotype("47,XXY", "47,+X"), compare_karyotype("46,XY", "46")
    (True, True)
    >>> compare_karyotype("46,XY", "normal"), compare_karyotype("46,XY,-4,+5", "normal")
    (True, False)
    >>> print(compare_karyotype("46,XY", "46,3,15"))
    None
    """
    pred = parse_karyotype(predicted_iscn)
    if pred is None:
        raise ValueError(f"not a numeric ISCN summary: {predicted_iscn!r}")
    if isinstance(truth, str) and truth.strip().lower() == NORMAL:
        return is_normal_iscn(predicted_iscn)
    pred_sex = pred.sex or ""
    pred_auto = sorted(t for t in pred.changes or () if t[1:] not in ("X", "Y"))
    ref = parse_karyotype(truth)
    if ref is None:
        return None
    if ref.count != pred.count:
        return False
    if ref.changes is None:
        return True
    ref_auto = sorted(t for t in ref.changes if t[1:] not in ("X", "Y"))
    if ref_auto != pred_auto:
        return False
    sex_tokens = [t for t in ref.changes if t[1:] in ("X", "Y")]
    bases = [ref.sex] if ref.sex is not None else ["XX", "XY"]
    allowed = {_apply_sex_tokens(base, sex_tokens) for base in bases} - {None}
    return pred_sex in allowed


def mosaic_iscn(lines: Sequence[tuple[str, int]]) -> str:
    """ISCN of a case from its cell lines and the cells counted in each.

    Parameters
    ----------
    lines : sequence of (str, int)
        ``(karyotype, cells)`` per cell line (karyotypes as :func:`iscn_karyotype`).

    Returns
    -------
    str
        One line: the karyotype alone (``"47,XX,+21"``). Several: ``"mos "`` then the
        lines with their cell counts in brackets, separated by ``/``: abnormal lines
        first, the largest first, the normal line last (ISCN 2020, 11.1.5).

    Examples
    --------
    >>> mosaic_iscn([("46,XX", 16), ("47,XX,+21", 4)])
    'mos 47,XX,+21[4]/46,XX[16]'
    >>> mosaic_iscn([("47,XY,+21", 20)])
    '47,XY,+21'
    """
    kept = [(str(k), int(n)) for k, n in lines if int(n) > 0]
    if not kept:
        raise ValueError("a case needs at least one cell line with cells")
    if len({k for k, _ in kept}) != len(kept):
        raise ValueError(f"cell lines repeat a karyotype: {kept}")
    if len(kept) == 1:
        return kept[0][0]
    ordered = sorted(kept, key=lambda kn: (is_normal_iscn(kn[0]), -kn[1], kn[0]))
    return "mos " + "/".join(f"{k}[{n}]" for k, n in ordered)


_LINE = re.compile(r"^(?P<karyotype>[^\[\]/]+?)(?:\[(?P<cells>[1-9]\d*)\])?$")


def validate_iscn(text: str) -> list[str]:
    """Problems of an ISCN string karyoflow writes (empty list: valid).

    Checks each cell line (a mosaic ``mos A[n]/B[m]`` line by line, each with its cell
    count) for being a numerical summary whose count fits its changes, and passes the
    string to ``iscn_authenticator.validate_karyotype`` when that package is installed
    (it does not know the ``mos`` prefix nor bracketed counts of a single line, so it
    gets the lines without them).

    Examples
    --------
    >>> validate_iscn("mos 47,XX,+21[4]/46,XX[16]")
    []
    >>> validate_iscn("46,XY,+21")
    ['46,XY,+21: the count 46 does not fit the changes (47 chromosomes)']
    """
    text = str(text)
    problems: list[str] = []
    mosaic = text.startswith("mos ")
    body = text[4:] if mosaic else text
    lines = body.split("/")
    if mosaic and len(lines) < 2:
        problems.append(f"{text}: 'mos' needs at least two cell lines")
    if not mosaic and len(lines) > 1:
        problems.append(f"{text}: several cell lines without 'mos'")
    bare = []
    for line in lines:
        m = _LINE.match(line)
        if not m:
            problems.append(f"{line}: not a cell line")
            continue
        if mosaic and m.group("cells") is None:
            problems.append(f"{line}: a mosaic cell line needs its cell count [n]")
        karyotype = m.group("karyotype")
        bare.append(karyotype)
        parsed = parse_karyotype(karyotype)
        if parsed is None or parsed.sex is None:
            problems.append(f"{karyotype}: not a numerical karyotype with its sex chromosomes")
            continue
        counts = np.full(len(LABELS), 2, dtype=np.int64)
        counts[_X], counts[_Y] = parsed.sex.count("X"), parsed.sex.count("Y")
        for tok in parsed.changes or ():
            if tok[1:] not in ("X", "Y"):
                counts[label_index(tok[1:])] += 1 if tok[0] == "+" else -1
        if int(counts.sum()) != parsed.count:
            problems.append(
                f"{karyotype}: the count {parsed.count} does not fit the changes "
                f"({int(counts.sum())} chromosomes)"
            )
    try:
        from iscn_authenticator import validate_karyotype
    except ImportError:  # a runtime install without the dev extra: own checks only
        return problems
    # the engine does not know "mos", nor [n] on a single line: it gets the bare lines,
    # and a mosaic's body (its own form for several lines) as well
    for given in bare + ([body] if mosaic and len(lines) > 1 else []):
        result = validate_karyotype(given)
        problems += [f"{given}: {err}" for err in result.errors]
        ast = result.parsed
        parts = [] if ast is None else [ast, *(ast.cell_lines or [])]
        problems += [
            f"{given}: unrecognised token {a.raw!r}"
            for part in parts
            for a in part.abnormalities or []
            if a.type == "unknown"
        ]
    return problems
