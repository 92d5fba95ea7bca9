"""Overlapping chromosome pairs: generation, 4-class segmentation training and evaluation.

* :mod:`karyoflow.tasks.segmentation.generate` - cut single chromosomes (grey + mask) out of any
  ingested dataset and compose labelled overlapping pairs in the public HDF5 layout
  (rule ``make_overlaps``).
* :mod:`karyoflow.tasks.segmentation.losses` - swap-invariant losses and metrics (the order of
  the two chromosomes is arbitrary).
* :mod:`karyoflow.tasks.segmentation.instances` - the geometric modes: a background / chromosome /
  overlap (/ contact) map split into chromosome A and B by pairing the arms across the
  overlap (``split_instances``).
* :mod:`karyoflow.tasks.segmentation.task` - the training and evaluation jobs (rules
  ``train_segmentation`` and ``evaluate_segmentation``), MLflow child runs.

Models live in :mod:`karyoflow.models.segmentation`, metrics and figures in
:mod:`karyoflow.evaluate.segmentation`.
"""
