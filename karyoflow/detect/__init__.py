"""Detection of chromosomes in whole metaphases (boxes and masks) and its evaluation.

- :mod:`karyoflow.detect.segment`: classical segmentation (:func:`detect_chromosomes`)
- :mod:`karyoflow.detect.evaluate`: box IoU, matching, precision / recall, count error
- :mod:`karyoflow.detect.pipeline`: parameters, evaluation of a VOC manifest
- :mod:`karyoflow.detect.plots`: true vs detected boxes over the metaphase
"""
