"""Rule preprocess_shard: one shard of a dataset through the preprocessing chain."""

import json

from karyoflow.manifest import read_manifest
from karyoflow.preprocess.chain import preprocess_rows, resolve_params
from karyoflow.preprocess.h5io import write_shard
from karyoflow.preprocess.sharding import eligible_rows, select_shard
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    import cv2

    cv2.setNumThreads(sm.threads)  # the rule's thread budget, no oversubscription
    params = resolve_params(sm.params.steps)
    shard, n_shards = int(sm.wildcards.shard), int(sm.params.n_shards)
    rows = select_shard(eligible_rows(read_manifest(sm.input.manifest)), shard, n_shards)
    log(
        f"[preprocess] {sm.wildcards.dataset} shard {shard + 1}/{n_shards}: "
        f"{len(rows)} instances from {rows['source'].nunique()} images"
    )
    data = preprocess_rows(rows, params, sm.params.seed, log=log)
    attrs = {"dataset": sm.wildcards.dataset, "shard": shard, "n_shards": n_shards}
    attrs |= {"seed": sm.params.seed, "params": json.dumps(params, sort_keys=True)}
    write_shard(sm.output[0], data, attrs)


run_logged(sm.log[0], main)
