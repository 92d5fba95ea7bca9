"""Canonical chromosome labels.

Every reader maps whatever naming a dataset uses (``1``..``22``/``X``/``Y``, ``chr7``,
Denver-prefixed ``C7``, ``clase23``, zero-based ``0``..``23``) onto one label set:

=========  =====  =======
label      index  Denver
=========  =====  =======
``"1"``    0      A
...        ...    ...
``"22"``   21     G
``"X"``    22     C
``"Y"``    23     G
=========  =====  =======
"""

from __future__ import annotations

import re

__all__ = [
    "DENVER_GROUPS",
    "LABELS",
    "UnknownLabelError",
    "canonical_label",
    "denver_group",
    "label_from_index",
    "label_index",
]

#: The 24 canonical labels in model order.
LABELS: tuple[str, ...] = tuple([str(i) for i in range(1, 23)] + ["X", "Y"])

_INDEX = {lab: i for i, lab in enumerate(LABELS)}

#: Denver group of each canonical label (X is in group C, Y in group G).
DENVER_GROUPS: dict[str, str] = {
    **{str(i): "A" for i in (1, 2, 3)},
    **{str(i): "B" for i in (4, 5)},
    **{str(i): "C" for i in range(6, 13)},
    **{str(i): "D" for i in (13, 14, 15)},
    **{str(i): "E" for i in (16, 17, 18)},
    **{str(i): "F" for i in (19, 20)},
    **{str(i): "G" for i in (21, 22)},
    "X": "C",
    "Y": "G",
}

_PREFIX = re.compile(r"^\s*(?:chr(?:omosome)?|clase|class|[A-G](?=\d))\s*[_\-.]?\s*", re.I)


class UnknownLabelError(ValueError):
    """A class name that maps to no canonical chromosome label."""


def canonical_label(name: object, *, zero_based: bool = False) -> str:
    """Map a dataset's class name to the canonical label.

    Parameters
    ----------
    name : object
        A class name as found in a dataset: ``"7"``, ``7``, ``"chr7"``, ``"C7"``,
        ``"clase7"``, ``"x"``, ``"23"`` (X), ``"24"`` (Y), ``" chrY "``.
    zero_based : bool, optional
        Numbers count from 0 (``0`` is chromosome 1, ``22`` is X, ``23`` is Y).

    Returns
    -------
    str
        One of :data:`LABELS`.

    Raises
    ------
    UnknownLabelError
        If the name maps to no chromosome, or a Denver prefix contradicts the number
        (``"A7"``).

    Examples
    --------
    >>> canonical_label("C7"), canonical_label("chrX"), canonical_label("24")
    ('7', 'X', 'Y')
    >>> canonical_label(22, zero_based=True)
    'X'
    """
    raw = str(name).strip()
    text = raw
    denver = None
    match = _PREFIX.match(text)
    if match:
        prefix = match.group(0).strip().rstrip("_-.").strip()
        if len(prefix) == 1 and prefix.upper() in "ABCDEFG":
            denver = prefix.upper()
        text = text[match.end() :]
    text = text.strip().upper()
    if text in ("X", "Y"):
        label = text
    elif text.isdigit():
        number = int(text) + (1 if zero_based else 0)
        if number == 23:
            label = "X"
        elif number == 24:
            label = "Y"
        elif 1 <= number <= 22:
            label = str(number)
        else:
            raise UnknownLabelError(f"unknown chromosome label {raw!r}")
    else:
        raise UnknownLabelError(f"unknown chromosome label {raw!r}")
    if denver is not None and DENVER_GROUPS[label] != denver and label not in ("X", "Y"):
        raise UnknownLabelError(
            f"label {raw!r}: Denver group {denver} does not contain chromosome {label}"
        )
    return label


def label_index(label: str) -> int:
    """Model index (0-23) of a canonical label.

    Examples
    --------
    >>> label_index("1"), label_index("X"), label_index("Y")
    (0, 22, 23)
    """
    try:
        return _INDEX[label]
    except KeyError:
        raise UnknownLabelError(f"not a canonical label: {label!r}") from None


def label_from_index(index: int) -> str:
    """Canonical label of a model index (inverse of :func:`label_index`)."""
    if not 0 <= int(index) < len(LABELS):
        raise UnknownLabelError(f"label index out of range: {index!r}")
    return LABELS[int(index)]


def denver_group(label: str) -> str:
    """Denver group letter (A-G) of a canonical label.

    Examples
    --------
    >>> denver_group("21"), denver_group("X")
    ('G', 'C')
    """
    try:
        return DENVER_GROUPS[label]
    except KeyError:
        raise UnknownLabelError(f"not a canonical label: {label!r}") from None
