"""The ``karyoflow`` command.

Subcommands grow with the project; each is a thin layer over package functions.
Expected errors print ``karyoflow: <file>: <reason>`` and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from karyoflow import __version__

__all__ = ["build_parser", "main"]


def _cmd_synth(args: argparse.Namespace) -> int:
    from karyoflow.config import load_config
    from karyoflow.runner import run_logged
    from karyoflow.synth.dataset import synthesize

    config = load_config(args.config)
    params = dict(config["synthetic"]["params"])
    if args.cells is not None:
        params["cells"] = args.cells
    seed = config["seed"] if args.seed is None else args.seed

    def body(log):
        summary = synthesize(args.out, params, seed, progress=log)
        log(json.dumps({k: summary[k] for k in ("cells", "objects", "pairs") if k in summary}))

    run_logged(None, body)
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from karyoflow.config import load_config
    from karyoflow.ingest import ingest_dataset
    from karyoflow.manifest import format_summary, summarise, write_manifest, write_rejects
    from karyoflow.runner import run_logged

    config = load_config(args.config)
    names = args.dataset or [n for n, e in config["datasets"].items() if e.get("enabled", True)]
    unknown = [n for n in names if n not in config["datasets"]]
    if unknown:
        raise SystemExit(f"karyoflow: {args.config}: no dataset {unknown[0]!r}")
    out_dir = Path(args.out)

    def body(log):
        manifests, rejects = {}, {}
        for name in names:
            entry = config["datasets"][name]
            fixed = None
            if entry.get("split_with") in manifests:
                other = manifests[entry["split_with"]]
                fixed = dict(zip(other["cell_id"], other["split"], strict=True))
            res = ingest_dataset(
                name,
                entry,
                seed=config["seed"],
                split=config["split"],
                strict=config["strict"] or args.strict,
                fixed_splits=fixed,
                log=log,
            )
            ext = config["manifest_format"]
            write_manifest(res.manifest, out_dir / f"{name}.{ext}")
            write_rejects(res.rejects, out_dir / f"{name}.rejected.csv")
            manifests[name], rejects[name] = res.manifest, res.rejects
        log(format_summary(summarise(manifests, rejects)))

    run_logged(None, body)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from karyoflow.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise SystemExit(f"karyoflow: {exc}") from None
    print(f"{args.config}: valid ({len(config['datasets'])} datasets)")
    return 0


def _cmd_labels(args: argparse.Namespace) -> int:
    from karyoflow.labels import DENVER_GROUPS, LABELS

    for i, lab in enumerate(LABELS):
        print(f"{i:>2}  {lab:>2}  {DENVER_GROUPS[lab]}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from karyoflow.config import PROJECT_ROOT

    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), *args.snakemake_args]
    if args.config:
        cmd[4:4] = ["--configfile", str(Path(args.config).resolve())]
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd, cwd=PROJECT_ROOT, env=os.environ.copy())


def _cmd_ui(args: argparse.Namespace) -> int:
    from karyoflow.config import load_config
    from karyoflow.train.tracking import resolve_tracking_uri

    config = load_config(args.config)
    results = Path(args.results)
    uri = resolve_tracking_uri(config["mlflow"]["tracking_uri"], results)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise SystemExit(f"karyoflow: {uri}: no MLflow store yet (run the workflow first)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", args.host, "--port", str(args.port)]
    if uri.startswith("sqlite:"):
        cmd += ["--default-artifact-root", (results / "mlflow" / "artifacts").resolve().as_uri()]
    print("+", " ".join(cmd), file=sys.stderr)
    print(f"MLflow dashboard: http://{args.host}:{args.port}", file=sys.stderr)
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``karyoflow`` command."""
    parser = argparse.ArgumentParser(
        prog="karyoflow",
        description="Reproducible chromosome image analysis (Snakemake workflow + tools).",
        epilog="Most users run the whole workflow: `make run` or `karyoflow run`.",
    )
    parser.add_argument("--version", action="version", version=f"karyoflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the synthetic G-banded dataset")
    p.add_argument("out", help="output folder (created; replaced if it is a previous synth output)")
    p.add_argument("--config", default="config/config.yaml", help="config with synthetic/params")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--cells", type=int, help="override the number of metaphase cells")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("ingest", help="read datasets into split manifests (outside Snakemake)")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--dataset", action="append", help="dataset name (repeatable); default all")
    p.add_argument("--out", default="results/manifest", help="output folder")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("check-config", help="validate a config file against the schema")
    p.add_argument("config")
    p.set_defaults(func=_cmd_check_config)

    p = sub.add_parser("labels", help="print the canonical label table")
    p.set_defaults(func=_cmd_labels)

    p = sub.add_parser("ui", help="open the MLflow dashboard on the project's store")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--results", default="results", help="results folder of the run")
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser("run", help="run the Snakemake workflow in the project folder")
    p.add_argument("--cores", default="2")
    p.add_argument("--config", help="config file (default config/config.yaml)")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="passed to snakemake")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``karyoflow`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
