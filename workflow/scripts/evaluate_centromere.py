"""Rule evaluate_centromere: thin adapter over karyoflow.centromere.job (evaluation)."""

from karyoflow.centromere.job import run_centromere_evaluation
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)

run_logged(
    sm.log[0],
    lambda log: run_centromere_evaluation(
        sm.params.job, sm.input.model, list(sm.input.test), dict(sm.output.items()), log=log
    ),
)
