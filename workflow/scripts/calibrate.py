"""Rule calibrate: thin adapter over karyoflow.tasks.classification.calibrate.run_calibration."""

from karyoflow.runner import run_logged
from karyoflow.tasks.classification.calibrate import run_calibration

sm = snakemake  # noqa: F821  (injected by Snakemake)

run_logged(
    sm.log[0],
    lambda log: run_calibration(
        model_file=sm.input.model,
        val_file=sm.input.val,
        manifest=sm.input.manifest,
        metrics_file=sm.input.metrics,
        call=sm.params.call,
        tta=sm.params.tta,
        seed=sm.params.seed,
        tracking=sm.params.tracking,
        outputs=dict(sm.output.items()),
        log=log,
    ),
)
