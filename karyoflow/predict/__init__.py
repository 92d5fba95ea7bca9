"""From a metaphase image (or chromosome crops) to a karyogram and an ISCN count.

:func:`predict_cell` runs, for one image::

    boxes (given, from a VOC file, or detected: karyoflow.tasks.detection)
      -> preprocessing chain per box (the training chain, karyoflow.preprocess)
      -> classifier (+ relative size in the cell when the model takes it),
         probabilities calibrated (calibration.json beside the model)
      -> karyotype call over whole-cell hypotheses (karyoflow.evaluate.hypotheses):
         ISCN, posterior, runner-up, review flag and reasons
      -> karyogram (karyoflow.karyogram), overlay

:func:`write_prediction` writes ``karyogram.png``, ``overlay.png``,
``chromosomes.csv`` and ``summary.json`` for a cell; :func:`load_classifier` takes a
``.keras`` path, an MLflow model URI (``runs:/...``, ``models:/name/3``) or
``champion`` (the registry alias of ``karyoflow-classification``).

Modules: :mod:`~karyoflow.predict.classifier` (loading a model with its calibration),
:mod:`~karyoflow.predict.cell` (one cell), :mod:`~karyoflow.predict.render` (its
files), :mod:`~karyoflow.predict.batch` (manifests, folders, case calls).
"""

from __future__ import annotations

from karyoflow.predict.batch import predict_manifest_cells, predict_paths, run_predict_cells
from karyoflow.predict.cell import CellPrediction, predict_cell, predict_crops
from karyoflow.predict.classifier import Classifier, default_model, load_classifier
from karyoflow.predict.render import write_prediction

__all__ = [
    "CellPrediction",
    "Classifier",
    "default_model",
    "load_classifier",
    "predict_cell",
    "predict_crops",
    "predict_manifest_cells",
    "predict_paths",
    "run_predict_cells",
    "write_prediction",
]
