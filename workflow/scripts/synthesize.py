"""Rule synthesize: thin adapter over karyoflow.synth.dataset.synthesize."""

from karyoflow.runner import run_logged
from karyoflow.synth.dataset import synthesize

sm = snakemake  # noqa: F821  (injected by Snakemake)

run_logged(
    sm.log[0],
    lambda log: synthesize(sm.output[0], sm.params.synth, sm.params.seed, progress=log),
)
