import pytest

from karyoflow.labels import (
    LABELS,
    UnknownLabelError,
    canonical_label,
    denver_group,
    label_from_index,
    label_index,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1", "1"),
        (7, "7"),
        ("22", "22"),
        ("23", "X"),
        ("24", "Y"),
        ("x", "X"),
        (" Y ", "Y"),
        ("chr7", "7"),
        ("CHR X", "X"),
        ("chromosome_21", "21"),
        ("clase1", "1"),
        ("clase23", "X"),
        ("A1", "1"),
        ("B5", "5"),
        ("C12", "12"),
        ("D13", "13"),
        ("E18", "18"),
        ("F20", "20"),
        ("G22", "22"),
    ],
)
def test_canonical_label(name, expected):
    assert canonical_label(name) == expected


def test_zero_based():
    assert [canonical_label(i, zero_based=True) for i in (0, 21, 22, 23)] == ["1", "22", "X", "Y"]


@pytest.mark.parametrize("bad", ["0", "25", "clase25", "Z", "", "A7", "G1", "chr", "1.5"])
def test_unknown_labels(bad):
    with pytest.raises(UnknownLabelError):
        canonical_label(bad)


def test_index_roundtrip_and_groups():
    assert len(LABELS) == 24
    assert [label_from_index(label_index(lab)) for lab in LABELS] == list(LABELS)
    groups = "".join(denver_group(lab) for lab in LABELS)
    assert groups == "AAABBCCCCCCCDDDEEEFFGGCG"
    with pytest.raises(UnknownLabelError):
        label_from_index(24)
