"""Calibrated class probabilities: temperature scaling, ECE and reliability curves.

A classifier trained with label smoothing and class weights is confident in the wrong
way: its top probability is not the chance of being right. The karyotype call
(:mod:`karyoflow.evaluate.hypotheses`) adds log-probabilities over a whole cell, so a
systematic error there becomes an error in the call. :func:`fit_temperature` fits one
temperature ``T`` on a held-out (validation) split; :func:`apply_temperature` rescales
``p -> softmax(log p / T)`` (``T > 1`` softens, ``T < 1`` sharpens). It keeps the
argmax, so accuracy is unchanged.

References
----------
.. [1] Guo C, Pleiss G, Sun Y, Weinberger KQ. On calibration of modern neural
   networks. ICML 2017 (temperature scaling; expected calibration error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "apply_temperature",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "load_calibration",
    "negative_log_likelihood",
    "reliability_curve",
]

#: File name of a classifier's calibration, beside its ``model.keras``.
CALIBRATION_FILE = "calibration.json"
_EPS = 1e-12


def _log_proba(proba: ArrayLike) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must have shape (n, classes), got {p.shape}")
    p = np.maximum(p, _EPS)
    return np.log(p / p.sum(axis=1, keepdims=True))


def apply_temperature(proba: ArrayLike, temperature: float) -> np.ndarray:
    """Rescale class probabilities by a temperature: ``softmax(log p / T)``.

    Parameters
    ----------
    proba : array_like, shape (n, k)
        Class probabilities (rows are renormalised, zeros floored at 1e-12).
    temperature : float
        ``T > 0``; 1 returns the (renormalised) input.

    Returns
    -------
    numpy.ndarray, shape (n, k), float64

    Examples
    --------
    >>> apply_temperature([[0.8, 0.2]], 2.0).round(3).tolist()
    [[0.667, 0.333]]
    """
    t = float(temperature)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    z = _log_proba(proba) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(proba: ArrayLike, labels: ArrayLike) -> float:
    """Mean ``-log p(true class)`` (nats)."""
    lp = _log_proba(proba)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != lp.shape[0]:
        raise ValueError(f"{y.shape[0]} labels for {lp.shape[0]} rows")
    return float(-lp[np.arange(y.size), y].mean()) if y.size else float("nan")


def fit_temperature(
    proba: ArrayLike, labels: ArrayLike, *, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """Temperature minimising the negative log-likelihood of ``labels``.

    Parameters
    ----------
    proba : array_like, shape (n, k)
        Held-out class probabilities (the validation split, with the test-time views
        that will be used at prediction).
    labels : array_like of int, shape (n,)
    bounds : (float, float)
        Search interval of ``T`` (a one-dimensional bounded minimisation in ``log T``;
        the NLL is convex in ``1/T``).

    Returns
    -------
    float
        ``T`` (1.0 when there is nothing to fit on).

    Examples
    --------
    Over-confident probabilities (right 70 % of the time at 0.97) get ``T > 1``:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 4, 2000)
    >>> pred = np.where(rng.random(2000) < 0.7, y, (y + 1) % 4)
    >>> p = np.full((2000, 4), 0.01); p[np.arange(2000), pred] = 0.97
    >>> t = fit_temperature(p, y); bool(t > 1.5)
    True
    >>> bool(abs(apply_temperature(p, t).max(1).mean() - 0.7) < 0.02)
    True
    """
    from scipy.optimize import minimize_scalar

    lp = _log_proba(proba)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != lp.shape[0]:
        raise ValueError(f"{y.shape[0]} labels for {lp.shape[0]} rows")
    if y.size == 0:
        return 1.0

    def nll(log_t: float) -> float:
        z = lp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float((lse - z[np.arange(y.size), y]).mean())

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))


def reliability_curve(
    proba: ArrayLike, labels: ArrayLike, *, bins: int = 15
) -> dict[str, np.ndarray]:
    """Confidence vs accuracy in equal-width confidence bins.

    Returns
    -------
    dict
        ``edges`` ``(bins + 1,)``, and per bin ``count``, ``confidence`` (mean top
        probability) and ``accuracy`` (share right); empty bins hold NaN.
    """
    p = np.exp(_log_proba(proba))
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, int(bins) - 1)
    count = np.bincount(which, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / count
        acc = np.bincount(which, right.astype(float), minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": acc}


def expected_calibration_error(proba: ArrayLike, labels: ArrayLike, *, bins: int = 15) -> float:
    """ECE: the count-weighted mean of ``|accuracy - confidence|`` over confidence bins.

    Examples
    --------
    >>> expected_calibration_error([[0.9, 0.1], [0.9, 0.1]], [0, 1])  # 90 % sure, 50 % right
    0.4
    """
    curve = reliability_curve(proba, labels, bins=bins)
    n = curve["count"].sum()
    if n == 0:
        return float("nan")
    filled = curve["count"] > 0
    gaps = np.abs(curve["accuracy"][filled] - curve["confidence"][filled])
    return round(float((curve["count"][filled] * gaps).sum() / n), 10)


@dataclass(frozen=True)
class Calibration:
    """A classifier's fitted calibration (``calibration.json`` beside its model).

    Attributes
    ----------
    temperature : float
        ``T`` of :func:`apply_temperature` (1.0: uncalibrated).
    fitted_on : str
        Split it was fitted on (``"val"``; ``"none"`` when there was none).
    instances : int
        Instances it was fitted on.
    tta : str
        Test-time views of the probabilities it was fitted on.
    ece_before, ece_after, nll_before, nll_after : float
        On the fitting split.
    review_min_posterior : float
        The call posterior below which a cell is flagged for review, chosen on the same
        split (NaN: the config's value applies).
    review_chosen_on : str
        ``"val"`` when chosen there for the config's target accuracy.
    trained_on : str
        The datasets the model was trained on (comma-separated names).
    val_cells : int
        Cells of the fitting split.
    cell_confidence_p05, cell_confidence_median : float
        5th percentile and median, over the fitting split's cells, of a cell's mean
        calibrated top probability (:func:`cell_confidence`): a cell well below what
        the model gave its validation cells is unlike its training data
        (:func:`domain_warning`, from the median).
    """

    temperature: float = 1.0
    fitted_on: str = "none"
    instances: int = 0
    tta: str = "none"
    ece_before: float = float("nan")
    ece_after: float = float("nan")
    nll_before: float = float("nan")
    nll_after: float = float("nan")
    review_min_posterior: float = float("nan")
    review_chosen_on: str = "none"
    trained_on: str = ""
    val_cells: int = 0
    cell_confidence_p05: float = float("nan")
    cell_confidence_median: float = float("nan")

    def apply(self, proba: ArrayLike) -> np.ndarray:
        """Calibrated probabilities (:func:`apply_temperature`)."""
        return apply_temperature(proba, self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as ``None``)."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def cell_confidence(proba: ArrayLike, cell_ids: ArrayLike) -> np.ndarray:
    """Each cell's mean top probability over its chromosomes, in sorted cell order.

    Examples
    --------
    >>> cell_confidence([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], ["a", "a", "b"]).tolist()
    [0.7, 0.8]
    """
    p = np.asarray(proba, np.float64)
    cells = np.asarray(cell_ids)
    if p.size == 0:
        return np.zeros(0)
    top = p.max(axis=1)
    _, index = np.unique(cells, return_inverse=True)
    return np.bincount(index, weights=top) / np.bincount(index)


def with_domain(
    calibration: Calibration, proba: ArrayLike, cell_ids: ArrayLike, trained_on: str
) -> Calibration:
    """``calibration`` with what the model was trained on and the confidence profile of
    the fitting split's cells (``proba``: its calibrated probabilities)."""
    from dataclasses import replace

    conf = cell_confidence(proba, cell_ids)
    if conf.size == 0:
        return replace(calibration, trained_on=trained_on)
    return replace(
        calibration,
        trained_on=trained_on,
        val_cells=int(conf.size),
        cell_confidence_p05=float(np.quantile(conf, 0.05)),
        cell_confidence_median=float(np.median(conf)),
    )


def domain_warning(
    mean_confidence: float, calibration: Calibration | None, ratio: float = 0.8
) -> str | None:
    """A review reason when a cell's mean top probability is below ``ratio`` times the
    median of the model's validation cells: the input looks unlike what it was trained
    on (``ratio`` 0: off).

    Measured (2026-12-06, the `make run` model on synthetic cells, val median 0.91):
    real Taichung metaphases 0.46-0.58 (20 of 20 flagged at 0.8), none of its 24
    synthetic cells (test cells 0.86); the 5th percentile of 4 val cells (0.90)
    flagged 2 of the 3 test cells, which is why the rule is a fraction of the median.

    Examples
    --------
    >>> cal = Calibration(trained_on="synthetic_voc", val_cells=40, cell_confidence_median=0.9)
    >>> print(domain_warning(0.41, cal))  # doctest: +NORMALIZE_WHITESPACE
    unlike the training data (synthetic_voc): mean confidence 0.41, below 0.72
    (0.8 x the median of its 40 validation cells)
    >>> domain_warning(0.8, cal) is None, domain_warning(0.41, cal, ratio=0) is None
    (True, True)
    """
    if calibration is None or ratio <= 0 or not np.isfinite(calibration.cell_confidence_median):
        return None
    limit = ratio * calibration.cell_confidence_median
    if not np.isfinite(mean_confidence) or mean_confidence >= limit:
        return None
    data = f" ({calibration.trained_on})" if calibration.trained_on else ""
    return (
        f"unlike the training data{data}: mean confidence {mean_confidence:.2f}, below "
        f"{limit:.2f} ({ratio:g} x the median of its {calibration.val_cells} validation cells)"
    )


def fit_calibration(
    proba: ArrayLike,
    labels: ArrayLike,
    *,
    fitted_on: str = "val",
    tta: str = "none",
    bins: int = 15,
) -> Calibration:
    """Fit :func:`fit_temperature` and measure ECE/NLL before and after.

    An empty split gives the identity (``T = 1``, ``fitted_on="none"``).
    """
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.size == 0:
        return Calibration(tta=tta)
    t = fit_temperature(proba, y)
    after = apply_temperature(proba, t)
    return Calibration(
        temperature=round(t, 6),
        fitted_on=fitted_on,
        instances=int(y.size),
        tta=tta,
        ece_before=expected_calibration_error(proba, y, bins=bins),
        ece_after=expected_calibration_error(after, y, bins=bins),
        nll_before=round(negative_log_likelihood(proba, y), 6),
        nll_after=round(negative_log_likelihood(after, y), 6),
    )


def load_calibration(source: str | Path | Mapping[str, Any] | None) -> Calibration:
    """A :class:`Calibration` from a ``calibration.json`` path, a dict, or ``None``
    (identity).

    A model path (``.../model.keras``) reads the ``calibration.json`` beside it; a
    missing file gives the identity.

    Raises
    ------
    ValueError
        ``"<file>: <reason>"`` for a file that is not a calibration.
    """
    if source is None:
        return Calibration()
    if isinstance(source, Mapping):
        data = dict(source)
        where = "calibration"
    else:
        path = Path(source)
        if path.suffix != ".json":
            path = path.with_name(CALIBRATION_FILE)
        if not path.is_file():
            return Calibration()
        where = str(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{where}: not a calibration file ({exc})") from None
    known = set(Calibration.__dataclass_fields__)
    if not isinstance(data, dict) or "temperature" not in data:
        raise ValueError(f"{where}: not a calibration file (no temperature)")
    kept = {k: (float("nan") if v is None else v) for k, v in data.items() if k in known}
    cal = Calibration(**kept)
    if not (np.isfinite(cal.temperature) and cal.temperature > 0):
        raise ValueError(f"{where}: temperature must be positive, got {cal.temperature!r}")
    return cal
