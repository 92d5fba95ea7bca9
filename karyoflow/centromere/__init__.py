"""Centromere localisation: data from the preprocessed HDF5, metrics, figures, jobs.

Modules: :mod:`~karyoflow.centromere.data` (rows with a known centromere, tf.data with
flips that move the point), :mod:`~karyoflow.centromere.metrics` (pixel and
length-relative errors, centromere index), :mod:`~karyoflow.centromere.figures`,
:mod:`~karyoflow.centromere.job` (the training and evaluation jobs of the workflow).
Models live in :mod:`karyoflow.models.centromere`.
"""
