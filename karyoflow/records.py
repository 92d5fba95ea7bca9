"""The manifest's record layout, shared by every reader.

A reader returns a :class:`ReadResult`: one dict per chromosome instance (keys from
:data:`MANIFEST_COLUMNS`, missing ones filled with defaults by :func:`normalise_record`)
and one :class:`Reject` per bad input, each with the file and the reason. Nothing is
dropped silently: a record is either in ``records`` or in ``rejects``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from karyoflow.labels import denver_group, label_index

__all__ = [
    "MANIFEST_COLUMNS",
    "REJECT_COLUMNS",
    "IngestError",
    "ReadResult",
    "Reject",
    "normalise_record",
    "select_rows",
]

#: Column -> default, in manifest order.
MANIFEST_COLUMNS: dict[str, Any] = {
    "dataset": "",  # dataset name from config
    "instance_id": "",  # unique within the dataset
    "kind": "",  # metaphase | crop | pair | centromere
    "source": "",  # image (or HDF5) file the instance comes from
    "frame": -1,  # index inside a multi-image file (HDF5 pairs), -1 otherwise
    "cell_id": "",  # cell / karyotype the instance belongs to (split unit)
    "x0": 0,  # bbox in source pixel coordinates, x1/y1 exclusive
    "y0": 0,
    "x1": 0,
    "y1": 0,
    "image_width": 0,
    "image_height": 0,
    "label": "",  # canonical label "1".."22", "X", "Y"; "" when unknown (pairs)
    "label_index": -1,
    "group": "",  # Denver group A-G
    "centromere_x": math.nan,  # in source pixel coordinates
    "centromere_y": math.nan,
    "polygon": "",  # JSON [[x, y], ...] outline in source coordinates, "" if unknown
    "aux_source": "",  # second channel / sidecar image, "" if none
    "cell_truth": "",  # per-cell karyotype truth (e.g. "47,XY,+21"), "" if unknown
    # numerical karyotype the truth states ("normal" = 46,XX or 46,XY whatever the image
    # shows; "47,+21"), "" if it states none (count-only, structural, mosaic)
    "cell_karyotype": "",
    "preset_split": "",  # split given by the dataset itself (train.txt/test.txt)
    "split": "",  # train | val | test, set by the splitter
}

REJECT_COLUMNS: tuple[str, ...] = ("dataset", "source", "item", "reason")


class IngestError(RuntimeError):
    """A bad input in ``strict`` mode; the message is ``"<file>: <reason>"``."""


@dataclass(frozen=True)
class Reject:
    """One quarantined input: the file, which item in it (or ``""``), and why."""

    source: str
    reason: str
    item: str = ""

    def message(self) -> str:
        """One-line ``file[item]: reason`` text for logs and strict-mode errors."""
        where = f"{self.source}[{self.item}]" if self.item else self.source
        return f"{where}: {self.reason}"


@dataclass
class ReadResult:
    """What a reader found: records, rejects and per-cell truth."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: cell id -> karyotype truth (e.g. ``"47,XY,+21"`` or ``"47,+21"``)
    cell_truth: dict[str, str] = field(default_factory=dict)
    #: cell id -> numerical karyotype (``"normal"``, ``"47,+21"``; the column ``cell_karyotype``)
    cell_karyotype: dict[str, str] = field(default_factory=dict)

    def extend(self, other: ReadResult) -> None:
        """Append another result's records, rejects and truth."""
        self.records.extend(other.records)
        self.rejects.extend(other.rejects)
        self.cell_truth.update(other.cell_truth)
        self.cell_karyotype.update(other.cell_karyotype)


def normalise_record(record: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults, derive ``label_index`` and ``group``, and order the keys.

    Raises
    ------
    KeyError
        If ``record`` holds a key that is not a manifest column.
    """
    unknown = set(record) - set(MANIFEST_COLUMNS)
    if unknown:
        raise KeyError(f"not manifest columns: {sorted(unknown)}")
    out = {key: record.get(key, default) for key, default in MANIFEST_COLUMNS.items()}
    if out["label"]:
        out["label_index"] = label_index(out["label"])
        out["group"] = denver_group(out["label"])
    return out


def select_rows(data: Any, keep: Any) -> Any:
    """A copy of a dataclass of per-row arrays with only the rows ``keep`` selects
    (a bool mask or an index array): every NumPy array field - or array-like field
    with a ``shape``, such as images left on disk - is indexed, the other fields are
    kept as they are.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Rows:
    ...     x: np.ndarray
    ...     note: str = "n"
    >>> select_rows(Rows(np.arange(4)), np.array([True, False, True, False]))
    Rows(x=array([0, 2]), note='n')
    """
    import dataclasses

    def per_row(value: Any) -> bool:
        return isinstance(value, np.ndarray) or (
            hasattr(value, "__array__") and hasattr(value, "shape")
        )

    arrays = {
        f.name: getattr(data, f.name)[keep]
        for f in dataclasses.fields(data)
        if per_row(getattr(data, f.name))
    }
    return dataclasses.replace(data, **arrays)
