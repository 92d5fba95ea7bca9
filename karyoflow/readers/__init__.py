"""Dataset readers: each turns one dataset layout into manifest records.

Every reader has the signature
``read_<kind>(root: Path, *, dataset: str, options: Mapping[str, Any]) -> ReadResult``
and reports every bad input as a :class:`~karyoflow.records.Reject` instead of raising;
only a missing root or an empty dataset raises (``FileNotFoundError``/``ValueError``).
"""

from __future__ import annotations

from karyoflow.readers._common import CELL_REGEX_PRESETS, NAME_PRESETS
from karyoflow.readers.centromeres import read_centromere_csv
from karyoflow.readers.crops import read_crops
from karyoflow.readers.overlaps import read_overlaps_h5
from karyoflow.readers.voc import read_truth_csv, read_voc, truth_from_counts

__all__ = [
    "CELL_REGEX_PRESETS",
    "NAME_PRESETS",
    "READERS",
    "read_centromere_csv",
    "read_crops",
    "read_overlaps_h5",
    "read_truth_csv",
    "read_voc",
    "truth_from_counts",
]

#: Reader by dataset ``kind`` as used in the workflow config.
READERS = {
    "voc": read_voc,
    "crops": read_crops,
    "overlaps_h5": read_overlaps_h5,
    "centromere_csv": read_centromere_csv,
}
