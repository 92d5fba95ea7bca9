"""Karyotype-level decoding, hierarchical decisions, ISCN summaries and comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from karyoflow.evaluate.karyotype import (
    DEFAULT_EXTRA_COPY_PENALTY,
    cell_summary,
    compare_karyotype,
    decode_cell,
    decode_cells,
    group_proba,
    hierarchical_from_flat,
    karyotype_report,
    parse_karyotype,
)
from karyoflow.labels import label_index
from karyoflow.synth.metaphase import karyotype_labels

BG = 1e-3  # background probability of every other class


def idx(*labels: str) -> list[int]:
    return [label_index(lab) for lab in labels]


def truth_of(sex: str, abnormality: str | None = None) -> np.ndarray:
    return np.array(idx(*karyotype_labels(sex, abnormality)))


def confident(true: np.ndarray, p_true: float = 0.95) -> np.ndarray:
    """Probabilities that put ``p_true`` on the true class (rest spread evenly)."""
    p = np.full((true.size, 24), (1 - p_true) / 23)
    p[np.arange(true.size), true] = p_true
    return p


def set_row(p: np.ndarray, row: int, probs: dict[str, float]) -> None:
    p[row] = BG
    for lab, val in probs.items():
        p[row, label_index(lab)] = val
    p[row] /= p[row].sum()


def rows_of(true: np.ndarray, label: str) -> list[int]:
    return np.flatnonzero(true == label_index(label)).tolist()


def iscn(labels: np.ndarray) -> str:
    return cell_summary(labels)["iscn"]


# --- decode_cell on crafted cells ------------------------------------------------------


def test_noisy_normal_cell_is_corrected():
    true = truth_of("XY")
    p = confident(true)
    four_a, four_b = rows_of(true, "4")
    set_row(p, four_a, {"4": 0.35, "5": 0.6})  # two 4s called 5 with moderate confidence
    set_row(p, four_b, {"4": 0.3, "5": 0.55, "X": 0.1})
    seven = rows_of(true, "7")[0]
    set_row(p, seven, {"7": 0.3, "X": 0.62})  # a 7 called X: apparently 46,XXY,-7
    flat = p.argmax(axis=1)
    assert int(np.sum(flat != true)) == 3
    assert iscn(flat) == "46,XXY,-4,-4,+5,+5,-7"
    res = decode_cell(p)
    np.testing.assert_array_equal(res.labels, true)
    assert res.sex == "XY"
    assert iscn(res.labels) == "46,XY"


def test_penalty_zero_is_argmax():
    true = truth_of("XY")
    p = confident(true)
    set_row(p, rows_of(true, "4")[0], {"4": 0.35, "5": 0.6})
    np.testing.assert_array_equal(decode_cell(p, extra_copy_penalty=0).labels, p.argmax(1))
    # None (config "null") means the library defaults
    none = decode_cell(p, extra_copy_penalty=None, max_copies=None, sexes=["XX", "XY"])
    np.testing.assert_array_equal(none.labels, decode_cell(p).labels)


def test_trisomy_21_survives_and_noise_is_fixed():
    true = truth_of("XY", "+21")
    p = confident(true)
    third = rows_of(true, "21")[2]
    set_row(p, third, {"21": 0.9, "22": 0.08})
    set_row(p, rows_of(true, "9")[0], {"9": 0.4, "10": 0.55})  # unrelated noise
    res = decode_cell(p)
    np.testing.assert_array_equal(res.labels, true)
    assert iscn(res.labels) == "47,XY,+21"
    assert res.sex == "XY"


def test_trisomy_21_survives_even_when_the_extra_21_is_weak():
    # a lone gain has no gap to move into: it survives whatever the confidence
    true = truth_of("XY", "+21")
    p = confident(true)
    set_row(p, rows_of(true, "21")[2], {"21": 0.5, "22": 0.45})
    assert iscn(decode_cell(p, extra_copy_penalty=50).labels) == "47,XY,+21"


def test_trisomy_with_a_lost_chromosome_keeps_a_confident_gain():
    # 47,XY,+21 missing one 22 (lost in segmentation) looks like four 21s and one 22:
    # the 21 that leans towards 22 is moved, the confident third 21 stays
    true = truth_of("XY", "+21")
    keep = np.ones(true.size, bool)
    keep[rows_of(true, "22")[0]] = False
    true = true[keep]
    p = confident(true)
    set_row(p, rows_of(true, "22")[0], {"21": 0.6, "22": 0.35})  # the remaining 22
    labels = decode_cell(p).labels
    np.testing.assert_array_equal(labels, true)
    assert iscn(labels) == "46,XY,+21,-22"


def test_monosomy_x_stays_single_x():
    true = truth_of("XX", "45,X")
    p = confident(true)
    x = rows_of(true, "X")[0]
    set_row(p, x, {"X": 0.8, "7": 0.1, "Y": 0.05})
    res = decode_cell(p)
    assert iscn(res.labels) == "45,X"
    assert int(np.sum(res.labels == label_index("Y"))) == 0
    np.testing.assert_array_equal(res.labels, true)


def test_monosomy_x_with_noise_no_phantom_sex_chromosome():
    true = truth_of("XY", "45,X")
    p = confident(true)
    # a 21 with some Y probability and a 6 with some X probability: no gap is filled
    set_row(p, rows_of(true, "21")[0], {"21": 0.6, "Y": 0.35})
    set_row(p, rows_of(true, "6")[0], {"6": 0.55, "X": 0.4})
    assert iscn(decode_cell(p, extra_copy_penalty=10).labels) == "45,X"


def test_xxy_with_confident_sex_chromosomes():
    true = truth_of("XY", "+X")
    p = confident(true)
    for row in rows_of(true, "X"):
        set_row(p, row, {"X": 0.9, "7": 0.05})
    set_row(p, rows_of(true, "Y")[0], {"Y": 0.9, "21": 0.05})
    res = decode_cell(p)
    assert iscn(res.labels) == "47,XXY"
    np.testing.assert_array_equal(res.labels, true)


def test_xxx_is_decoded_as_xx_hypothesis():
    true = truth_of("XX", "+X")
    res = decode_cell(confident(true))
    assert iscn(res.labels) == "47,XXX"
    assert res.sex == "XX"


def test_confident_cross_group_call_beats_expectation():
    # a 7 (group C) called 18 (group E): at 95 % it is kept, at 60 % it is corrected
    true = truth_of("XX")
    seven = rows_of(true, "7")[0]
    p = confident(true)
    set_row(p, seven, {"18": 0.95, "7": 0.03})
    labels = decode_cell(p).labels
    assert labels[seven] == label_index("18")
    assert iscn(labels) == "46,XX,-7,+18"
    set_row(p, seven, {"18": 0.6, "7": 0.3})
    assert iscn(decode_cell(p).labels) == "46,XX"
    # a very large penalty forces the expected composition even against 95 %
    set_row(p, seven, {"18": 0.95, "7": 0.03})
    assert iscn(decode_cell(p, extra_copy_penalty=10).labels) == "46,XX"


def test_confident_swap_between_groups_is_left_alone():
    # a 7 called 18 and an 18 called 7: counts look normal, nothing to correct
    true = truth_of("XY")
    p = confident(true)
    seven, eighteen = rows_of(true, "7")[0], rows_of(true, "18")[0]
    set_row(p, seven, {"18": 0.9, "7": 0.05})
    set_row(p, eighteen, {"7": 0.9, "18": 0.05})
    labels = decode_cell(p, extra_copy_penalty=20).labels
    np.testing.assert_array_equal(labels, p.argmax(1))
    assert iscn(labels) == "46,XY"


def test_threshold_is_extra_copy_penalty():
    true = truth_of("XY")
    row = rows_of(true, "4")[0]
    p = confident(true)
    set_row(p, row, {"5": 0.6, "4": 0.6 / np.exp(1.5)})  # log-odds 1.5
    assert decode_cell(p, extra_copy_penalty=1.4).labels[row] == label_index("5")
    assert decode_cell(p, extra_copy_penalty=1.6).labels[row] == label_index("4")
    assert DEFAULT_EXTRA_COPY_PENALTY > 1.5


def test_decode_cell_cost_and_edge_cases():
    true = truth_of("XY")
    p = confident(true, 0.9)
    res = decode_cell(p)
    assert res.cost == pytest.approx(-46 * np.log(0.9))
    empty = decode_cell(np.zeros((0, 24)))
    assert empty.labels.shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        decode_cell(np.ones((3, 23)))
    with pytest.raises(ValueError, match="extra_copy_penalty"):
        decode_cell(p, extra_copy_penalty=-1)
    with pytest.raises(ValueError, match="sex hypothesis"):
        decode_cell(p, sexes=("XZ",))
    # more instances than 24 * max_copies: slots grow instead of failing
    many = np.full((120, 24), BG)
    many[:, 0] = 1.0
    assert decode_cell(many, max_copies=2).labels.shape == (120,)


def test_max_copies_caps_a_class():
    p = np.full((5, 24), BG)
    p[:, 0] = 0.9
    p[:, 1] = 0.05
    labels = decode_cell(p, max_copies=3).labels
    assert int(np.sum(labels == 0)) == 3


def test_decode_cells_groups_and_keeps_order():
    a, b = truth_of("XY"), truth_of("XX", "+18")
    pa, pb = confident(a), confident(b)
    set_row(pa, rows_of(a, "4")[0], {"4": 0.35, "5": 0.6})
    set_row(pb, rows_of(b, "4")[1], {"4": 0.35, "5": 0.6})
    true = np.concatenate([a, b])
    proba = np.concatenate([pa, pb])
    cells = np.array(["a"] * a.size + ["b"] * b.size)
    order = np.random.default_rng(0).permutation(true.size)  # interleave the cells
    out = decode_cells(proba[order], cells[order])
    np.testing.assert_array_equal(out, true[order])
    with pytest.raises(ValueError, match="cell_ids"):
        decode_cells(proba, cells[:-1])


# --- hierarchical decisions -------------------------------------------------------------


def test_group_proba_sums_to_one_and_orders_groups():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(24), size=10)
    g = group_proba(p)
    assert g.shape == (10, 7)
    np.testing.assert_allclose(g.sum(1), 1.0)
    one_hot = np.eye(24)[idx("1", "4", "6", "13", "16", "19", "21", "X", "Y")]
    assert group_proba(one_hot).argmax(1).tolist() == [0, 1, 2, 3, 4, 5, 6, 2, 6]


def test_hierarchical_differs_from_flat():
    p = np.zeros((2, 24))
    p[0, idx("21", "22", "Y", "20")] = [0.2, 0.2, 0.2, 0.4]  # G = 0.6 beats F = 0.4
    p[1, idx("1", "2")] = [0.7, 0.3]  # same answer either way
    assert p.argmax(1).tolist() == idx("20", "1")
    assert hierarchical_from_flat(p).tolist() == idx("21", "1")


# --- ISCN summaries and comparisons --------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "abnormality", "expected"),
    [
        ("XY", None, "46,XY"),
        ("XY", "+21", "47,XY,+21"),
        ("XX", "45,X", "45,X"),
        ("XY", "+X", "47,XXY"),
        ("XX", "-7,+18", "46,XX,-7,+18"),
    ],
)
def test_cell_summary(sex, abnormality, expected):
    true = truth_of(sex, abnormality)
    assert cell_summary(np.random.default_rng(0).permutation(true)) == {
        "count": true.size,
        "iscn": expected,
    }


@pytest.mark.parametrize(
    ("predicted", "truth", "expected"),
    [
        # full ISCN truth (synthetic data)
        ("47,XY,+21", "47,XY,+21", True),
        ("47,XX,+21", "47,XY,+21", False),
        ("46,XY", "47,XY,+21", False),
        ("45,X", "45,X", True),
        ("46,XX", "45,X", False),
        ("45,XX,-21", "45,X", False),
        ("46,XX", "46,XX", True),
        ("46,XX,-4,+5", "46,XX", False),
        (" 46,XX ", "46, xx", True),
        # count only
        ("46,XY", "46", True),
        ("46,XX,-4,+5", "46", True),
        ("47,XY,+21", "46", False),
        # count + autosomal changes without sex
        ("47,XY,+21", "47,+21", True),
        ("47,XX,+21", "47,+21", True),
        ("47,XXY", "47,+21", False),
        ("47,XY,+18", "47,+21", False),
        ("45,XY,-21", "45,-21", True),
        ("45,X", "45,-21", False),
        # sex-chromosome gains without sex
        ("47,XXY", "47,+X", True),
        ("47,XXX", "47,+X", True),
        ("47,XYY", "47,+X", False),
        ("47,XY,+21", "47,+X", False),
        ("47,XYY", "47,+Y", True),
        ("45,X", "45,-X", True),
        ("45,X", "45,XO", True),
        # not comparable
        ("46,XY", "46,3,15", None),
        ("44,XY,-4,-5", "44,XX/XY", None),
        ("46,XY", "46,XY,t(1;2)(p10;q10)", None),
        ("46,XY", "", None),
        ("46,XY", None, None),
        ("46,XY", float("nan"), None),
        ("46,XY", "46,XY,+23", None),
    ],
)
def test_compare_karyotype(predicted, truth, expected):
    assert compare_karyotype(predicted, truth) is expected


def test_compare_karyotype_rejects_bad_prediction():
    with pytest.raises(ValueError, match="ISCN"):
        compare_karyotype("not a karyotype", "46,XY")


def test_parse_karyotype():
    assert parse_karyotype("47,XY,+21").changes == ("+21",)
    assert parse_karyotype("46,YX").sex == "XY"
    assert parse_karyotype("48,XY,+21,+13").changes == ("+13", "+21")
    assert parse_karyotype("46").changes is None
    assert parse_karyotype("46,XX").changes == ()


# --- report ----------------------------------------------------------------------------


def test_karyotype_report():
    normal, tri = truth_of("XY"), truth_of("XX", "+21")
    p_normal, p_tri = confident(normal), confident(tri)
    for row in rows_of(normal, "4"):
        set_row(p_normal, row, {"4": 0.35, "5": 0.6})
    set_row(p_tri, rows_of(tri, "21")[2], {"21": 0.9, "22": 0.08})
    weird = truth_of("XY")
    p_weird = confident(weird)
    true = np.concatenate([normal, tri, weird])
    proba = np.concatenate([p_normal, p_tri, p_weird])
    cells = ["n"] * normal.size + ["t"] * tri.size + ["w"] * weird.size
    rep = karyotype_report(true, proba, cells, {"n": "46", "t": "47,+21", "w": "46,3,15"})
    assert rep["n_instances"] == true.size and rep["n_cells"] == 3
    assert rep["accuracy_flat"] == pytest.approx(1 - 2 / true.size)
    assert rep["accuracy_decoded"] == 1.0
    assert rep["accuracy_hierarchical"] == pytest.approx(1 - 2 / true.size)
    by_cell = {c["cell"]: c for c in rep["cells"]}
    assert by_cell["n"]["iscn_flat"] == "46,XY,-4,-4,+5,+5"
    assert by_cell["n"]["iscn_decoded"] == "46,XY"
    assert by_cell["n"]["match_flat"] is True  # "46" states the count only
    assert by_cell["t"]["iscn_decoded"] == "47,XX,+21" and by_cell["t"]["match_decoded"]
    assert by_cell["w"]["match_decoded"] is None
    assert rep["n_comparable"] == 2
    assert rep["karyotype_match_flat"] == rep["karyotype_match_decoded"] == 1.0
    # without truth strings the true labels give the truth: flat now misses cell "n"
    rep = karyotype_report(true, proba, cells)
    assert rep["cells"][0]["truth"] == "46,XY"
    assert rep["karyotype_match_flat"] == pytest.approx(2 / 3)
    assert rep["karyotype_match_decoded"] == 1.0
    assert len(rep["labels_decoded"]) == true.size
    # decode keyword arguments pass through
    rep = karyotype_report(true, proba, cells, extra_copy_penalty=0.0)
    assert rep["accuracy_decoded"] == rep["accuracy_flat"]
