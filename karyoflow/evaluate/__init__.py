"""Evaluation: classification metrics, karyotype-level decoding and plots.

* :mod:`karyoflow.evaluate.metrics` - accuracy, per-class precision/recall/F1, confusion
  matrix, Denver-group accuracy, top-k accuracy (numpy only).
* :mod:`karyoflow.evaluate.karyotype` - per-cell Hungarian decoding under the
  expectation of two of each autosome and XX/XY, hierarchical (Denver group first)
  decisions, ISCN summaries and comparison with (partial) truth karyotypes.
* :mod:`karyoflow.evaluate.plots` - confusion matrix, training curves and grid-search
  comparison as deterministic PNGs.
"""

from __future__ import annotations

from karyoflow.evaluate.karyotype import (
    DEFAULT_EXTRA_COPY_PENALTY,
    DecodeResult,
    ParsedKaryotype,
    cell_summary,
    compare_karyotype,
    decode_cell,
    decode_cells,
    group_proba,
    hierarchical_from_flat,
    karyotype_report,
    parse_karyotype,
)
from karyoflow.evaluate.metrics import (
    GROUPS,
    classification_report,
    confusion_matrix,
    denver_indices,
    top_k_accuracy,
)
from karyoflow.evaluate.plots import (
    plot_confusion_matrix,
    plot_grid_comparison,
    plot_training_curves,
)

__all__ = [
    "DEFAULT_EXTRA_COPY_PENALTY",
    "GROUPS",
    "DecodeResult",
    "ParsedKaryotype",
    "cell_summary",
    "classification_report",
    "compare_karyotype",
    "confusion_matrix",
    "decode_cell",
    "decode_cells",
    "denver_indices",
    "group_proba",
    "hierarchical_from_flat",
    "karyotype_report",
    "parse_karyotype",
    "plot_confusion_matrix",
    "plot_grid_comparison",
    "plot_training_curves",
    "top_k_accuracy",
]
