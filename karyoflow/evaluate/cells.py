"""Calls of many cells, the review trade-off and the case (patient) consensus.

* :func:`call_cells` calls every cell of a split
  (:func:`~karyoflow.evaluate.hypotheses.call_karyotype`) and compares each call with
  the cell's truth;
* :func:`review_curve` and :func:`choose_min_posterior`: share of cells flagged for
  review against the exact-call accuracy of the cells left unflagged, and the posterior
  threshold that reaches a target accuracy (chosen on val);
* :func:`case_ids` and :func:`case_call`: cells grouped into cases (a regex on the cell
  id, or a table), one call per case from the cells' posteriors, in ISCN mosaic form
  where cell lines differ (:func:`karyoflow.iscn.mosaic_iscn`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from karyoflow.evaluate.hypotheses import (
    FALLBACK_MIN_POSTERIOR,
    KaryotypeCall,
    call_karyotype,
    karyotype_hypotheses,
    resolve_call_params,
    review_reasons,
)
from karyoflow.evaluate.karyotype import cell_groups
from karyoflow.iscn import (
    NORMAL,
    compare_karyotype,
    counts_from_iscn,
    is_normal_iscn,
    iscn_karyotype,
    mosaic_iscn,
    parse_karyotype,
)
from karyoflow.labels import LABELS
from karyoflow.readers.voc import numerical_truth

__all__ = [
    "DEFAULT_CASES",
    "call_cells",
    "case_call",
    "case_calls",
    "case_ids",
    "cell_truths",
    "choose_min_posterior",
    "configured_case_calls",
    "read_case_table",
    "review_curve",
    "truth_normal",
]

#: Case settings (config ``evaluate.cases``).
DEFAULT_CASES: dict[str, Any] = {
    "pattern": None,  # regex on the cell id; its first group (or the match) is the case
    "table": None,  # CSV cell_id,case_id (instead of pattern)
    "non_clonal": 0.1,  # share of a case's cells whose call is their own (random) change
    "min_cell_odds": 4.0,  # a cell shows a second cell line when it beats the case's by this
}


def cell_truths(manifest: pd.DataFrame) -> dict[str, str]:
    """Cell -> the numerical karyotype its truth states (``cell_karyotype``; else a
    ``cell_truth`` that states changes or a sex). Cells without one are left out.

    Examples
    --------
    >>> df = pd.DataFrame({"cell_id": ["a", "b", "c"], "cell_truth": ["45", "47,+21", "46"],
    ...                    "cell_karyotype": ["normal", "47,+21", ""]})
    >>> cell_truths(df)
    {'a': 'normal', 'b': '47,+21'}
    """
    out: dict[str, str] = {}
    cols = [c for c in ("cell_karyotype", "cell_truth") if c in manifest]
    for cell, group in manifest.groupby("cell_id", sort=True):
        for col in cols:
            value = next((str(v) for v in group[col] if isinstance(v, str) and v), "")
            if col == "cell_truth":
                value = numerical_truth(value)
            if value:
                out[str(cell)] = value
                break
    return out


def call_cells(
    proba: ArrayLike,
    cell_ids: ArrayLike,
    *,
    y_true: ArrayLike | None = None,
    truth: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, KaryotypeCall]]:
    """Call every cell and compare with its truth.

    Parameters
    ----------
    proba : array_like, shape (n, 24)
        Calibrated probabilities of all objects.
    cell_ids : array_like, shape (n,)
    y_true : array_like of int, shape (n,), optional
        True class of each object: instance accuracy per cell, and the truth of cells
        that ``truth`` does not cover (the ISCN of their true labels).
    truth : mapping, optional
        Cell -> truth string (:func:`karyoflow.iscn.compare_karyotype` forms).
    params : mapping, optional
        Call settings (:data:`~karyoflow.evaluate.hypotheses.DEFAULT_CALL`); an
        unresolved ``review.min_posterior: auto`` is the fallback 0.95.

    Returns
    -------
    (pandas.DataFrame, dict)
        One row per cell (first-appearance order): ``cell``, ``objects``, ``iscn``,
        ``posterior``, ``runner_up``, ``runner_up_posterior``, ``sex``,
        ``sex_posterior``, ``missing``, ``extra``, ``truth``, ``match`` (``None`` where
        the truth says nothing comparable), ``truth_normal``, ``call_normal``,
        ``correct`` (objects given their true class), ``review`` and ``reasons``;
        and cell -> :class:`KaryotypeCall`.
    """
    par = resolve_call_params(params)
    p = np.asarray(proba, dtype=np.float64)
    t = None if y_true is None else np.asarray(y_true, dtype=np.int64).reshape(-1)
    table = karyotype_hypotheses(par["prior"]) if par["mode"] == "hypotheses" else None
    rows, calls = [], {}
    for cell, idx in cell_groups(cell_ids, p.shape[0]):
        call = call_karyotype(p[idx], par, hypotheses=table)
        calls[str(cell)] = call
        prob = p[idx][np.arange(idx.size), call.labels] if idx.size else np.zeros(0)
        reasons = review_reasons(call, prob, par["review"])
        ref = (truth or {}).get(str(cell))
        if ref is None and t is not None:
            ref = iscn_karyotype([LABELS[int(k)] for k in t[idx]])
        match = compare_karyotype(call.iscn, ref) if ref and call.iscn != "0" else None
        rows.append(
            {
                "cell": str(cell),
                "objects": int(idx.size),
                "iscn": call.iscn,
                "posterior": round(call.posterior, 6) if math.isfinite(call.posterior) else None,
                "runner_up": call.runner_up,
                "runner_up_posterior": (
                    round(call.runner_up_posterior, 6)
                    if math.isfinite(call.runner_up_posterior)
                    else None
                ),
                "sex": call.sex,
                "sex_posterior": (
                    round(call.sex_posterior, 6) if math.isfinite(call.sex_posterior) else None
                ),
                "missing": " ".join(call.missing),
                "extra": int(call.extra.sum()),
                "truth": ref or "",
                "match": match,
                "truth_normal": truth_normal(ref),
                "call_normal": is_normal_iscn(call.iscn),
                "correct": None if t is None else int(np.sum(call.labels == t[idx])),
                "review": bool(reasons),
                "reasons": "; ".join(reasons),
            }
        )
    return pd.DataFrame(rows), calls


def truth_normal(truth: str | None) -> bool | None:
    """Whether a truth string says numerically normal (``None``: it does not say)."""
    if not truth:
        return None
    if truth.strip().lower() == NORMAL:
        return True
    parsed = parse_karyotype(truth)
    if parsed is None or (parsed.changes is None and parsed.sex is None):
        return None
    return parsed.count == 46 and not parsed.changes and parsed.sex in (None, "XX", "XY")


def review_curve(
    cells: pd.DataFrame,
    thresholds: Sequence[float] | None = None,
    *,
    other_reasons: bool = True,
) -> pd.DataFrame:
    """Share flagged vs exact-call accuracy of the unflagged cells, per posterior
    threshold (with the other review reasons as they are, or the posterior alone).

    Parameters
    ----------
    cells : pandas.DataFrame
        From :func:`call_cells` (``posterior``, ``reasons``, ``match``).
    thresholds : sequence of float, optional
        Default: 0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999.
    other_reasons : bool
        Flag for the other reasons too (count, uncertain chromosomes, sex, abnormal);
        ``False``: the posterior alone.

    Returns
    -------
    pandas.DataFrame
        ``min_posterior``, ``flagged_share``, ``unflagged``, ``unflagged_accuracy``
        (``NaN`` when no comparable cell is left), ``accuracy_all``.
    """
    grid = (
        [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
        if thresholds is None
        else list(thresholds)
    )
    known = cells[cells["match"].notna()] if len(cells) else cells
    other = (
        cells["reasons"]
        .fillna("")
        .str.split("; ")
        .apply(
            lambda rs: other_reasons and any(r and not r.startswith("low posterior") for r in rs)
        )
        if len(cells)
        else pd.Series(dtype=bool)
    )
    post = pd.to_numeric(cells.get("posterior", pd.Series(dtype=float)), errors="coerce")
    rows = []
    for thr in grid:
        flagged = other | (post.fillna(1.0) < thr)
        keep = ~flagged[known.index] if len(known) else pd.Series(dtype=bool)
        left = known[keep] if len(known) else known
        rows.append(
            {
                "min_posterior": float(thr),
                "flagged_share": float(flagged.mean()) if len(cells) else math.nan,
                "unflagged": len(left),
                "unflagged_accuracy": (
                    float(left["match"].astype(bool).mean()) if len(left) else math.nan
                ),
                "accuracy_all": (
                    float(known["match"].astype(bool).mean()) if len(known) else math.nan
                ),
            }
        )
    return pd.DataFrame(rows)


def choose_min_posterior(
    curve: pd.DataFrame, target: float, default: float = FALLBACK_MIN_POSTERIOR
) -> float:
    """The lowest threshold of ``curve`` whose unflagged accuracy reaches ``target``
    (``default`` when none does or the curve is empty).

    Examples
    --------
    >>> c = pd.DataFrame({"min_posterior": [0.0, 0.9, 0.99],
    ...                   "unflagged_accuracy": [0.9, 0.985, 1.0]})
    >>> choose_min_posterior(c, 0.98)
    0.9
    """
    ok = curve[curve["unflagged_accuracy"] >= float(target)]
    return float(ok["min_posterior"].min()) if len(ok) else float(default)


def case_ids(
    cells: Sequence[str],
    *,
    pattern: str | None = None,
    table: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Cell -> case: from a table, else a regex (first group, or the whole match),
    else every cell its own case. A cell the regex does not match is its own case.

    Examples
    --------
    >>> case_ids(["1101021", "1101022", "103081"], pattern=r"^(\\d+)\\d$")
    {'1101021': '110102', '1101022': '110102', '103081': '10308'}
    """
    out = {}
    rx = re.compile(pattern) if pattern else None
    for cell in cells:
        cell = str(cell)
        if table is not None and cell in table:
            out[cell] = str(table[cell])
            continue
        m = rx.search(cell) if rx else None
        out[cell] = (m.group(1) if m and m.groups() else m.group(0)) if m else cell
    return out


def _is_loss(line: str, constitutional: str) -> bool:
    try:
        return int(counts_from_iscn(line).sum()) < int(counts_from_iscn(constitutional).sum())
    except ValueError:
        return False


def case_call(
    calls: Sequence[KaryotypeCall], params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One call for the cells of a case.

    The constitutional karyotype ``H`` maximises
    ``log prior(H) + sum_j log((1 - a) * post_j(H) / prior(H) + a)`` over the
    hypotheses (``a`` = ``non_clonal``: a cell may show a change of its own). Cells whose
    own call ``L`` differs from ``H`` and is at least ``min_cell_odds`` times more probable
    than ``H`` in that cell form a second cell line when they are a clone in the ISCN
    sense (two cells with the same gain, three with the same loss); the case is then
    written as a mosaic.

    Parameters
    ----------
    calls : sequence of KaryotypeCall
        The case's cells (hypotheses mode).
    params : mapping, optional
        Over :data:`DEFAULT_CASES`, plus ``prior`` (the call's prior table).

    Returns
    -------
    dict
        ``iscn`` (``"47,XX,+21"`` or ``"mos 47,XX,+21[4]/46,XX[16]"``), ``karyotype``
        (the constitutional line), ``cells``, ``lines`` (``[(iscn, cells), ...]``),
        ``other_cells`` (cells in no line), ``posterior`` (of ``karyotype`` against
        the other hypotheses).

    Examples
    --------
    >>> labels = [i for i in range(22) for _ in range(2)] + [22, 22]
    >>> p = np.full((46, 24), 0.002); p[np.arange(46), labels] = 0.954
    >>> t21 = np.vstack([p, p[40:41]])
    >>> normal, trisomic = call_karyotype(p), call_karyotype(t21)
    >>> case_call([normal] * 16 + [trisomic] * 4)["iscn"]
    'mos 47,XX,+21[4]/46,XX[16]'
    >>> case_call([trisomic] * 3 + [normal])["iscn"]
    '47,XX,+21'
    """
    par = {**DEFAULT_CASES, **{k: v for k, v in dict(params or {}).items() if v is not None}}
    calls = [c for c in calls if c.posteriors]
    if not calls:
        raise ValueError("a case call needs cells called in the hypotheses mode")
    table = karyotype_hypotheses(par.get("prior"))
    alpha = float(par["non_clonal"])
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"non_clonal must be in [0, 1), got {alpha!r}")
    scores = {}
    for hyp in table:
        prior = math.exp(hyp.log_prior)
        total = hyp.log_prior
        for c in calls:
            total += math.log((1 - alpha) * c.posteriors.get(hyp.iscn, 0.0) / prior + alpha)
        scores[hyp.iscn] = total
    names = list(scores)
    vals = np.array([scores[k] for k in names])
    post = np.exp(vals - vals.max())
    post /= post.sum()
    karyotype = names[int(np.argmax(vals))]
    odds = float(par["min_cell_odds"])
    confident = Counter(
        c.iscn
        for c in calls
        if c.iscn != karyotype and c.posterior >= odds * c.posteriors.get(karyotype, 0.0)
    )
    lines = {karyotype: sum(c.iscn == karyotype for c in calls)}
    for line, n in confident.items():
        if n >= (3 if _is_loss(line, karyotype) else 2):
            lines[line] = n
    pairs = [(k, n) for k, n in lines.items() if n > 0]
    if not pairs:  # no cell is called the constitutional karyotype itself
        pairs = [(karyotype, len(calls))]
    return {
        "iscn": mosaic_iscn(pairs),
        "karyotype": karyotype,
        "cells": len(calls),
        "lines": pairs,
        "other_cells": len(calls) - sum(n for _, n in pairs),
        "posterior": float(post[names.index(karyotype)]),
    }


def case_calls(
    calls: Mapping[str, KaryotypeCall],
    cases: Mapping[str, str],
    *,
    truth: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`case_call` for every case; one row each, with the cells' truths.

    Returns
    -------
    pandas.DataFrame
        ``case``, ``cells``, ``iscn``, ``karyotype``, ``posterior``, ``other_cells``,
        ``truth`` (the cells' truths, ``|``-joined when they differ), ``match``
        (the constitutional karyotype against the most common truth).
    """
    by_case: dict[str, list[str]] = {}
    for cell in calls:
        by_case.setdefault(cases.get(cell, cell), []).append(cell)
    rows = []
    for case, members in sorted(by_case.items()):
        called = [calls[c] for c in members if calls[c].posteriors]
        if not called:
            continue
        res = case_call(called, params)
        truths = Counter((truth or {}).get(c, "") for c in members)
        truths.pop("", None)
        common = truths.most_common(1)[0][0] if truths else ""
        rows.append(
            {
                "case": case,
                "cells": res["cells"],
                "iscn": res["iscn"],
                "karyotype": res["karyotype"],
                "posterior": round(res["posterior"], 6),
                "other_cells": res["other_cells"],
                "truth": "|".join(sorted(truths)),
                "match": compare_karyotype(res["karyotype"], common) if common else None,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "case",
            "cells",
            "iscn",
            "karyotype",
            "posterior",
            "other_cells",
            "truth",
            "match",
        ],
    )


def read_case_table(path: str | Path | None) -> dict[str, str] | None:
    """``cell_id,case_id`` CSV -> dict (``None`` for no table).

    Raises
    ------
    ValueError
        ``"<file>: <reason>"`` for a missing file or wrong columns.
    """
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: case table not found")
    table = pd.read_csv(p, dtype=str, keep_default_na=False)
    if not {"cell_id", "case_id"} <= set(table.columns):
        raise ValueError(f"{p}: a case table needs the columns cell_id,case_id")
    return dict(zip(table["cell_id"], table["case_id"], strict=True))


def configured_case_calls(
    calls: Mapping[str, KaryotypeCall],
    cases: Mapping[str, Any] | None,
    *,
    prior: Mapping[str, Any] | None = None,
    truth: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """:func:`case_calls` with the cells grouped as config ``evaluate.cases`` says
    (``pattern`` or ``table``; neither: each cell its own case) and the call's
    ``prior``; cells called in the assignment mode are left out."""
    cfg = dict(cases or {})
    groups = case_ids(
        list(calls), pattern=cfg.get("pattern"), table=read_case_table(cfg.get("table"))
    )
    return case_calls(calls, groups, truth=truth, params={**cfg, "prior": prior})
