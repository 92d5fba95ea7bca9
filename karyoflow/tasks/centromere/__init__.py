"""Centromere localisation: data from the preprocessed HDF5, metrics, figures, jobs.

Modules: :mod:`~karyoflow.tasks.centromere.data` (rows with a known centromere, tf.data with
flips that move the point), :mod:`~karyoflow.tasks.centromere.metrics` (pixel and
length-relative errors, centromere index), :mod:`~karyoflow.tasks.centromere.figures`,
:mod:`~karyoflow.tasks.centromere.task` (the training and evaluation jobs of the workflow).
Models live in :mod:`karyoflow.models.centromere`.
"""
