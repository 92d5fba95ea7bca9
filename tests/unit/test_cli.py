"""The karyoflow console command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

KARYOFLOW = [sys.executable, "-m", "karyoflow.cli"]


def run(*args, cwd=None):
    return subprocess.run([*KARYOFLOW, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_subcommands():
    proc = run("--help")
    assert proc.returncode == 0
    for sub in ("synth", "ingest", "check-config", "labels", "run", "ui", "reproduce"):
        assert sub in proc.stdout


def test_console_script_installed():
    exe = Path(sys.executable).parent / "karyoflow"
    if not exe.exists():
        pytest.skip("not installed as a console script in this environment")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("karyoflow ")


def test_labels_table():
    lines = run("labels").stdout.splitlines()
    assert len(lines) == 24 and lines[22].split() == ["22", "X", "C"]


@pytest.mark.slow
def test_synth_then_ingest(repo, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    out = tmp_path / "synth"
    config = {
        "seed": 3,
        "synthetic": {"params": {"cells": 2, "pairs": 5, "centromere_crops": 1}},
        "datasets": {
            "voc": {
                "kind": "voc",
                "path": str(out / "voc"),
                "options": {"truth_csv": ["karyotypes.csv"]},
            },
            "pairs": {"kind": "overlaps_h5", "path": str(out / "overlaps" / "overlaps.h5")},
        },
        "split": {"fractions": {"train": 0.5, "test": 0.5}},
    }
    cfg.write_text(yaml.safe_dump(config))
    proc = run("synth", str(out), "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cells"] == 2 and summary["pairs"] == 5
    proc = run("ingest", "--config", str(cfg), "--out", str(tmp_path / "manifest"))
    assert proc.returncode == 0, proc.stderr
    voc = pd.read_parquet(tmp_path / "manifest" / "voc.parquet")
    assert len(voc) == summary["objects"]
    assert sorted(voc.groupby("split")["cell_id"].nunique().to_dict().items()) == [
        ("test", 1),
        ("train", 1),
    ]
    # synth refuses to overwrite a folder that is not its own output
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    proc = run("synth", str(other), "--config", str(cfg))
    assert proc.returncode == 1
    assert proc.stderr.startswith("karyoflow: ") and (other / "keep.txt").exists()


def test_ingest_missing_dataset_one_line(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "synthetic": {"enabled": False},
                "datasets": {"x": {"kind": "voc", "path": str(tmp_path / "nope")}},
            }
        )
    )
    proc = run("ingest", "--config", str(cfg), "--out", str(tmp_path / "m"))
    assert proc.returncode == 1
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"karyoflow: {tmp_path / 'nope'}: dataset 'x' not found"
    )


def test_ui_without_store_is_a_clear_error(tmp_path):
    proc = run("ui", "--results", str(tmp_path / "results"))
    assert proc.returncode == 1
    assert "no MLflow store yet" in proc.stderr


def test_missing_inputs_are_one_line_before_tensorflow(tmp_path):
    """`karyoflow predict` / `serve` check their files before loading a model."""
    script = (
        "import sys\nfrom karyoflow.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "finally:\n    print('tensorflow loaded:', 'tensorflow' in sys.modules)\n"
    )
    voc = ["--model", "champion", "--voc", str(tmp_path / "v")]
    for argv in (
        ["predict", str(tmp_path / "nope.png")],
        ["predict", str(tmp_path), "--model", str(tmp_path / "m.keras")],
        ["serve", "--model", str(tmp_path / "m.keras")],
        ["predict", str(tmp_path), *voc],
    ):
        proc = subprocess.run(
            [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1, argv
        assert proc.stderr.strip().count("\n") == 0 and "no such" in proc.stderr, proc.stderr
        assert proc.stdout.strip() == "tensorflow loaded: False"


def test_every_subcommand_has_help_an_example_and_shows_defaults():
    from karyoflow.cli import build_parser

    parser = build_parser()
    subs = next(
        a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)
    )
    for name, sub in subs.choices.items():
        text = sub.format_help()
        assert "example: karyoflow " + name in text, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
    assert "(default: config/config.yaml)" in subs.choices["predict"].format_help()


def test_project_paths_work_from_any_folder(tmp_path):
    proc = run("check-config", "config/config.yaml", cwd=tmp_path)
    assert proc.returncode == 0 and "valid" in proc.stdout, proc.stderr
