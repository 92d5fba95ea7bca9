"""DVC versioning and tagged re-runs: the ``report`` stage and ``karyoflow reproduce``.

Snakemake computes, DVC versions (``dvc.yaml`` wraps the workflow in stages). The last
DVC stage, ``report``, runs :func:`write_report`: it gathers the workflow's metrics into
small git-tracked files under ``metrics/`` that ``dvc metrics diff`` / ``dvc plots diff``
compare between tags:

``metrics/train.json``
    validation metrics per (dataset, model, grid point) — no timings, so a re-run on CPU
    gives the same file byte for byte.
``metrics/evaluate.json``
    test metrics per (dataset, model).
``metrics/centromere.json``, ``metrics/segmentation.json``, ``metrics/detect.json``,
``metrics/calls.json``
    test metrics of the centromere models (per model), the overlapping-pair segmenters
    (per dataset and model) and the detector (per dataset).
``metrics/predict.json``
    per dataset: cells given karyograms, mean count, share whose ISCN count matches the
    truth (``results/predict/<dataset>/summary.csv``).
``metrics/datasets.json``
    a content hash per dataset folder (synthetic data, manifests, preprocessed HDF5,
    generated overlapping pairs),
    with the checkout's own absolute path removed from text files and manifests (the
    manifests hold absolute source paths), so a clone elsewhere hashes the same.
``metrics/plots/history/…csv``, ``metrics/plots/confusion/…png``
    training curves (per epoch) and test confusion matrices.

:func:`reproduce` is ``karyoflow reproduce <tag>``: clone the tag, ``dvc pull``,
``dvc repro --force``, and compare the new metrics and dataset hashes with the recorded
ones (:func:`compare`), printing a pass/fail table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from karyoflow.fileutil import write_json

__all__ = [
    "DATASET_DIRS",
    "IGNORED_METRICS",
    "TASK_METRICS",
    "Check",
    "compare",
    "dataset_hashes",
    "format_table",
    "normalised_md5",
    "numeric_leaves",
    "predict_summary",
    "reproduce",
    "write_report",
]

#: Result folders (glob patterns) that hold datasets (hashed into ``metrics/datasets.json``).
DATASET_DIRS = ("synthetic", "manifest", "preprocess", "overlaps/*/pairs")
#: Metric keys that legitimately differ between runs (run ids, device); keys ending in
#: ``_seconds`` or ``_per_second`` (timings) are left out too.
IGNORED_METRICS = ("mlflow_run_id", "device", "ms_per_image", "cpu_ms_per_image")
_TIMING_SUFFIXES = ("_seconds", "_per_second")
#: ``metrics/<file>``: test metrics of the other tasks, ``(glob under results, depth)``:
#: the last ``depth`` folders above ``metrics.json`` (minus ``test``) key the entry.
TASK_METRICS: dict[str, tuple[str, int]] = {
    "centromere.json": ("centromere/*/test/metrics.json", 1),
    "segmentation.json": ("overlaps/*/*/test/metrics.json", 2),
    "detect.json": ("detect/*/metrics.json", 1),
    "calls.json": ("calls/*/metrics.json", 1),
    "external.json": ("evaluate/*/*/external/*/metrics.json", 4),
}
#: Extensions hashed as text, with the checkout's absolute path removed.
_TEXT = {".csv", ".json", ".txt", ".xml", ".tsv", ".yaml", ".yml"}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def normalised_md5(path: str | Path, root: str | Path) -> str:
    """MD5 of a file's content with the absolute ``root`` path made relative.

    Binary files (HDF5, images) are hashed as they are; text files with every
    ``<root>/`` removed; Parquet manifests through their table with the same removal in
    string columns, so the same data written in two checkouts hashes the same.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> a, b = pathlib.Path(tempfile.mkdtemp()), pathlib.Path(tempfile.mkdtemp())
    >>> _ = (a / "t.csv").write_text(f"source\\n{a}/results/x.png\\n")
    >>> _ = (b / "t.csv").write_text(f"source\\n{b}/results/x.png\\n")
    >>> normalised_md5(a / "t.csv", a) == normalised_md5(b / "t.csv", b)
    True
    """
    path = Path(path)
    prefix = str(Path(root).resolve()) + os.sep
    if path.suffix == ".parquet":
        import pandas as pd

        table = pd.read_parquet(path)
        for col in table.columns:
            if table[col].dtype == object or str(table[col].dtype).startswith("str"):
                table[col] = table[col].astype(str).str.replace(prefix, "", regex=False)
        text = table.to_json(orient="split", date_format="iso", double_precision=15)
        return _md5(text.encode())
    data = path.read_bytes()
    if path.suffix in _TEXT:
        data = data.replace(prefix.encode(), b"")
    return _md5(data)


def dataset_hashes(
    results: str | Path = "results",
    root: str | Path = ".",
    dirs: tuple[str, ...] = DATASET_DIRS,
) -> dict[str, dict[str, Any]]:
    """``{"results/<dir>": {"md5": ..., "files": n}}`` over every file of each folder.

    The hash combines :func:`normalised_md5` of each file with its relative path
    (sorted), so it changes with any byte of any dataset file but not with the checkout's
    location. Missing folders are left out.
    """
    results = Path(results)
    out: dict[str, dict[str, Any]] = {}
    folders = [f for name in dirs for f in sorted(results.glob(name)) if f.is_dir()]
    for folder in folders:
        lines = [
            f"{normalised_md5(p, root)}  {p.relative_to(folder).as_posix()}"
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        ]
        try:
            key = folder.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            key = folder.as_posix()
        out[key] = {"md5": _md5("\n".join(lines).encode()), "files": len(lines)}
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(
    results: str | Path = "results", out: str | Path = "metrics", root: str | Path = "."
) -> dict[str, Path]:
    """The DVC ``report`` stage: metrics, dataset hashes and plot data under ``out``.

    Reads ``<results>/train/<dataset>/<model>/<point>/{metrics,history}.json`` and
    ``<results>/evaluate/<dataset>/<model>/{metrics.json,confusion.png}``; writes
    ``train.json``, ``evaluate.json``, ``datasets.json``, ``plots/history/<dataset>/
    <model>/<point>.csv`` and ``plots/confusion/<dataset>/<model>.png``. Numbers only in
    the metrics files (strings and timings left out), so re-runs compare exactly.
    """
    results, out = Path(results), Path(out)
    train: dict[str, Any] = {}
    history_dir = out / "plots" / "history"
    confusion_dir = out / "plots" / "confusion"
    for sub in (history_dir, confusion_dir):
        if sub.exists():
            shutil.rmtree(sub)
        sub.mkdir(parents=True)
    for metrics_file in sorted(results.glob("train/*/*/*/metrics.json")):
        point_dir = metrics_file.parent
        dataset, model, point = point_dir.parts[-3:]
        data = json.loads(metrics_file.read_text())
        train.setdefault(dataset, {}).setdefault(model, {})[point] = numeric_leaves(data)
        history = point_dir / "history.json"
        if history.exists():
            _history_csv(history, history_dir / dataset / model / f"{point}.csv")
    evaluate: dict[str, Any] = {}
    for metrics_file in sorted(results.glob("evaluate/*/*/metrics.json")):
        dataset, model = metrics_file.parent.parts[-2:]
        data = json.loads(metrics_file.read_text())
        evaluate.setdefault(dataset, {})[model] = numeric_leaves(data)
        confusion = metrics_file.with_name("confusion.png")
        if confusion.exists():
            target = confusion_dir / dataset / f"{model}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(confusion, target)
    written = {
        "train": out / "train.json",
        "evaluate": out / "evaluate.json",
        "datasets": out / "datasets.json",
    }
    write_json(written["train"], train)
    write_json(written["evaluate"], evaluate)
    for name, (pattern, depth) in TASK_METRICS.items():
        task: dict[str, Any] = {}
        for metrics_file in sorted(results.glob(pattern)):
            folder = metrics_file.parent
            keys = (folder.parent if folder.name == "test" else folder).parts[-depth:]
            node = task
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = numeric_leaves(json.loads(metrics_file.read_text()))
        written[name.removesuffix(".json")] = out / name
        write_json(out / name, task)
    written["predict"] = out / "predict.json"
    write_json(written["predict"], predict_summary(results))
    write_json(written["datasets"], dataset_hashes(results, root))
    return written


def predict_summary(results: str | Path = "results") -> dict[str, dict[str, Any]]:
    """Per dataset of ``results/predict``: cells, mean count, ISCN matches with the truth.

    ``iscn_match`` is the share of cells with a truth whose predicted ISCN count equals
    it (None when no cell has a truth).
    """
    import pandas as pd

    out: dict[str, dict[str, Any]] = {}
    for summary in sorted(Path(results).glob("predict/*/summary.csv")):
        table = pd.read_csv(summary, dtype={"truth": str, "iscn": str})
        known = table[table["truth"].notna()] if "truth" in table else table.iloc[:0]
        out[summary.parent.name] = {
            "cells": len(table),
            "mean_count": round(float(table["count"].mean()), 6) if len(table) else None,
            "cells_with_truth": len(known),
            "iscn_match": (
                round(float((known["iscn"] == known["truth"]).mean()), 6) if len(known) else None
            ),
        }
    return out


def numeric_leaves(data: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers (and nested mappings of numbers) of a metrics dict, minus timings and ids.

    Examples
    --------
    >>> numeric_leaves({"a": 0.5, "train_seconds": 3.2, "s": "x", "d": {"k": 1, "t": True}})
    {'a': 0.5, 'd': {'k': 1}}
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in IGNORED_METRICS or key.endswith(_TIMING_SUFFIXES):
            continue
        if isinstance(value, Mapping):
            inner = numeric_leaves(value)
            if inner:
                out[key] = inner
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = _clean(value)
    return out


def _history_csv(history: Path, target: Path) -> None:
    data = json.loads(history.read_text())
    keys = sorted(k for k, v in data.items() if isinstance(v, list))
    n = max((len(data[k]) for k in keys), default=0)
    rows = ["epoch," + ",".join(keys)]
    for i in range(n):
        vals = [data[k][i] if i < len(data[k]) else None for k in keys]
        rows.append(f"{i + 1}," + ",".join("" if v is None else repr(float(v)) for v in vals))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(rows) + "\n")


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the reproduction table."""

    item: str  #: ``metrics/evaluate.json:voc.karyonet_fast.accuracy``, ``results/preprocess``
    recorded: Any
    new: Any
    ok: bool


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def compare(
    recorded: Mapping[str, Any], new: Mapping[str, Any], tolerance: float = 0.0
) -> list[Check]:
    """Compare two ``{file name: parsed JSON}`` mappings leaf by leaf.

    Numbers pass when ``|new - recorded| <= tolerance`` (0: identical, the CPU
    guarantee), anything else when equal; a leaf missing on one side fails.

    Examples
    --------
    >>> rows = compare({"m.json": {"a": {"acc": 0.5}}}, {"m.json": {"a": {"acc": 0.5}}})
    >>> [(r.item, r.ok) for r in rows]
    [('m.json:a.acc', True)]
    >>> compare({"m.json": {"x": 1.0}}, {"m.json": {"x": 1.001}}, tolerance=1e-2)[0].ok
    True
    """
    rows = []
    for name in sorted(set(recorded) | set(new)):
        old_leaves = _flat(recorded.get(name, {}))
        new_leaves = _flat(new.get(name, {}))
        for key in sorted(set(old_leaves) | set(new_leaves)):
            a, b = old_leaves.get(key), new_leaves.get(key)
            if key not in old_leaves or key not in new_leaves:
                ok = False
            elif isinstance(a, int | float) and isinstance(b, int | float):
                ok = abs(float(a) - float(b)) <= tolerance
            else:
                ok = a == b
            rows.append(Check(f"{name}:{key}", a, b, ok))
    return rows


def format_table(rows: list[Check]) -> str:
    """The pass/fail table: ``item | recorded | new | status`` and a last summary line."""

    def show(value: Any) -> str:
        if isinstance(value, Mapping) and "md5" in value:
            value = value["md5"]
        text = "-" if value is None else str(value)
        return text if len(text) <= 34 else text[:31] + "..."

    header = ("item", "recorded", "new", "status")
    body = [(r.item, show(r.recorded), show(r.new), "pass" if r.ok else "FAIL") for r in rows]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = sum(not r.ok for r in rows)
    lines.append(f"{len(rows) - failed}/{len(rows)} checks pass" + (" — FAIL" if failed else ""))
    return "\n".join(lines)


#: Files of ``metrics/`` that a reproduction compares.
COMPARED = (
    "train.json",
    "evaluate.json",
    *TASK_METRICS,
    "predict.json",
    "datasets.json",
)


def _read_metrics(folder: Path) -> dict[str, Any]:
    return {
        f"metrics/{name}": json.loads((folder / name).read_text())
        for name in COMPARED
        if (folder / name).exists()
    }


def _lock_hashes(lock: Path, prefix: str = "results/") -> dict[str, str]:
    """``{out path: md5}`` of the stage outputs recorded in a ``dvc.lock``."""
    import yaml

    if not lock.exists():
        return {}
    data = yaml.safe_load(lock.read_text()) or {}
    out = {}
    for stage in (data.get("stages") or {}).values():
        for item in stage.get("outs") or []:
            if str(item.get("path", "")).startswith(prefix) and "md5" in item:
                out[item["path"]] = item["md5"]
    return out


def tool_env(extra_path: str | Path | None = None) -> dict[str, str]:
    """Environment for DVC stage commands: this interpreter's ``bin`` first on ``PATH``."""
    env = os.environ.copy()
    bin_dir = str(extra_path or Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(cmd: list[str], cwd: Path, env: Mapping[str, str], log: Callable[[str], None]) -> None:
    log("+ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, env=dict(env), check=False)
    if proc.returncode != 0:
        raise SystemExit(f"karyoflow: {cwd}: `{' '.join(cmd)}` failed ({proc.returncode})")


def _local_remote_urls(repo: Path) -> dict[str, str]:
    """Remote name -> absolute path, for the source checkout's local (folder) remotes.

    DVC resolves a relative remote path against the ``.dvc/`` folder of the config that
    names it; a clone elsewhere would resolve it elsewhere.
    """
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        remotes = dict(dvc_repo.config.get("remote", {}))
    return {
        name: str(Path(conf["url"]).resolve())
        for name, conf in remotes.items()
        if "url" in conf and "://" not in str(conf["url"])
    }


def reproduce(
    tag: str,
    *,
    repo: str | Path = ".",
    workdir: str | Path | None = None,
    tolerance: float = 0.0,
    pull: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[bool, list[Check]]:
    """Clone ``tag`` of ``repo`` into ``workdir``, pull, re-run, compare with the record.

    Steps: ``git clone --branch <tag>``; point the clone's local DVC remotes at the ones
    ``repo`` uses (a relative remote path would otherwise resolve beside the clone);
    ``dvc pull``; read the recorded ``metrics/*.json`` and ``dvc.lock``; ``dvc repro
    --force`` (every stage re-runs; Snakemake jobs import the clone's code); compare.
    The dataset outputs of ``dvc.lock`` (synthetic data, preprocessed HDF5) must keep
    their hashes; the manifests hold absolute paths, so they are compared through
    ``metrics/datasets.json`` (path-normalised) instead.

    Returns
    -------
    (bool, list of Check)
        Whether every check passed, and the rows of the table.
    """
    repo_path = Path(repo).resolve() if Path(repo).exists() else None
    source = str(repo_path) if repo_path else str(repo)
    if workdir is None:
        base = repo_path.parent if repo_path else Path.cwd()
        workdir = base / f"{(repo_path.name if repo_path else 'karyoflow')}-{tag}"
    workdir = Path(workdir).resolve()
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"karyoflow: {workdir}: exists and is not empty (give --dir)")
    env = tool_env()
    _run(["git", "clone", "--quiet", "--branch", tag, source, str(workdir)], Path.cwd(), env, log)
    if repo_path is not None:
        for name, url in _local_remote_urls(repo_path).items():
            _run(
                [sys.executable, "-m", "dvc", "remote", "modify", "--local", name, "url", url],
                workdir,
                env,
                log,
            )
    if pull:
        _run([sys.executable, "-m", "dvc", "pull", "--quiet"], workdir, env, log)
    recorded = _read_metrics(workdir / "metrics")
    recorded_lock = _lock_hashes(workdir / "dvc.lock")
    _run([sys.executable, "-m", "dvc", "repro", "--force"], workdir, env, log)
    new = _read_metrics(workdir / "metrics")
    new_lock = _lock_hashes(workdir / "dvc.lock")
    rows = compare(recorded, new, tolerance)
    for path in sorted(recorded_lock):
        if Path(path).name in ("synthetic", "preprocess"):
            old, now = recorded_lock[path], new_lock.get(path)
            rows.append(Check(f"dvc.lock:{path}", old, now, old == now))
    return all(r.ok for r in rows) and bool(rows), rows


def main(argv: list[str] | None = None) -> int:
    """``python -m karyoflow.reproduce report`` — the DVC ``report`` stage's command.

    Run with ``python -m`` from the checkout, so the checkout's own code writes the
    report (also in a clone of an older tag).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m karyoflow.reproduce")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="write metrics/, dataset hashes and plot data")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="metrics")
    args = parser.parse_args(argv)
    written = write_report(args.results, args.out, Path.cwd())
    for path in written.values():
        print(f"[report] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
