"""The tagged-version story with DVC in a temporary git repository, on a tiny config.

run -> tag v1 -> dvc push -> change a param (dvc exp run -S) -> tag v2 -> dvc metrics
diff v1 v2 shows the change -> `karyoflow reproduce v1` (fresh clone, dvc pull, re-run)
-> identical metrics and dataset hashes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent

#: Tiny overrides of config/config.yaml (merged into it, so every key DVC reads as a
#: param, and every section other work adds, stays present).
TINY = {
    "seed": 11,
    "synthetic": {"params": {"cells": 4, "pairs": 8, "centromere_crops": 2}},
    "split": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
    "preprocess": {"shards": 1, "qc_per_class": 1, "params": {"augment": {"copies": 1}}},
    "train": {"params": {"epochs": 1, "batch_size": 32, "threads": 2}},
    "centromere": {"params": {"epochs": 1}},
    "overlaps": {
        "pairs": {"train": 8, "val": 4, "test": 4},
        "generate": {"size": 32},
        "params": {"epochs": 1},
    },
    "mlflow": {"log_models": False},
}


def _merge(base: dict, over: dict) -> dict:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def project_copy(repo: Path, dest: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in sorted(set(filter(None, listed.split("\0")))):
        src = repo / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def tool_env(tmp: Path) -> dict[str, str]:
    env = os.environ.copy()
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="karyoflow test",
        GIT_AUTHOR_EMAIL="test@karyoflow.invalid",
        GIT_COMMITTER_NAME="karyoflow test",
        GIT_COMMITTER_EMAIL="test@karyoflow.invalid",
        GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"),
    )
    return env


def sh(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 1800) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def test_tag_push_change_diff_clone_reproduce(repo, tmp_path):
    work = tmp_path / "project"
    project_copy(repo, work)
    config = work / "config" / "config.yaml"
    config.write_text(yaml.safe_dump(_merge(yaml.safe_load(config.read_text()), TINY)))
    env = tool_env(tmp_path)
    (tmp_path / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    sh(["git", "init", "-q"], work, env)
    sh(["git", "add", "-A"], work, env)
    sh(["git", "commit", "-qm", "tiny project"], work, env)

    # v1: run, record, push
    sh(dvc("repro"), work, env)
    evaluate_v1 = json.loads((work / "metrics" / "evaluate.json").read_text())
    assert evaluate_v1["synthetic_voc"]["karyonet_fast"]["test_instances"] > 0
    datasets = json.loads((work / "metrics" / "datasets.json").read_text())
    assert set(datasets) == {
        "results/synthetic",
        "results/manifest",
        "results/preprocess",
        "results/overlaps/synthetic_voc/pairs",
    }
    # every task has its DVC stage and its metrics
    centromere = json.loads((work / "metrics" / "centromere.json").read_text())
    assert 0 <= centromere["centromere_heatmap"]["median_error_frac"] < 1
    segmentation = json.loads((work / "metrics" / "segmentation.json").read_text())
    assert 0 <= segmentation["synthetic_voc"]["unet"]["overlap_iou"] <= 1
    detect = json.loads((work / "metrics" / "detect.json").read_text())
    assert detect["synthetic_voc"]["all"]["recall"] > 0
    predict = json.loads((work / "metrics" / "predict.json").read_text())
    assert predict["synthetic_voc"]["cells"] > 0
    assert (work / "metrics/plots/history/synthetic_voc/karyonet_fast/adamw-lr0.003.csv").exists()
    assert (work / "metrics/plots/confusion/synthetic_voc/karyonet_fast.png").exists()
    sh(["git", "add", "-A"], work, env)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=work, env=env, capture_output=True, text=True
    ).stdout
    assert "results/" not in status  # DVC's, not git's
    sh(["git", "commit", "-qm", "v1"], work, env)
    sh(["git", "tag", "v1"], work, env)
    sh(dvc("push"), work, env)
    remote = tmp_path / "karyoflow-dvc-remote"  # the default remote, beside the project
    assert any(remote.rglob("*")), "dvc push wrote nothing to the local remote"
    assert (work / "results/mlflow/mlflow.db").exists()  # beside, not inside, DVC's outputs

    # v2: a quick experiment with one param changed; only train onwards re-runs
    out = sh(
        dvc("exp", "run", "-S", "config/config.yaml:train.params.label_smoothing=0.0"), work, env
    )
    assert "Stage 'preprocess' didn't change" in out and "Running stage 'train'" in out
    sh(["git", "add", "-A"], work, env)
    sh(["git", "commit", "-qm", "v2: no label smoothing"], work, env)
    sh(["git", "tag", "v2"], work, env)
    diff = json.loads(
        subprocess.run(
            dvc("metrics", "diff", "v1", "v2", "--json"),
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    changed = diff["metrics/train.json"]
    assert "synthetic_voc.karyonet_fast.adamw-lr0.003.val_loss" in changed, diff
    plots = tmp_path / "plots"
    sh(dvc("plots", "diff", "v1", "v2", "-o", str(plots)), work, env)
    assert (plots / "index.html").exists()

    # reproduce v1 in a fresh clone: pull, re-run every stage, compare with the record
    clone = tmp_path / "clone-v1"
    proc = subprocess.run(
        [str(BIN / "karyoflow"), "reproduce", "v1", "--repo", str(work), "--dir", str(clone)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    table = proc.stdout
    assert "FAIL" not in table and "checks pass" in table, table
    for item in (
        "metrics/evaluate.json:synthetic_voc.karyonet_fast.accuracy",
        "metrics/train.json:synthetic_voc.karyonet_fast.adamw-lr0.003.val_loss",
        "metrics/datasets.json:results/preprocess.md5",
        "metrics/datasets.json:results/manifest.md5",
        "metrics/centromere.json:centromere_heatmap.median_error_frac",
        "metrics/segmentation.json:synthetic_voc.unet.mean_iou",
        "metrics/predict.json:synthetic_voc.cells",
        "dvc.lock:results/preprocess",
    ):
        assert item in table, table
    assert json.loads((clone / "metrics/evaluate.json").read_text()) == evaluate_v1
    # the README's by-hand recipe ends with this: the re-run rewrote metrics/ identically
    sh(["git", "diff", "--exit-code", "--stat", "metrics/"], clone, env)
    assert "label_smoothing: 0.1" in (clone / "config/config.yaml").read_text()
