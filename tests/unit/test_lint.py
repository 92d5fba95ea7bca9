"""Format and lint gates: ruff, snakefmt and snakemake --lint must be clean."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _tool(name):
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _run(repo, *cmd):
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)


def test_ruff_check(repo):
    proc = _run(repo, _tool("ruff"), "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format(repo):
    proc = _run(repo, _tool("ruff"), "format", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt(repo):
    proc = _run(repo, _tool("snakefmt"), "--check", "Snakefile", "workflow/rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_lint(repo):
    proc = _run(repo, _tool("snakemake"), "--lint", "--cores", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_fresh(repo, tmp_path):
    """`snakemake --dry-run` works from the checkout with the default config."""
    proc = _run(repo, _tool("snakemake"), "--cores", "2", "--dry-run", "--directory", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "synthesize" in proc.stdout
