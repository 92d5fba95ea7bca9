"""Rule learning_curve: thin adapter over karyoflow.evaluate.curves."""

from karyoflow.evaluate.curves import curve_table, plot_curve
from karyoflow.fileutil import atomic_path
from karyoflow.runner import run_logged

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    table = curve_table(sm.params.entries, list(sm.input.metrics))
    with atomic_path(sm.output.table) as tmp:
        table.round(4).to_csv(tmp, index=False, lineterminator="\n")
    plot_curve(table, sm.output.plot, title=f"{sm.wildcards.dataset}: learning curve")
    log(table.round(4).to_string(index=False))


run_logged(sm.log[0], main)
