"""Rule train_detector: thin adapter over karyoflow.detect.job.run_detector_training."""

from karyoflow.detect.job import run_detector_training
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)

# Use a GPU only when the scheduler granted one (the profile caps `gpu` at what exists).
job = {**sm.params.job, "use_gpu": sm.params.job["use_gpu"] and sm.resources.get("gpu", 0) > 0}
run_logged(sm.log[0], lambda log: run_detector_training(job, dict(sm.output.items()), log=log))
