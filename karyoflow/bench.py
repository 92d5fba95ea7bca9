"""Benchmarks: ``python -m karyoflow.bench`` (``make bench``) prints one JSON line per case.

Each case runs in a fresh subprocess so its wall time and peak resident memory are its
own. Cases on ``../shared/data`` are skipped (with a JSON line saying so) when that
folder is absent. Record results with the machine in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from karyoflow.config import PROJECT_ROOT, load_config

__all__ = ["CASES", "main", "run_case"]

SHARED = PROJECT_ROOT.parent / "shared" / "data"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _bench_synth() -> dict[str, Any]:
    from karyoflow.synth.dataset import synthesize

    config = load_config(PROJECT_ROOT / "config" / "config.yaml")
    params = config["synthetic"]["params"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = synthesize(Path(tmp) / "synth", params, config["seed"])
        wall = time.perf_counter() - start
    return {
        "cells": summary["cells"],
        "objects": summary["objects"],
        "pairs": summary["pairs"],
        "wall_s": round(wall, 3),
        "cells_per_s": round(summary["cells"] / wall, 3),
    }


def _bench_ingest(example: str, dataset: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        from karyoflow.ingest import ingest_dataset

        config = load_config(PROJECT_ROOT / "config" / "examples" / example)
        entry = config["datasets"][dataset]
        if not (PROJECT_ROOT / entry["path"]).exists():
            return {"skipped": f"{entry['path']} not found"}
        start = time.perf_counter()
        out = ingest_dataset(
            dataset,
            entry,
            seed=config["seed"],
            split=config["split"],
            base_dir=PROJECT_ROOT,
            log=lambda _msg: None,
        )
        wall = time.perf_counter() - start
        n = len(out.manifest)
        return {
            "instances": n,
            "sources": int(out.manifest["source"].nunique()),
            "rejected": len(out.rejects),
            "wall_s": round(wall, 3),
            "instances_per_s": round(n / wall, 1),
        }

    return run


#: case name -> function returning the measured fields.
CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "synth_default": _bench_synth,
    "ingest_taichung_voc": _bench_ingest("taichung_voc.yaml", "taichung"),
    "ingest_karyograms612": _bench_ingest("karyograms_612.yaml", "karyograms612"),
    "ingest_pampaj7": _bench_ingest("pampaj7_tiff.yaml", "pampaj7"),
}


def run_case(name: str) -> dict[str, Any]:
    """Run one case in this process and return its JSON record."""
    fields = CASES[name]()
    return {
        "bench": name,
        **fields,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases (default all), each in a subprocess; print JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m karyoflow.bench")
    parser.add_argument("cases", nargs="*", help=f"cases to run (default all): {list(CASES)}")
    parser.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {list(CASES)}")
    if args.inline:
        for name in args.cases:
            print(json.dumps(run_case(name)), flush=True)
        return 0
    status = 0
    for name in args.cases or list(CASES):
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "karyoflow.bench", "--inline", name],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
        )
        if proc.returncode != 0:
            status = 1
            tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(json.dumps({"bench": name, "error": tail}), flush=True)
        else:
            print(proc.stdout.strip().splitlines()[-1], flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
