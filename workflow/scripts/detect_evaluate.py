"""Rules detect_evaluate and detect_learned_evaluate (with a model input): thin adapter
over karyoflow.detect.pipeline.run_detect_evaluate."""

from karyoflow.detect.pipeline import run_detect_evaluate
from karyoflow.runner import run_logged

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
        model=sm.input.get("model"),
    ),
)
