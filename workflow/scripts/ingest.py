"""Rule ingest: thin adapter over karyoflow.ingest.ingest_dataset."""

from pathlib import Path

from karyoflow.ingest import ingest_dataset
from karyoflow.manifest import read_manifest, write_manifest, write_rejects
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    fixed = None
    if hasattr(sm.input, "split_with"):
        other = read_manifest(sm.input.split_with)
        fixed = dict(zip(other["cell_id"], other["split"], strict=True))
    out = ingest_dataset(
        sm.wildcards.dataset,
        sm.params.entry,
        seed=sm.params.seed,
        split=sm.params.split,
        strict=sm.params.strict,
        fixed_splits=fixed,
        log=log,
        # kept when everything is rejected: Snakemake removes a failed job's outputs
        rejects_path=str(Path(sm.log[0]).with_suffix(".rejected.csv")),
    )
    write_rejects(out.rejects, sm.output.rejects)
    write_manifest(out.manifest, sm.output.manifest)


run_logged(sm.log[0], main)
