"""Rule ingest: thin adapter over karyoflow.ingest.ingest_dataset."""

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
    )
    write_rejects(out.rejects, sm.output.rejects)
    write_manifest(out.manifest, sm.output.manifest)


run_logged(sm.log[0], main)
