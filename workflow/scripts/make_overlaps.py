"""Rule make_overlaps: thin adapter over karyoflow.overlaps.job.run_make_overlaps."""

from karyoflow.overlaps.job import run_make_overlaps
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)

run_logged(
    sm.log[0],
    lambda log: run_make_overlaps(
        dataset=sm.wildcards.dataset,
        kind=sm.params.kind,
        manifest=sm.input.manifest,
        counts=sm.params.counts,
        params=sm.params.generate,
        seed=sm.params.seed,
        outputs=dict(sm.output.items()),
        log=log,
    ),
)
