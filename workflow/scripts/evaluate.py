"""Rules evaluate, evaluate_centromere, evaluate_segmentation, detect_learned_evaluate:
thin adapter over karyoflow.engine.run.run_evaluate."""

from karyoflow.engine.job import Job
from karyoflow.engine.run import run_evaluate
from karyoflow.runner import run_logged
from karyoflow.tasks import task_for

sm = snakemake  # noqa: F821  (injected by Snakemake)

job = Job.from_snakemake(sm)
run_logged(
    sm.log[0],
    lambda log: run_evaluate(task_for(job.task), job, dict(sm.output.items()), log=log),
)
