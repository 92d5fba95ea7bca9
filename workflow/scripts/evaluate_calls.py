"""Rule evaluate_calls: thin adapter over karyoflow.evaluate.end_to_end.run_end_to_end."""

from karyoflow.evaluate.end_to_end import run_end_to_end
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)
detector = list(sm.input.get("detector") or [])
rates = list(sm.input.get("detector_metrics") or [])

run_logged(
    sm.log[0],
    lambda log: run_end_to_end(
        dataset=sm.wildcards.dataset,
        best_json=sm.input.best,
        manifest=sm.input.manifest,
        splits=sm.params.splits,
        detector_model=detector[0] if detector else None,
        detector_metrics=rates[0] if rates else None,
        preprocess=sm.params.preprocess,
        detect=sm.params.detect,
        call=sm.params.call,
        cases=sm.params.cases,
        tta=sm.params.tta,
        tracking=sm.params.tracking,
        outputs=dict(sm.output.items()),
        log=log,
    ),
)
