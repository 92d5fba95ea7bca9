"""The karyotype call: calibration, whole-cell hypotheses, review, cases, ISCN validity."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from karyoflow.evaluate.calibration import (
    Calibration,
    apply_temperature,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    load_calibration,
    negative_log_likelihood,
    reliability_curve,
)
from karyoflow.evaluate.cells import (
    call_cells,
    case_call,
    case_calls,
    case_ids,
    cell_truths,
    choose_min_posterior,
    review_curve,
)
from karyoflow.evaluate.hypotheses import (
    call_karyotype,
    karyotype_hypotheses,
    resolve_call_params,
    review_reasons,
)
from karyoflow.iscn import (
    compare_karyotype,
    counts_from_iscn,
    iscn_from_counts,
    iscn_karyotype,
    mosaic_iscn,
    validate_iscn,
)
from karyoflow.labels import LABELS, label_index
from karyoflow.readers.voc import numerical_truth
from karyoflow.synth.metaphase import karyotype_labels


def truth_of(sex: str, abnormality: str | None = None) -> np.ndarray:
    return np.array([label_index(x) for x in karyotype_labels(sex, abnormality)])


def cell(true: np.ndarray, p_true: float = 0.95) -> np.ndarray:
    p = np.full((true.size, 24), (1 - p_true) / 23)
    p[np.arange(true.size), true] = p_true
    return p


def misread(p: np.ndarray, row: int, probs: dict[str, float]) -> None:
    p[row] = 1e-3
    for lab, val in probs.items():
        p[row, label_index(lab)] = val
    p[row] /= p[row].sum()


def rows_of(true: np.ndarray, label: str) -> list[int]:
    return np.flatnonzero(true == label_index(label)).tolist()


# --- hypothesis scoring on crafted cells -------------------------------------------------


def test_normal_cell_with_swaps_is_normal():
    true = truth_of("XY")
    p = cell(true)
    a, b = rows_of(true, "4")[0], rows_of(true, "5")[0]
    misread(p, a, {"5": 0.7, "4": 0.3})  # a 4 read as 5
    misread(p, b, {"4": 0.6, "5": 0.4})  # and a 5 read as 4: a swap, counts intact
    c = rows_of(true, "9")[0]
    misread(p, c, {"10": 0.75, "9": 0.25})  # a 9 read as 10: three 10s, one 9
    res = call_karyotype(p)
    assert res.iscn == "46,XY"
    assert res.posterior > 0.95
    assert res.labels[c] == label_index("9")
    assert not res.extra.any() and res.missing == ()


def test_true_trisomy_21_is_called():
    true = truth_of("XX", "+21")
    res = call_karyotype(cell(true))
    assert res.iscn == "47,XX,+21"
    assert res.runner_up == "46,XX"  # an extra object is the alternative
    assert res.posterior > 0.8


def test_true_trisomy_18_with_a_misread_elsewhere():
    true = truth_of("XY", "+18")
    p = cell(true)
    misread(p, rows_of(true, "7")[0], {"6": 0.55, "7": 0.45})
    assert call_karyotype(p).iscn == "47,XY,+18"


def test_true_monosomy_x_is_called():
    true = truth_of("XX", "-X")
    assert true.size == 45
    res = call_karyotype(cell(true, 0.98))
    assert res.iscn == "45,X"
    assert res.runner_up in ("46,XX", "46,XY")  # a lost sex chromosome is the alternative


def test_normal_cell_missing_one_autosome_stays_normal_and_is_flagged():
    true = truth_of("XY")
    p = cell(np.delete(true, rows_of(true, "16")[0]))
    res = call_karyotype(p)
    assert res.iscn == "46,XY"
    assert res.missing == ("16",)
    reasons = review_reasons(res, p.max(1))
    assert any(r.startswith("count 45") for r in reasons)


def test_extra_object_is_not_a_trisomy():
    true = truth_of("XX")
    debris = np.full((1, 24), 1 / 24)  # an object the classifier cannot place
    res = call_karyotype(np.vstack([cell(true), debris]))
    assert res.iscn == "46,XX"
    assert res.extra.tolist() == [False] * 46 + [True]


@pytest.mark.parametrize(
    ("sex", "nonsense"),
    [("XY", "46,XY,-6,-12,+14,+20,-21,+22"), ("XY", "46,XX,-2,+3,-4,+8,-12,-18,+20,+21")],
)
def test_the_nonsense_calls_do_not_come_out(sex, nonsense):
    """A weak classifier's argmax spells out six or eight changes at once; the call of
    the same probabilities is a normal cell with misread chromosomes."""
    true = truth_of(sex)
    target = counts_from_iscn(nonsense)
    have = np.bincount(true, minlength=24)
    # move surplus true-class objects to the classes the nonsense call gains
    gains = [c for c in range(24) for _ in range(max(target[c] - have[c], 0))]
    losses = [c for c in range(24) for _ in range(max(have[c] - target[c], 0))]
    p = cell(true, 0.9)
    argmax = true.copy()
    for lost, gained in zip(losses, gains, strict=True):
        row = next(r for r in np.flatnonzero(argmax == lost) if argmax[r] == true[r])
        misread(p, row, {LABELS[gained]: 0.55, LABELS[lost]: 0.3})
        argmax[row] = gained
    assert iscn_karyotype([LABELS[k] for k in p.argmax(1)]) == nonsense
    res = call_karyotype(p)
    assert res.iscn in ("46,XX", "46,XY")
    assert res.iscn.count(",") == 1


def test_call_keeps_the_assignment_decoder_as_a_mode():
    true = truth_of("XY")
    p = cell(true)
    misread(p, rows_of(true, "4")[0], {"5": 0.6, "4": 0.35})
    res = call_karyotype(p, {"mode": "assignment"})
    assert res.mode == "assignment" and res.iscn == "46,XY"
    assert math.isnan(res.posterior) and res.posteriors == {}
    with pytest.raises(ValueError, match="call mode"):
        call_karyotype(p, {"mode": "vote"})


def test_hypothesis_table_priors():
    table = karyotype_hypotheses()
    names = [h.iscn for h in table]
    for needed in ("46,XX", "46,XY", "47,XX,+21", "47,XY,+13", "47,XY,+18", "45,X", "47,XXY",
                   "47,XXX", "47,XYY", "45,XY,-7", "47,XX,+8"):  # fmt: skip
        assert needed in names
    assert len(set(names)) == len(names)
    assert math.isclose(sum(math.exp(h.log_prior) for h in table), 1.0)
    assert all(not validate_iscn(n) for n in names), [n for n in names if validate_iscn(n)]
    with pytest.raises(ValueError, match="leave room"):
        karyotype_hypotheses({"other_gain": 0.06})
    with pytest.raises(ValueError, match="autosomes"):
        karyotype_hypotheses({"trisomy": {"X": 0.01}})
    more = {h.iscn: h.log_prior for h in karyotype_hypotheses({"trisomy": {"21": 0.1}})}
    assert more["47,XX,+21"] > dict((h.iscn, h.log_prior) for h in table)["47,XX,+21"]


def test_prior_moves_the_call():
    """A lone third 21 of modest confidence: the referral population decides."""
    true = truth_of("XX", "+21")
    p = cell(true)
    misread(p, rows_of(true, "21")[2], {"21": 0.2, "22": 0.1, "19": 0.1})
    low = call_karyotype(p, {"prior": {"trisomy": {"21": 0.001}}})
    high = call_karyotype(p, {"prior": {"trisomy": {"21": 0.2}}})
    assert high.iscn == "47,XX,+21"
    assert high.posteriors["47,XX,+21"] > low.posteriors["47,XX,+21"]


def test_empty_cell_and_bad_input():
    res = call_karyotype(np.zeros((0, 24)))
    assert res.labels.size == 0
    with pytest.raises(ValueError, match="shape"):
        call_karyotype(np.ones((3, 5)))
    with pytest.raises(ValueError, match="missing_rate"):
        call_karyotype(cell(truth_of("XX")), {"missing_rate": 0})


def test_resolve_call_params_merges():
    p = resolve_call_params({"review": {"min_posterior": 0.5}, "extra_rate": None})
    assert p["review"]["min_posterior"] == 0.5
    assert p["review"]["min_probability"] == 0.5
    assert p["extra_rate"] == 0.05


# --- calibration -------------------------------------------------------------------------


def _crafted(n: int, acc: float, conf: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 24, n)
    pred = np.where(rng.random(n) < acc, y, (y + 1 + rng.integers(0, 23, n)) % 24)
    p = np.full((n, 24), (1 - conf) / 23)
    p[np.arange(n), pred] = conf
    return p, y


def test_temperature_softens_overconfidence_and_sharpens_underconfidence():
    over, y = _crafted(3000, 0.8, 0.99)
    t = fit_temperature(over, y)
    assert t > 1.5
    after = apply_temperature(over, t)
    np.testing.assert_array_equal(after.argmax(1), over.argmax(1))  # accuracy unchanged
    assert expected_calibration_error(after, y) < 0.02 < expected_calibration_error(over, y)
    assert negative_log_likelihood(after, y) < negative_log_likelihood(over, y)
    under, y2 = _crafted(3000, 0.95, 0.5, seed=1)
    assert fit_temperature(under, y2) < 0.8


def test_calibration_fit_on_logits_of_a_softmax():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2.0, (4000, 24))
    p_true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(24, p=row) for row in p_true])  # calibrated by construction
    sharp = apply_temperature(p_true, 0.4)  # the same, made over-confident
    assert fit_temperature(sharp, y) == pytest.approx(2.5, rel=0.1)


def test_reliability_curve_and_ece():
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 0, 0, 1])
    curve = reliability_curve(p, y, bins=10)
    assert curve["count"].sum() == 4
    assert expected_calibration_error(p, y, bins=10) == pytest.approx((2 * 0.1 + 2 * 0.1) / 4)


def test_calibration_file_round_trip(tmp_path):
    p, y = _crafted(500, 0.8, 0.99)
    cal = fit_calibration(p, y, tta="hflip")
    assert cal.ece_after < cal.ece_before and cal.fitted_on == "val"
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(cal.to_dict()))
    back = load_calibration(tmp_path / "model.keras")  # the file beside a model
    assert back.temperature == cal.temperature and back.tta == "hflip"
    assert load_calibration(tmp_path / "none" / "model.keras") == Calibration()
    assert fit_calibration(np.zeros((0, 24)), []).temperature == 1.0
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"calibration\.json: not a calibration"):
        load_calibration(path)
    path.write_text('{"temperature": -1}')
    with pytest.raises(ValueError, match="positive"):
        load_calibration(path)


# --- cells, review, cases ----------------------------------------------------------------


def _split(cells: dict[str, tuple[str, str | None]], misreads: dict[str, int] | None = None):
    probas, ids, labels = [], [], []
    for name, (sex, abn) in cells.items():
        true = truth_of(sex, abn)
        p = cell(true)
        for k in range((misreads or {}).get(name, 0)):
            row = rows_of(true, str(k + 1))[0]
            misread(p, row, {str(k + 2): 0.5, str(k + 1): 0.45})
        probas.append(p)
        ids += [name] * true.size
        labels.append(true)
    return np.vstack(probas), np.array(ids), np.concatenate(labels)


def test_call_cells_compares_with_truth_and_flags():
    p, ids, y = _split({"a": ("XY", None), "b": ("XX", "+21"), "c": ("XX", None)}, {"c": 6})
    table, calls = call_cells(p, ids, y_true=y, truth={"a": "normal", "b": "47,+21"})
    assert table["cell"].tolist() == ["a", "b", "c"]
    assert table["match"].tolist() == [True, True, True]
    assert table["truth"].tolist() == ["normal", "47,+21", "46,XX"]  # c: from its labels
    assert table["truth_normal"].tolist() == [True, False, True]
    assert table.loc[1, "review"] and "abnormal" in table.loc[1, "reasons"]
    assert not table.loc[0, "review"]
    assert table.loc[2, "review"] and "uncertain" in table.loc[2, "reasons"]
    assert set(calls) == {"a", "b", "c"}


def test_review_curve_and_operating_point():
    cells = pd.DataFrame(
        {
            "posterior": [0.999, 0.99, 0.7, 0.6],
            "reasons": ["", "", "low posterior (0.70 < 0.95)", "abnormal: 45,X"],
            "match": [True, True, False, True],
        }
    )
    curve = review_curve(cells, [0.0, 0.8])
    assert curve["flagged_share"].tolist() == [0.25, 0.5]
    assert curve["unflagged_accuracy"].tolist() == [pytest.approx(2 / 3), 1.0]
    assert choose_min_posterior(curve, 0.98) == 0.8
    assert choose_min_posterior(curve, 1.1, default=0.9) == 0.9


def test_case_consensus_and_mosaic_notation():
    normal = call_karyotype(cell(truth_of("XX")))
    trisomic = call_karyotype(cell(truth_of("XX", "+21")))
    monosomic = call_karyotype(cell(truth_of("XX", "-X"), 0.98))
    res = case_call([normal] * 16 + [trisomic] * 4)
    assert res["iscn"] == "mos 47,XX,+21[4]/46,XX[16]"
    assert res["karyotype"] == "46,XX"
    # a single trisomic cell is no clone: the case is normal
    assert case_call([normal] * 19 + [trisomic])["iscn"] == "46,XX"
    # a loss needs three cells to be a clone
    assert case_call([normal] * 18 + [monosomic] * 2)["iscn"] == "46,XX"
    assert case_call([normal] * 17 + [monosomic] * 3)["iscn"] == "mos 45,X[3]/46,XX[17]"
    # most cells trisomic: the constitutional karyotype is the trisomy
    assert case_call([trisomic] * 5 + [normal])["karyotype"] == "47,XX,+21"
    for r in (res, case_call([normal] * 17 + [monosomic] * 3)):
        assert validate_iscn(r["iscn"]) == []
    with pytest.raises(ValueError, match="hypotheses mode"):
        case_call([call_karyotype(cell(truth_of("XX")), {"mode": "assignment"})])


def test_case_ids_and_case_table():
    ids = case_ids(["1101021", "1101022", "103081"], pattern=r"^(\d+)\d$")
    assert ids == {"1101021": "110102", "1101022": "110102", "103081": "10308"}
    assert case_ids(["a", "b"], table={"a": "p1"}) == {"a": "p1", "b": "b"}
    assert case_ids(["a"]) == {"a": "a"}
    calls = {
        "1101021": call_karyotype(cell(truth_of("XX", "-X"), 0.98)),
        "1101022": call_karyotype(cell(truth_of("XX", "-X"), 0.98)),
        "103081": call_karyotype(cell(truth_of("XY"))),
    }
    table = case_calls(calls, ids, truth={"1101021": "45,X", "1101022": "45,X"})
    assert table["case"].tolist() == ["10308", "110102"]
    assert table.loc[1, "iscn"] == "45,X" and table.loc[1, "cells"] == 2
    assert table.loc[1, "match"] == True  # noqa: E712
    assert table.loc[0, "match"] is None


# --- ISCN ----------------------------------------------------------------------------------


def test_iscn_round_trip_and_validation():
    for text in ("46,XX", "47,XY,+21", "45,X", "47,XXY", "45,XY,-7", "48,XY,+8,+21"):
        assert iscn_from_counts(counts_from_iscn(text)) == text
        assert validate_iscn(text) == []
    assert mosaic_iscn([("46,XY", 10), ("47,XY,+21", 10)]) == "mos 47,XY,+21[10]/46,XY[10]"
    assert validate_iscn("46,XY,+21")  # the count does not fit
    assert validate_iscn("mos 46,XX")
    assert validate_iscn("mos 47,XX,+21/46,XX")  # cell counts missing
    assert validate_iscn("46,XX,foo")
    assert validate_iscn("45,XX")  # the rule engine: 45 needs one sex chromosome
    with pytest.raises(ValueError):
        mosaic_iscn([("46,XX", 0)])


def test_truth_forms():
    assert compare_karyotype("46,XY", "normal") is True
    assert compare_karyotype("47,XY,+21", "normal") is False
    assert numerical_truth("45", "normal.csv") == "normal"
    assert numerical_truth("45,X", "number_abnormalities.csv") == "45,X"
    assert numerical_truth("47", "number_abnormalities.csv") == ""
    assert numerical_truth("44,XX/XY", "number_abnormalities.csv") == ""
    df = pd.DataFrame(
        {
            "cell_id": ["a", "a", "b", "c"],
            "cell_truth": ["45", "45", "47,XY,+21", "46,3,15"],
            "cell_karyotype": ["normal", "normal", "", ""],
        }
    )
    assert cell_truths(df) == {"a": "normal", "b": "47,XY,+21"}


def test_review_curve_with_the_posterior_alone():
    cells = pd.DataFrame(
        {
            "posterior": [0.999, 0.6],
            "reasons": ["", "abnormal: 45,X"],
            "match": [True, False],
        }
    )
    every = review_curve(cells, [0.0])
    alone = review_curve(cells, [0.0, 0.9], other_reasons=False)
    assert every["flagged_share"].tolist() == [0.5]
    assert alone["flagged_share"].tolist() == [0.0, 0.5]
    assert alone["unflagged_accuracy"].tolist() == [0.5, 1.0]


def test_review_reasons_can_be_switched_off():
    true = truth_of("XY")
    p = cell(np.delete(true, rows_of(true, "16")[0]), 0.45)  # 45 objects, all unsure
    res = call_karyotype(p)
    every = review_reasons(res, p.max(1), {"min_posterior": 0.0})
    assert any(r.startswith("count 45") for r in every)
    assert any("uncertain chromosomes" in r for r in every)
    off = {"min_posterior": 0.0, "count": False, "max_uncertain": 46, "min_sex_posterior": 0}
    quiet = review_reasons(res, p.max(1), off)
    assert quiet == []


def test_resolved_params_are_a_copy():
    from karyoflow.evaluate.hypotheses import DEFAULT_CALL

    p = resolve_call_params()
    p["review"]["min_posterior"] = 0.123
    p["prior"]["trisomy"]["21"] = 0.5
    assert DEFAULT_CALL["review"]["min_posterior"] == "auto"
    assert resolve_call_params()["prior"]["trisomy"]["21"] == 0.01
