"""Rule make_overlaps: thin adapter over karyoflow.tasks.segmentation.task.run_make_overlaps."""

from karyoflow.runner import run_logged
from karyoflow.tasks.segmentation.task import run_make_overlaps

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
