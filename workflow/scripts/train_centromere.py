"""Rule train_centromere: thin adapter over karyoflow.centromere.job.run_centromere_training."""

from karyoflow.centromere.job import run_centromere_training
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)

# Use a GPU only when the scheduler granted one (the profile caps `gpu` at what exists).
job = {**sm.params.job, "use_gpu": sm.params.job["use_gpu"] and sm.resources.get("gpu", 0) > 0}
run_logged(sm.log[0], lambda log: run_centromere_training(job, dict(sm.output.items()), log=log))
