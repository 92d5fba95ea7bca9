"""Rule evaluate_segmentation: adapter over karyoflow.overlaps.job.run_evaluate_segmentation."""

from karyoflow.overlaps.job import run_evaluate_segmentation
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)

job = {**sm.params.job, "model_file": sm.input.model, "test": sm.input.test}
run_logged(sm.log[0], lambda log: run_evaluate_segmentation(job, dict(sm.output.items()), log=log))
