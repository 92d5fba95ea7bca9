"""MLflow for teams: a real `mlflow server` over HTTP, and the dashboard in Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args}: exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as resp:
            if resp.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{url}: no answer in {timeout}s")


@contextlib.contextmanager
def serving(cmd: list[str], url: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """Run a server in its own process group; stop the whole group afterwards."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_http(url, proc)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def api(base: str, endpoint: str, body: dict | None = None, **query: str) -> dict:
    url = f"{base}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def tiny_training_config(repo: Path) -> dict:
    """config/config.yaml shrunk: 4 synthetic cells, 1 shard, 1 epoch, own experiment."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["seed"] = 5
    config["synthetic"]["params"] = {"cells": 4, "pairs": 4, "centromere_crops": 2}
    config["split"]["fractions"] = {"train": 0.5, "val": 0.25, "test": 0.25}
    config["preprocess"].update(shards=1, qc_per_class=1)
    config["preprocess"]["params"]["augment"]["copies"] = 0
    config["train"]["params"].update(epochs=1, batch_size=32, threads=2)
    config["centromere"]["params"].update(epochs=1)
    config["overlaps"]["pairs"] = {"train": 8, "val": 4, "test": 4}
    config["overlaps"]["generate"]["size"] = 32
    config["overlaps"]["params"].update(epochs=1)
    config["mlflow"].update(experiment="karyoflow-http", log_models=True, tracking_uri=None)
    return config


def test_workflow_against_mlflow_server(repo, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ.copy()
    env.pop("MLFLOW_TRACKING_URI", None)
    server = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "server-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with serving(server, f"{base}/health", env, tmp_path / "server.log"):
        work = tmp_path / "work"
        work.mkdir()
        (work / "config.yaml").write_text(yaml.safe_dump(tiny_training_config(repo)))
        cmd = [str(BIN / "snakemake"), "-s", str(repo / "Snakefile"), "--directory", str(work)]
        cmd += ["--cores", "2", "--configfile", str(work / "config.yaml")]
        # the three trained tasks (no karyograms, no report)
        cmd += ["--until", "evaluate", "evaluate_centromere", "evaluate_segmentation"]
        proc = subprocess.run(
            cmd,
            env={**env, "MLFLOW_TRACKING_URI": base},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert proc.returncode == 0, proc.stderr[-5000:]
        assert not (work / "results/mlflow/mlflow.db").exists()  # everything went over HTTP

        exp = api(base, "experiments/get-by-name", experiment_name="karyoflow-http")
        exp_id = exp["experiment"]["experiment_id"]
        runs = api(base, "runs/search", {"experiment_ids": [exp_id], "max_results": 100})["runs"]

        def tags(run):
            return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

        def metrics(run):
            return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}

        by_kind = {}
        for run in runs:
            by_kind.setdefault(tags(run).get("karyoflow.kind"), []).append(run)
        (parent,) = by_kind["workflow"]
        (train,) = by_kind["train"]
        (evaluate,) = by_kind["evaluate"]
        children = [r for r in runs if r is not parent]
        assert {tags(r)["rule"] for r in children} == {
            "train",
            "evaluate",
            "train_centromere",
            "evaluate_centromere",
            "train_segmentation",
            "evaluate_segmentation",
        }
        parent_id = parent["info"]["run_id"]
        assert parent["info"]["status"] == "FINISHED"
        for child in children:
            t = tags(child)
            assert t["mlflow.parentRunId"] == parent_id
            for key in ("git_commit", "config_hash", "dvc_data_hash", "rule", "wildcards"):
                assert t.get(key), (key, t)
        assert tags(train)["rule"] == "train" and tags(evaluate)["rule"] == "evaluate"
        assert "val_accuracy" in metrics(train)
        assert "test_accuracy" in metrics(evaluate)
        assert "synthetic_voc/karyonet_fast/test_accuracy" in metrics(parent)

        def artifacts(run, path=""):
            query = {"run_id": run["info"]["run_id"]}
            if path:
                query["path"] = path
            return {f["path"] for f in api(base, "artifacts/list", **query).get("files", [])}

        assert {"curves.png", "history.json"} <= artifacts(train)
        assert {"per_class.csv", "cells.csv", "confusion.png"} <= artifacts(evaluate)
        assert "evaluate/synthetic_voc/karyonet_fast/metrics.json" in artifacts(
            parent, "evaluate/synthetic_voc/karyonet_fast"
        )
        assert "preprocess/synthetic_voc/summary.json" in artifacts(
            parent, "preprocess/synthetic_voc"
        )

        # every task's evaluated model is registered; the first version is the champion
        for task, metric in (
            ("classification", "test_accuracy"),
            ("centromere", "test_median_error_frac"),
            ("segmentation", "test_mean_iou"),
        ):
            name = f"karyoflow-{task}"
            model = api(base, "registered-models/get", name=name)
            assert model["registered_model"]["name"] == name
            champ = api(base, "registered-models/alias", name=name, alias="champion")
            champ = champ["model_version"]
            assert champ["version"] == "1"
            version_tags = {t["key"]: t["value"] for t in champ.get("tags", [])}
            assert version_tags["metric_name"] == metric
            assert version_tags["greater_is_better"] == str(task != "centromere").lower()
            # the version points at the training run's logged model
            train_run = [r for r in children if tags(r)["rule"].startswith("train")]
            assert champ["run_id"] in {r["info"]["run_id"] for r in train_run}, champ
        assert version_tags["dataset"] == "synthetic_voc"


def test_dashboard_lists_experiment(browser_page, tmp_path):
    from karyoflow.engine import tracking

    results = tmp_path / "results"
    uri = tracking.default_tracking_uri(results)
    exp_id = tracking.init_store(uri, "karyoflow-dashboard-test", results)
    run_id = tracking.start_parent_run(uri, "karyoflow-dashboard-test", name="workflow ui")
    tracking.end_parent_run(uri, run_id, "FINISHED", results=results)
    port = free_port()
    env = os.environ.copy()
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(BIN / "karyoflow"), "ui", "--results", str(results), "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{base}/health", env, tmp_path / "ui.log"):
        page = browser_page
        page.set_default_timeout(60_000)  # the first page load compiles a large bundle
        page.goto(f"{base}/#/experiments")
        page.get_by_text("karyoflow-dashboard-test").first.wait_for()
        page.screenshot(path=str(tmp_path / "experiments.png"))
        # the experiment's own page names it too
        page.goto(f"{base}/#/experiments/{exp_id}")
        page.get_by_text("karyoflow-dashboard-test").first.wait_for()
