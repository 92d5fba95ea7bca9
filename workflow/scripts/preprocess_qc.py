"""Rule preprocess_qc: contact sheet raw -> masked -> straightened per class."""

from karyoflow.manifest import read_manifest
from karyoflow.preprocess.chain import resolve_params
from karyoflow.preprocess.qc import qc_sheet_for_manifest
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    qc_sheet_for_manifest(
        read_manifest(sm.input.manifest),
        resolve_params(sm.params.steps),
        sm.output[0],
        per_class=sm.params.per_class,
        seed=sm.params.seed,
        title=f"{sm.wildcards.dataset}: raw / masked / straightened",
        log=log,
    )


run_logged(sm.log[0], main)
