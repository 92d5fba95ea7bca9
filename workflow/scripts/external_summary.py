"""Rule external_summary: thin adapter over karyoflow.evaluate.external."""

from karyoflow.evaluate.external import external_table, plot_external
from karyoflow.fileutil import atomic_path
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    table = external_table(list(sm.input.own), list(sm.input.external))
    with atomic_path(sm.output.table) as tmp:
        table.round(4).to_csv(tmp, index=False, lineterminator="\n")
    plot_external(table, sm.output.plot, title=f"{sm.wildcards.dataset}: external test sets")
    log(table.round(4).to_string(index=False))


run_logged(sm.log[0], main)
