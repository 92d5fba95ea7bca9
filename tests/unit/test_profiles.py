"""GPU tagging and the cluster profiles, as dry runs (no cluster needed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _dry(repo, tmp_path, *args):
    cmd = [SNAKEMAKE, "--dry-run", "--directory", str(tmp_path), "--configfile"]
    cmd += [str(repo / "config" / "gpu.yaml"), *args]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def _train_resources(text):
    blocks = re.findall(r"rule train:\n(.*?)\n\n", text, flags=re.S)
    assert blocks, "no train jobs in the dry run"
    return [re.search(r"resources: (.*)", b).group(1) for b in blocks]


def test_default_profile_caps_gpu_at_zero(repo, tmp_path):
    resources = _train_resources(_dry(repo, tmp_path, "--cores", "2"))
    assert len(resources) == 36  # 6 models x 2 optimizers x 3 learning rates
    assert all("gpu=0" in r and "gpu_manufacturer=nvidia" in r for r in resources)


def test_gpu_granted_when_present(repo, tmp_path):
    text = _dry(repo, tmp_path, "--cores", "2", "--resources", "gpu=1")
    assert all("gpu=1" in r for r in _train_resources(text))
    # centromere training carries the same GPU resources as rule train
    blocks = re.findall(r"rule train_centromere:\n(.*?)\n\n", text, flags=re.S)
    assert len(blocks) == 2  # centromere_heatmap, centromere_cnn
    # and so does the learned detector's
    blocks += re.findall(r"rule train_detector:\n(.*?)\n\n", text, flags=re.S)
    assert len(blocks) == 3
    for block in blocks:
        resources = re.search(r"resources: (.*)", block).group(1)
        assert "gpu=1" in resources and "gpu_manufacturer=nvidia" in resources


def test_cpu_config_has_no_gpu_tag(repo, tmp_path):
    cmd = [SNAKEMAKE, "--dry-run", "--directory", str(tmp_path), "--cores", "2"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = re.findall(r"rule train:\n(.*?)\n\n", proc.stdout, flags=re.S)
    assert blocks  # the default config trains karyonet_fast on CPU
    assert all("gpu" not in block for block in blocks)


@pytest.mark.slow
def test_slurm_profile_dry_run(repo, tmp_path):
    text = _dry(repo, tmp_path, "--workflow-profile", str(repo / "profiles" / "slurm"))
    resources = _train_resources(text)
    assert all("slurm_partition=gpu" in r and "gpu=1" in r for r in resources)
    # every training rule carries the one resources block (the profile lists no rules);
    # the other rules keep the profile's defaults
    for rule in ("train_centromere", "train_detector"):
        blocks = re.findall(rf"rule {rule}:\n(.*?)\n\n", text, flags=re.S)
        assert blocks, rule
        for block in blocks:
            res = re.search(r"resources: (.*)", block).group(1)
            assert "slurm_partition=gpu" in res and "mem_mb=32000" in res and "gpu=1" in res
    other = re.findall(r"rule preprocess_shard:\n(.*?)\n\n", text, flags=re.S)
    assert other and all("slurm_partition=cpu" in b for b in other)


@pytest.mark.slow
def test_kubernetes_profile_dry_run(repo, tmp_path):
    store = tmp_path / "store"
    text = _dry(
        repo,
        tmp_path,
        "--workflow-profile",
        str(repo / "profiles" / "kubernetes"),
        "--default-storage-provider",
        "fs",
        "--default-storage-prefix",
        str(store),
    )
    resources = _train_resources(text)
    assert all("gpu=1" in r and "gpu_manufacturer=nvidia" in r for r in resources)
