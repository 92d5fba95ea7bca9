"""Rule train_segmentation: thin adapter over karyoflow.overlaps.job.run_train_segmentation."""

from karyoflow.overlaps.job import run_train_segmentation
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)

# Use a GPU only when the scheduler granted one (the profile caps `gpu` at what exists).
job = {
    **sm.params.job,
    "train": sm.input.train,
    "val": sm.input.val,
    "use_gpu": sm.params.job["use_gpu"] and sm.resources.get("gpu", 0) > 0,
}
run_logged(sm.log[0], lambda log: run_train_segmentation(job, dict(sm.output.items()), log=log))
