"""Rule preprocess_merge: shards -> one HDF5 per (size, split), rejects and summary."""

import json

from karyoflow.preprocess.chain import resolve_params
from karyoflow.preprocess.h5io import merge_shards
from karyoflow.preprocess.report import summarise_preprocess, write_preprocess_rejects
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    params = resolve_params(sm.params.steps)
    attrs = {"dataset": sm.wildcards.dataset, "seed": sm.params.seed}
    attrs["params"] = json.dumps(params, sort_keys=True)
    written = merge_shards(
        sm.input.shards, sm.params.out_dir, sizes=list(params["sizes"]), attrs=attrs
    )
    write_preprocess_rejects(sm.input.shards, sm.output.rejects)
    summary = summarise_preprocess(written, sm.output.rejects, sm.output.summary)
    log(json.dumps(summary["counts"]))


run_logged(sm.log[0], main)
