"""Rules train, train_centromere, train_segmentation, train_detector: thin adapter over
karyoflow.engine.run.run_train."""

from karyoflow.engine.job import Job
from karyoflow.engine.run import run_train
from karyoflow.runner import run_logged
from karyoflow.tasks import task_for

sm = snakemake  # noqa: F821  (injected by Snakemake)

job = Job.from_snakemake(sm)
run_logged(
    sm.log[0], lambda log: run_train(task_for(job.task), job, dict(sm.output.items()), log=log)
)
