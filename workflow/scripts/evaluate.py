"""Rule evaluate: thin adapter over karyoflow.train.evaluation.run_evaluation."""

from karyoflow.runner import run_logged
from karyoflow.train.evaluation import run_evaluation

sm = snakemake  # noqa: F821  (injected by Snakemake)

run_logged(
    sm.log[0],
    lambda log: run_evaluation(
        dataset=sm.wildcards.dataset,
        model=sm.wildcards.model,
        grid_csv=sm.input.grid,
        model_files=list(sm.input.models),
        calibration_files=list(sm.input.calibrations),
        test_file=sm.input.test,
        manifest=sm.input.manifest,
        select_by=sm.params.select_by,
        decode=sm.params.decode,
        seed=sm.params.seed,
        tta=sm.params.tta,
        tracking=sm.params.tracking,
        outputs=dict(sm.output.items()),
        log=log,
    ),
)
