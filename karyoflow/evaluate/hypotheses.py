"""The karyotype call of a cell as inference over whole-cell hypotheses.

A per-chromosome classifier reads each object of a metaphase on its own; a
cytogeneticist reads the cell. :func:`call_karyotype` scores every karyotype hypothesis
``H`` of a table (:func:`karyotype_hypotheses`: 46,XX, 46,XY, the common numerical
abnormalities, any other single gain or loss) against all objects of the cell at once:

``score(H) = log prior(H) + max over assignments A of log P(objects | H, A)``

An assignment puts each object into one chromosome *slot* of ``H`` (class ``c``, one
slot per copy) or declares it an *extra object* (debris, a nucleus fragment, half of a
split chromosome); slots left empty are chromosomes the image does not show (outside
the field, hidden under another). With calibrated class probabilities ``p_i``
(:mod:`karyoflow.evaluate.calibration`) and a classifier trained class-balanced, an
object's likelihood of being a ``c`` relative to an average chromosome is
``24 p_i(c)``, so

* object ``i`` in a slot of class ``c`` costs ``-log(24 p_i(c))``;
* an extra object costs ``-log(extra_rate)``;
* an empty slot costs ``-log(missing_rate)`` (the chance that a given chromosome is
  not among the objects: outside the field, hidden under another, missed by a detector).

The best assignment is a linear assignment (Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`) on an ``n x (slots + n)`` matrix, one
per hypothesis. The posterior normalises ``exp(score)`` over the table (the best
assignment stands for the sum over assignments). Several simultaneous changes are not
in the table at all, and a single change must beat its prior: a 46-object cell with
three 5s and one 4 is a normal cell with one misread chromosome unless the classifier
is sure of both.

Defaults (:data:`DEFAULT_CALL`): priors for a general referral population of cultured
cells (trisomy 21 1 %, 18 0.4 %, 13 0.2 %, 45,X 0.4 %, 47,XXY 0.2 %, 47,XXX and
47,XYY 0.1 %, any other autosomal trisomy 0.02 % and monosomy 0.01 % each; the rest
normal, half male); a chromosome is missing from the objects with probability 0.001
(about 4.5 % of cells show one fewer: the share of normal Taichung cells counted at 45)
and an object is debris with probability 0.05.
A lab sets ``prior`` from its own referral population (the share of each abnormality
among its cells: a prenatal service after an abnormal scan sees far more trisomies),
and the two rates from its spreads (the share of normal cells counted at 45, divided by
46; the share of extra objects); karyograms cut by a person have neither missing nor
extra objects, and boxes from a detector have its miss and false-box rates (the rule
``evaluate_calls`` takes them from the detector's val split).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

from karyoflow.engine.params import merge_params
from karyoflow.evaluate.karyotype import check_proba
from karyoflow.iscn import is_normal_iscn, iscn_from_counts
from karyoflow.labels import LABELS, label_index

__all__ = [
    "DEFAULT_CALL",
    "FALLBACK_MIN_POSTERIOR",
    "Hypothesis",
    "KaryotypeCall",
    "call_karyotype",
    "karyotype_hypotheses",
    "resolve_call_params",
    "review_reasons",
    "review_threshold",
]

#: Review threshold where ``min_posterior: auto`` had no val split to be chosen on.
FALLBACK_MIN_POSTERIOR = 0.95

_N = len(LABELS)
_X, _Y = label_index("X"), label_index("Y")
_EPS = 1e-12

#: Call settings (config ``evaluate.call``); see the module docstring for the defaults.
DEFAULT_CALL: dict[str, Any] = {
    "mode": "hypotheses",  # hypotheses | assignment (the per-class assignment decoder)
    "prior": {
        "male": 0.5,  # share of male cells among the normal and autosomal hypotheses
        "trisomy": {"13": 0.002, "18": 0.004, "21": 0.01},
        "sex": {"X": 0.004, "XXY": 0.002, "XXX": 0.001, "XYY": 0.001},
        "other_gain": 0.0002,  # each other autosomal trisomy
        "other_loss": 0.0001,  # each autosomal monosomy
    },
    "missing_rate": 0.001,  # a given chromosome is not among the objects
    "extra_rate": 0.05,  # an object is not a chromosome (debris, a split chromosome)
    "review": {
        "min_posterior": "auto",  # below: flagged; "auto": chosen on val (target_accuracy)
        "target_accuracy": 0.98,  # exact calls among unflagged val cells, for "auto"
        "min_probability": 0.5,  # a chromosome below this (calibrated) is uncertain
        "max_uncertain": 2,  # more uncertain chromosomes than this: flagged
        "min_sex_posterior": 0.95,
        "count": True,  # a cell of other than 46 objects is flagged
        "abnormal": True,  # every abnormal call is flagged for review
        # a cell whose mean top probability is below this fraction of the median of the
        # model's validation cells is unlike its training data (0: off)
        "domain_ratio": 0.8,
    },
}


def resolve_call_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A fresh copy of :data:`DEFAULT_CALL` overlaid with ``params`` (nested dicts merged,
    ``None`` kept out); changing the result never changes the defaults.

    Examples
    --------
    >>> p = resolve_call_params({"prior": {"trisomy": {"21": 0.05}}})
    >>> p["prior"]["trisomy"]["21"], p["prior"]["trisomy"]["18"], p["missing_rate"]
    (0.05, 0.004, 0.001)
    """

    return merge_params(
        DEFAULT_CALL,
        params,
        what="evaluate.call option",
        nested=True,
        open_keys=("prior.trisomy", "prior.sex"),
        skip_none=True,
    )


@dataclass(frozen=True)
class Hypothesis:
    """One whole-cell karyotype hypothesis.

    Attributes
    ----------
    iscn : str
        Its ISCN summary (``"47,XX,+21"``).
    counts : numpy.ndarray
        Copies of each class, shape ``(24,)``.
    log_prior : float
        Natural log of its prior probability.
    """

    iscn: str
    counts: np.ndarray = field(repr=False)
    log_prior: float


def karyotype_hypotheses(prior: Mapping[str, Any] | None = None) -> list[Hypothesis]:
    """The hypothesis table: normal, every single autosomal gain and loss, the sex
    chromosome aneuploidies of ``prior["sex"]``.

    Parameters
    ----------
    prior : mapping, optional
        ``DEFAULT_CALL["prior"]`` form (merged over the defaults).

    Returns
    -------
    list of Hypothesis
        Normal first (46,XX, 46,XY); priors sum to 1.

    Raises
    ------
    ValueError
        Priors that are negative or sum to 1 or more before the normal cells.

    Examples
    --------
    >>> table = karyotype_hypotheses()
    >>> len(table), table[0].iscn, table[1].iscn
    (94, '46,XX', '46,XY')
    >>> round(sum(math.exp(h.log_prior) for h in table), 9)
    1.0
    """
    pri = resolve_call_params({"prior": prior})["prior"]
    male = float(pri["male"])
    if not 0.0 <= male <= 1.0:
        raise ValueError(f"prior.male must be in [0, 1], got {male!r}")
    named = {str(k): float(v) for k, v in (pri.get("trisomy") or {}).items()}
    sexes = {str(k).upper(): float(v) for k, v in (pri.get("sex") or {}).items()}
    gain, loss = float(pri["other_gain"]), float(pri["other_loss"])
    values = [*named.values(), *sexes.values(), gain, loss]
    if any(not (math.isfinite(v) and v >= 0) for v in values):
        raise ValueError(f"priors must be finite and >= 0, got {pri}")
    rows: list[tuple[np.ndarray, float]] = []

    def base(sex: str) -> np.ndarray:
        c = np.full(_N, 2, dtype=np.int64)
        c[_X], c[_Y] = sex.count("X"), sex.count("Y")
        return c

    auto: list[tuple[int, int, float]] = []
    for k in range(22):
        lab = LABELS[k]
        auto.append((k, +1, named.get(lab, gain)))
        auto.append((k, -1, loss))
    for chrom in named:
        if chrom not in LABELS[:22]:
            raise ValueError(f"prior.trisomy names {chrom!r}: autosomes 1..22 only")
    for sex in sexes:
        if not sex or set(sex) - {"X", "Y"} or "X" not in sex or sex in ("XX", "XY"):
            raise ValueError(f"prior.sex names {sex!r}: an abnormal complement such as X, XXY")
    abnormal = sum(p for _, _, p in auto) + sum(sexes.values())
    if abnormal >= 1.0:
        raise ValueError(f"abnormal priors sum to {abnormal:g}; they must leave room for normal")
    normal = 1.0 - abnormal
    for sex, share in (("XX", 1.0 - male), ("XY", male)):
        rows.append((base(sex), normal * share))
    for k, sign, p in auto:
        for sex, share in (("XX", 1.0 - male), ("XY", male)):
            c = base(sex)
            c[k] += sign
            rows.append((c, p * share))
    for sex, p in sexes.items():
        rows.append((base(sex), p))
    out = []
    for counts, p in rows:
        if p > 0:
            out.append(Hypothesis(iscn_from_counts(counts), counts, math.log(p)))
    return out


@dataclass(frozen=True)
class KaryotypeCall:
    """The call of one cell (:func:`call_karyotype`).

    Attributes
    ----------
    iscn : str
        Most probable karyotype.
    posterior : float
        Its posterior probability.
    runner_up, runner_up_posterior : str, float
        The second hypothesis.
    labels : numpy.ndarray
        Class index of each object in the best assignment, shape ``(n,)``; an extra
        object keeps its most probable class.
    extra : numpy.ndarray
        Boolean ``(n,)``: objects the call treats as extra (not a chromosome).
    missing : tuple of str
        Classes of the call's slots that no object fills.
    sex : str
        Sex chromosomes of the call (``"XY"``, ``"X"``, ``"XXY"``).
    sex_posterior : float
        Posterior share of the hypotheses with the same sex chromosomes.
    top : tuple of (str, float)
        The five most probable hypotheses with their posteriors.
    posteriors : dict
        ISCN -> posterior of every hypothesis (empty in the assignment mode).
    mode : str
        ``"hypotheses"``, or ``"assignment"`` (posterior not defined: NaN).
    """

    iscn: str
    posterior: float
    runner_up: str
    runner_up_posterior: float
    labels: np.ndarray
    extra: np.ndarray
    missing: tuple[str, ...]
    sex: str
    sex_posterior: float
    top: tuple[tuple[str, float], ...] = ()
    mode: str = "hypotheses"
    posteriors: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def abnormal(self) -> bool:
        """Whether the call is not 46,XX / 46,XY."""
        return not is_normal_iscn(self.iscn)


def _sex_of(counts: np.ndarray) -> str:
    return "X" * int(counts[_X]) + "Y" * int(counts[_Y])


def call_karyotype(
    proba: ArrayLike,
    params: Mapping[str, Any] | None = None,
    *,
    hypotheses: Sequence[Hypothesis] | None = None,
) -> KaryotypeCall:
    """Call the karyotype of one cell from its objects' class probabilities.

    Parameters
    ----------
    proba : array_like, shape (n, 24)
        Calibrated class probabilities of the cell's objects.
    params : mapping, optional
        Over :data:`DEFAULT_CALL` (``mode``, ``prior``, ``missing_rate``,
        ``extra_rate``, ``extra_copy_penalty`` and ``max_copies`` for the assignment
        mode).
    hypotheses : sequence of Hypothesis, optional
        A prepared table (:func:`karyotype_hypotheses`; saves rebuilding it per cell).

    Returns
    -------
    KaryotypeCall

    Examples
    --------
    A normal cell in which a 4 is read as a 5 with 70 % confidence: still 46,XY.

    >>> labels = [i for i in range(22) for _ in range(2)] + [22, 23]
    >>> p = np.full((46, 24), 0.002); p[np.arange(46), labels] = 0.954
    >>> p[6] = 0.002; p[6, [3, 4]] = [0.254, 0.7]
    >>> c = call_karyotype(p); c.iscn, int(c.labels[6]), c.posterior > 0.9
    ('46,XY', 3, True)

    A third, confident 21 in a complete cell is a trisomy; with a 7 missing as well, it
    is more likely a misread chromosome (one change or two artefacts, against none):

    >>> q = p.copy(); q[6] = 0.002; q[6, 3] = 0.954
    >>> call_karyotype(np.vstack([q, q[40:41]])).iscn
    '47,XY,+21'
    >>> call_karyotype(np.vstack([np.delete(q, 12, 0), q[40:41]])).iscn
    '46,XY'
    """
    par = resolve_call_params(params)
    p = check_proba(proba)
    n = p.shape[0]
    if par["mode"] == "assignment":
        return _assignment_call(p, par)
    if par["mode"] != "hypotheses":
        raise ValueError(f"call mode must be 'hypotheses' or 'assignment', not {par['mode']!r}")
    table = list(hypotheses) if hypotheses is not None else karyotype_hypotheses(par["prior"])
    miss_rate, extra_rate = float(par["missing_rate"]), float(par["extra_rate"])
    if not (0 < miss_rate < 1 and 0 < extra_rate < 1):
        raise ValueError("missing_rate and extra_rate must be in (0, 1)")
    miss_cost = -math.log(miss_rate)
    extra_cost = -math.log(extra_rate)
    # object i in a slot of class c, relative to leaving the slot empty
    slot_cost = -np.log(_N * np.maximum(p, _EPS)) - miss_cost
    scores = np.empty(len(table))
    results: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for h, hyp in enumerate(table):
        slot_class = np.repeat(np.arange(_N), hyp.counts)
        n_slots = slot_class.size
        cost = np.concatenate([slot_cost[:, slot_class], np.full((n, n), extra_cost)], axis=1)
        if n:
            rows, cols = linear_sum_assignment(cost)
            total = float(cost[rows, cols].sum())
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
            total = 0.0
        scores[h] = hyp.log_prior - (total + n_slots * miss_cost)
        results.append((rows, cols, slot_class))
    post = np.exp(scores - scores.max())
    post /= post.sum()
    order = np.argsort(-post, kind="stable")
    best, second = int(order[0]), int(order[1]) if len(order) > 1 else int(order[0])
    rows, cols, slot_class = results[best]
    labels = p.argmax(axis=1).astype(np.int64)
    extra = np.ones(n, dtype=bool)
    in_slot = cols < slot_class.size
    labels[rows[in_slot]] = slot_class[cols[in_slot]]
    extra[rows[in_slot]] = False
    filled = np.bincount(slot_class[cols[in_slot]], minlength=_N)
    missing_counts = table[best].counts - filled
    missing = tuple(LABELS[c] for c in range(_N) for _ in range(int(missing_counts[c])))
    sex = _sex_of(table[best].counts)
    sex_post = float(sum(post[h] for h, hyp in enumerate(table) if _sex_of(hyp.counts) == sex))
    return KaryotypeCall(
        iscn=table[best].iscn,
        posterior=float(post[best]),
        runner_up=table[second].iscn,
        runner_up_posterior=float(post[second]),
        labels=labels,
        extra=extra,
        missing=missing,
        sex=sex,
        sex_posterior=min(sex_post, 1.0),
        top=tuple((table[int(h)].iscn, float(post[h])) for h in order[:5]),
        posteriors={hyp.iscn: float(post[h]) for h, hyp in enumerate(table)},
    )


def _assignment_call(p: np.ndarray, par: Mapping[str, Any]) -> KaryotypeCall:
    """The per-class assignment decoder (:func:`karyoflow.evaluate.karyotype.decode_cell`)
    as a call: every object is a chromosome, no posterior."""
    from karyoflow.evaluate.karyotype import decode_cell
    from karyoflow.iscn import iscn_karyotype

    kw = {k: par[k] for k in ("extra_copy_penalty", "max_copies") if par.get(k) is not None}
    n = p.shape[0]
    labels = decode_cell(p, **kw).labels if n else np.zeros(0, dtype=np.int64)
    iscn = iscn_karyotype([LABELS[int(k)] for k in labels]) if n else "0"
    counts = np.bincount(labels, minlength=_N)
    return KaryotypeCall(
        iscn=iscn,
        posterior=float("nan"),
        runner_up="",
        runner_up_posterior=float("nan"),
        labels=np.asarray(labels, dtype=np.int64),
        extra=np.zeros(n, dtype=bool),
        missing=(),
        sex=_sex_of(counts),
        sex_posterior=float("nan"),
        mode="assignment",
    )


def review_threshold(configured: float | str, calibration: Any = None) -> float:
    """The review posterior threshold in use: a number from the config, or for
    ``"auto"`` the one chosen on val (``calibration.review_min_posterior`` of a
    :class:`~karyoflow.evaluate.calibration.Calibration`), else
    :data:`FALLBACK_MIN_POSTERIOR`.

    Examples
    --------
    >>> review_threshold(0.9), review_threshold("auto")
    (0.9, 0.95)
    """
    if configured == "auto":
        chosen = float(getattr(calibration, "review_min_posterior", math.nan))
        return chosen if math.isfinite(chosen) else FALLBACK_MIN_POSTERIOR
    return float(configured)


def review_reasons(
    call: KaryotypeCall,
    probability: ArrayLike,
    review: Mapping[str, Any] | None = None,
) -> list[str]:
    """Why a cell's call should be checked by a person (empty: no review needed).

    Parameters
    ----------
    call : KaryotypeCall
    probability : array_like, shape (n,)
        Calibrated probability of each object's assigned class.
    review : mapping, optional
        Over ``DEFAULT_CALL["review"]``; a ``min_posterior`` of ``"auto"`` that was not
        resolved on val is :data:`FALLBACK_MIN_POSTERIOR`.

    Returns
    -------
    list of str
        ``low posterior``, ``count``, ``uncertain chromosomes``, ``extra objects``,
        ``sex uncertain``, ``abnormal`` reasons, each a short phrase with its number.

    Examples
    --------
    >>> labels = [i for i in range(22) for _ in range(2)] + [22, 23]
    >>> keep = labels[:12] + labels[13:]  # one 7 lost from the spread
    >>> p = np.full((45, 24), 0.002); p[np.arange(45), keep] = 0.954
    >>> c = call_karyotype(p)
    >>> c.iscn, review_reasons(c, p.max(1))
    ('46,XY', ['low posterior (0.89 < 0.95)', 'count 45 (46 expected)'])
    """
    rv = resolve_call_params({"review": review})["review"]
    reasons = []
    n = call.labels.size
    thr = rv["min_posterior"]
    if isinstance(thr, str):  # "auto" not resolved on val (no calibration): the fallback
        thr = FALLBACK_MIN_POSTERIOR
    if math.isfinite(call.posterior) and call.posterior < float(thr):
        reasons.append(f"low posterior ({call.posterior:.2f} < {float(thr):g})")
    if rv["count"] and n != 46:
        reasons.append(f"count {n} (46 expected)")
    prob = np.asarray(probability, dtype=np.float64).reshape(-1)
    unsure = int(np.sum((prob < float(rv["min_probability"])) & ~call.extra))
    if unsure > int(rv["max_uncertain"]):
        reasons.append(f"{unsure} uncertain chromosomes (p < {float(rv['min_probability']):g})")
    if call.extra.any():
        reasons.append(f"{int(call.extra.sum())} extra objects")
    if math.isfinite(call.sex_posterior) and call.sex_posterior < float(rv["min_sex_posterior"]):
        reasons.append(f"sex uncertain ({call.sex} at {call.sex_posterior:.2f})")
    if rv["abnormal"] and call.abnormal:
        reasons.append(f"abnormal: {call.iscn}")
    return reasons
