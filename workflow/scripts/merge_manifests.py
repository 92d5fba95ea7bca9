"""Rule merge_manifests: merged manifest plus summary.json, printed as a table."""

import json

import pandas as pd

from karyoflow.fileutil import atomic_path
from karyoflow.manifest import (
    format_summary,
    merge_manifests,
    read_manifest,
    summarise,
    write_manifest,
)
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    frames = {n: read_manifest(p) for n, p in zip(sm.params.names, sm.input.manifests, strict=True)}
    rejects = {
        n: pd.read_csv(p, dtype=str, keep_default_na=False)
        for n, p in zip(sm.params.names, sm.input.rejects, strict=True)
    }
    summary = summarise(frames, rejects)
    with atomic_path(sm.output.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    merged = merge_manifests(list(frames.values()))
    write_manifest(merged, sm.output.merged)
    log(format_summary(summary))


run_logged(sm.log[0], main)
