"""Rule detect_evaluate (the classical detector): thin adapter over
karyoflow.tasks.detection.pipeline.run_detect_evaluate."""

from karyoflow.runner import run_logged
from karyoflow.tasks.detection.pipeline import run_detect_evaluate

sm = snakemake  # noqa: F821  (injected by Snakemake)

run_logged(
    sm.log[0],
    lambda log: run_detect_evaluate(
        dataset=sm.wildcards.dataset,
        manifest=sm.input.manifest,
        params=sm.params.detect,
        overlay_cells=sm.params.overlay_cells,
        outputs=dict(sm.output.items()),
        threads=sm.threads,
        log=log,
    ),
)
