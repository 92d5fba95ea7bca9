"""Rule grid_summary: comparison table and plot of the grid, best point per model."""

import json

from karyoflow.evaluate.plots import plot_grid_comparison
from karyoflow.fileutil import atomic_path
from karyoflow.runner import run_logged
from karyoflow.tasks.classification.grid import best_points, grid_table

sm = snakemake  # noqa: F821  (injected by Snakemake)


def main(log):
    table = grid_table(sm.input.metrics)
    best = best_points(table, sm.params.select_by)
    with atomic_path(sm.output.table) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    with atomic_path(sm.output.best) as tmp:
        tmp.write_text(json.dumps(best, indent=2) + "\n")
    plot_grid_comparison(table, sm.output.plot, title=f"{sm.wildcards.dataset}: grid search")
    log(table.to_string(index=False))
    log(f"best: {best['best']}")


run_logged(sm.log[0], main)
