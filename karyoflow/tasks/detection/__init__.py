"""Detection of chromosomes in whole metaphases (boxes and masks) and its evaluation.

- :mod:`karyoflow.tasks.detection.segment`: classical segmentation (:func:`detect_chromosomes`)
- :mod:`karyoflow.tasks.detection.evaluate`: box IoU, matching, precision / recall, count error
- :mod:`karyoflow.tasks.detection.pipeline`: parameters, evaluation of a VOC manifest
- :mod:`karyoflow.tasks.detection.plots`: true vs detected boxes over the metaphase
"""
