"""Rule predict_cells: thin adapter over karyoflow.predict.run_predict_cells."""

from karyoflow.predict import run_predict_cells
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)
detector = sm.input.get("detector") or []  # the learned detector when predict.boxes: learned
detector = [detector] if isinstance(detector, str) else list(detector)

run_logged(
    sm.log[0],
    lambda log: run_predict_cells(
        sm.input.best,
        sm.input.manifest,
        sm.output.cells,
        sm.output.summary,
        settings=sm.params.settings,
        preprocess=sm.params.preprocess,
        detect=sm.params.detect,
        log=log,
        detector_model=detector[0] if detector else None,
        tta=sm.params.tta,
        call=sm.params.call,
        cases=sm.params.cases,
    ),
)
