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
from typing import Any

from karyoflow import __version__

__all__ = ["build_parser", "main"]


def project_path(path: str | Path) -> Path:
    """``path`` as given when it exists (or is absolute), else under the project root:
    the default ``config/config.yaml`` and ``results`` work from any folder."""
    from karyoflow.config import PROJECT_ROOT

    path = Path(path)
    if path.is_absolute() or path.exists() or not (PROJECT_ROOT / path).exists():
        return path
    return PROJECT_ROOT / path


def _config(path: str | Path) -> dict:
    """The validated config with its image limits applied; a config that fails to
    load or to validate is one line on stderr and exit status 1."""
    from karyoflow.config import ConfigError, apply_limits, load_config

    try:
        config = load_config(project_path(path))
    except ConfigError as exc:
        raise SystemExit(f"karyoflow: {exc}") from None
    apply_limits(config)
    return config


def _cmd_synth(args: argparse.Namespace) -> int:
    from karyoflow.runner import run_logged
    from karyoflow.synth.dataset import synthesize

    config = _config(args.config)
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
    from karyoflow.ingest import ingest_dataset
    from karyoflow.manifest import format_summary, summarise, write_manifest, write_rejects
    from karyoflow.runner import run_logged

    config = _config(args.config)
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
                rejects_path=out_dir / f"{name}.rejected.csv",
            )
            ext = config["manifest_format"]
            write_manifest(res.manifest, out_dir / f"{name}.{ext}")
            write_rejects(res.rejects, out_dir / f"{name}.rejected.csv")
            manifests[name], rejects[name] = res.manifest, res.rejects
        log(format_summary(summarise(manifests, rejects)))

    run_logged(None, body)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args.config)
    print(f"{args.config}: valid ({len(config['datasets'])} datasets)")
    return 0


def _cmd_config_reference(args: argparse.Namespace) -> int:
    from karyoflow.config_reference import reference_markdown

    sys.stdout.write(reference_markdown())
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
    from karyoflow.engine.tracking import resolve_tracking_uri

    config = _config(args.config)
    results = project_path(args.results)
    uri = resolve_tracking_uri(config["mlflow"]["tracking_uri"], results)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise SystemExit(f"karyoflow: {uri}: no MLflow store yet (run the workflow first)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    if uri.startswith("sqlite:"):
        cmd += ["--default-artifact-root", (results / "mlflow" / "artifacts").resolve().as_uri()]
    print("+", " ".join(cmd), file=sys.stderr)
    print(f"MLflow dashboard: http://{args.host}:{args.port}", file=sys.stderr)
    return subprocess.call(cmd)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from karyoflow.reproduce import format_table, reproduce

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    ok, rows = reproduce(
        args.tag,
        repo=args.repo,
        workdir=args.dir,
        tolerance=args.tolerance,
        pull=not args.no_pull,
        log=log,
    )
    print(format_table(rows))
    return 0 if ok else 1


def _cmd_annotate_centromeres(args: argparse.Namespace) -> int:
    from karyoflow.annotate import AnnotationSession, serve

    try:
        session = AnnotationSession.open(args.crops, args.out)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"karyoflow: {str(exc).strip(chr(39))}") from None
    serve(session, args.host, args.port, open_browser=not args.no_browser)
    return 0


def _classifier_and_config(args: argparse.Namespace):
    from karyoflow.engine.tracking import resolve_tracking_uri
    from karyoflow.predict import default_model, load_classifier

    config = _config(args.config)
    results = project_path(args.results)
    uri = resolve_tracking_uri(config["mlflow"]["tracking_uri"], results)
    source = args.model or default_model(results)
    tta = config["evaluate"]["tta"]
    classifier = load_classifier(source, tracking_uri=uri, tta=tta)
    trained_on = getattr(classifier.calibration, "trained_on", "") or "unknown data"
    print(f"karyoflow: model {source} (trained on {trained_on})", file=sys.stderr)
    return classifier, config


def _check_inputs(args: argparse.Namespace) -> None:
    """Missing input files are one line, before TensorFlow loads."""
    paths = [("image", p) for p in getattr(args, "images", None) or []]
    model = getattr(args, "model", None)
    if model and model != "champion" and ":/" not in model:
        paths.append(("model", model))
    for name in ("detector", "voc"):
        if getattr(args, name, None):
            paths.append((name, getattr(args, name)))
    if getattr(args, "config", None):
        paths.append(("config", project_path(args.config)))
    for what, path in paths:
        if not Path(path).exists():
            raise SystemExit(f"karyoflow: {path}: no such {what} file or folder")


def _cmd_predict(args: argparse.Namespace) -> int:
    _check_inputs(args)
    from karyoflow.predict import predict_paths

    try:
        classifier, config = _classifier_and_config(args)
        detector = None
        if args.detector:
            from karyoflow.tasks.detection.pipeline import learned_detector

            detector, _ = learned_detector(args.detector)
        table = predict_paths(
            args.images,
            classifier,
            args.out,
            voc_dir=args.voc,
            preprocess=config["preprocess"]["params"],
            detect=(config.get("detect") or {}).get("params"),
            decode=not args.no_decode,
            call=config["evaluate"]["call"],
            cases=config["evaluate"]["cases"],
            log=lambda m: print(m, file=sys.stderr, flush=True),
            detector=detector,
        )
    except (OSError, ValueError) as exc:
        raise SystemExit(f"karyoflow: {exc}") from None
    cols = [c for c in ("image", "iscn", "posterior", "review", "status") if c in table]
    print(table[cols].to_string(index=False))
    return 0 if (table["status"] == "ok").all() else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    _check_inputs(args)
    from karyoflow.serve import ServeLimits, make_server, model_name

    try:
        classifier, config = _classifier_and_config(args)
        limits = ServeLimits(
            max_bytes=int(args.max_mb * 1024 * 1024),
            max_pixels=int(args.max_pixels),
            max_boxes=int(args.max_boxes),
            workers=int(args.workers),
        )
        server = make_server(
            classifier,
            host=args.host,
            port=args.port,
            token=args.token,
            allowed_hosts=args.allowed_host,
            limits=limits,
            preprocess=config["preprocess"]["params"],
            detect=(config.get("detect") or {}).get("params"),
            call=config["evaluate"]["call"],
        )
    except (OSError, ValueError) as exc:
        raise SystemExit(f"karyoflow: {exc}") from None
    print(
        f"karyoflow serve: {server.url}/  (model {model_name(classifier.source)}; "
        f"API docs {server.url}/api/docs; Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    server.run()
    return 0


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        help="a .keras file, an MLflow model URI (runs:/..., models:/name/1) or 'champion' "
        "(default: the best model of the newest run under --results)",
    )
    p.add_argument("--config", default="config/config.yaml", help="preprocessing settings")
    p.add_argument("--results", default="results", help="results folder of the run")


def _command(sub: Any, name: str, example: str, **kw: Any) -> argparse.ArgumentParser:
    """A subcommand whose help shows the defaults and ends with an example line."""
    return sub.add_parser(name, epilog=f"example: {example}", formatter_class=_Help, **kw)


class _Help(argparse.HelpFormatter):
    """Help that shows each option's default (unless it is none or the help names it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``karyoflow`` command."""
    parser = argparse.ArgumentParser(
        prog="karyoflow",
        description="Reproducible chromosome image analysis (Snakemake workflow + tools).",
        epilog="Most users run the whole workflow: `make run` or `karyoflow run`.",
    )
    parser.add_argument("--version", action="version", version=f"karyoflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        "synth",
        "karyoflow synth results/synthetic/mine --cells 12",
        help="generate the synthetic G-banded dataset",
    )
    p.add_argument("out", help="output folder (created; replaced if it is a previous synth output)")
    p.add_argument("--config", default="config/config.yaml", help="config with synthetic.params")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--cells", type=int, help="override the number of metaphase cells")
    p.set_defaults(func=_cmd_synth)

    p = _command(
        sub,
        "ingest",
        "karyoflow ingest --config config/examples/taichung_voc.yaml --strict",
        help="read datasets into split manifests (outside Snakemake)",
    )
    p.add_argument("--config", default="config/config.yaml", help="config with the datasets")
    p.add_argument("--dataset", action="append", help="dataset name (repeatable); default all")
    p.add_argument("--out", default="results/manifest", help="output folder")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input")
    p.set_defaults(func=_cmd_ingest)

    p = _command(
        sub,
        "check-config",
        "karyoflow check-config config/examples/taichung_union.yaml",
        help="validate a config file against the schema",
    )
    p.add_argument("config", help="the YAML config file to check")
    p.set_defaults(func=_cmd_check_config)

    p = _command(
        sub,
        "config-reference",
        "karyoflow config-reference > docs/configuration.md",
        help="print the configuration reference (Markdown, as in docs/configuration.md)",
        description="Every config key with its type, default and meaning, from the JSON "
        "schema and the code's option tables. Example: karyoflow config-reference > "
        "docs/configuration.md",
    )
    p.set_defaults(func=_cmd_config_reference)

    p = _command(
        sub,
        "labels",
        "karyoflow labels",
        help="print the canonical label table",
    )
    p.set_defaults(func=_cmd_labels)

    p = _command(
        sub,
        "ui",
        "karyoflow ui --port 5000",
        help="open the MLflow dashboard on the project's store",
    )
    p.add_argument("--config", default="config/config.yaml", help="config naming the store")
    p.add_argument("--results", default="results", help="results folder of the run")
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    p.add_argument("--port", type=int, default=5000, help="port of the dashboard")
    p.add_argument("--workers", type=int, default=1, help="server processes (1: quick start)")
    p.set_defaults(func=_cmd_ui)

    p = _command(
        sub,
        "reproduce",
        "karyoflow reproduce v1 --no-pull",
        help="re-run a tagged version (clone, dvc pull, dvc repro) and compare with its record",
    )
    p.add_argument("tag", help="git tag (or branch) to reproduce, e.g. v1")
    p.add_argument("--repo", default=".", help="repository to clone (path or URL; default .)")
    p.add_argument("--dir", help="where to clone (default ../<repo name>-<tag>; must be new)")
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="metric tolerance (0 on CPU; 1e-3 on GPU)"
    )
    p.add_argument("--no-pull", action="store_true", help="skip dvc pull (no remote)")
    p.set_defaults(func=_cmd_reproduce)

    p = _command(
        sub,
        "annotate-centromeres",
        "karyoflow annotate-centromeres crops/ --out centromeres.csv",
        help="click centromeres on crops in a local web page; writes the chr,tel,x,y CSV",
        description="Serve a local page that shows each crop and takes a click; keys: "
        "s save, n/Enter save + next, p previous, u undo, q save + quit. Rows already in "
        "--out count as done (resumable); every save replaces the CSV atomically.",
    )
    p.add_argument("crops", help="crop folder, manifest (.parquet/.csv) or .txt list of images")
    p.add_argument("--out", required=True, help="CSV to write (read first when it exists)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    p.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=_cmd_annotate_centromeres)

    p = _command(
        sub,
        "predict",
        "karyoflow predict cell1.jpg images/ --out results/predict/mine",
        help="metaphase images -> karyogram, boxes, chromosome table and ISCN count",
        description="For each image (or every image of a folder) write <out>/<stem>/"
        "{karyogram.png,overlay.png,chromosomes.csv,summary.json} and <out>/summary.csv. "
        "Chromosomes are detected unless --voc gives a folder of Pascal VOC boxes.",
    )
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", default="results/predict/cli", help="output folder")
    p.add_argument("--voc", help="folder with <image stem>.xml Pascal VOC boxes")
    p.add_argument("--no-decode", action="store_true", help="per-chromosome argmax only")
    p.add_argument(
        "--detector",
        help="learned detector (model.keras of rule train_detector, detector.json beside it) "
        "instead of the classical one",
    )
    _model_options(p)
    p.set_defaults(func=_cmd_predict)

    p = _command(
        sub,
        "serve",
        "karyoflow serve --port 8050 --model champion",
        help="web page + JSON API for predictions (loopback)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (loopback by default; beyond it "
        "a token is required)"
    )  # fmt: skip
    p.add_argument("--port", type=int, default=8050, help="port of the page and API")
    p.add_argument(
        "--token", help="API token, sent as 'Authorization: Bearer <token>' (or set "
        "KARYOFLOW_SERVE_TOKEN)"
    )  # fmt: skip
    p.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="a Host header to accept besides loopback and --host (repeatable)",
    )  # fmt: skip
    p.add_argument("--max-mb", type=float, default=20.0, help="largest request body in MiB")
    p.add_argument(
        "--max-pixels", type=int, default=16_000_000, help="largest image (declared pixels)"
    )
    p.add_argument("--max-boxes", type=int, default=200, help="most boxes in one request")
    p.add_argument("--workers", type=int, default=1, help="predictions at a time")
    _model_options(p)
    p.set_defaults(func=_cmd_serve)

    p = _command(
        sub,
        "run",
        "karyoflow run --cores 2 --config config/examples/karyograms_612.yaml",
        help="run the Snakemake workflow in the project folder",
    )
    p.add_argument("--cores", default="2", help="cores Snakemake may use")
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
