"""One classifier trained on a union of datasets, tested on its own split and on a
real external crop set (the KaryoNet G-band sample, all of it as a test set); a
learning curve on one dataset, from scratch and fine-tuned from the union's model."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from test_workflow import TINY_TRAIN, run_workflow, tiny_config

pytestmark = [pytest.mark.realdata, pytest.mark.e2e, pytest.mark.slow]

#: The union's model (a workflow output) as the start of a fine-tuned subset.
FROM_UNION = "results/train/both/karyonet_fast/adamw-lr0.003/model.keras"


def test_union_training_and_external_test_set(repo, tmp_path, real_data):
    config = tiny_config(
        train={
            **TINY_TRAIN,
            "datasets": ["both", "voc", "voc_1", "voc_1ft"],
            "unions": {"both": ["voc", "centromeres"]},
            "subsets": {
                "voc_1": {"dataset": "voc", "train_cells": 1},
                "voc_1ft": {"dataset": "voc", "train_cells": 1, "weights": FROM_UNION},
            },
        },
        evaluate={"external": ["gband", "voc"]},  # voc is a member: skipped
        mlflow={"log_models": True},
        centromere={"enabled": False},
        overlaps={"enabled": False},
        predict={"enabled": False},
        calls={"enabled": False},
    )
    config["datasets"]["gband"] = {
        "kind": "crops",
        "path": str(real_data / "karyonet-sample" / "Gband"),
        "split_as": "test",
        "options": {"layout": "filename", "preset": "karyonet", "subdir": "val",
                    "cell_regex": "parent_folder"},
    }  # fmt: skip
    work = tmp_path / "run"
    proc = run_workflow(repo, work, config, "--until", "external_summary", "learning_curve")
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = work / "results"
    point = next((res / "train/both/karyonet_fast").iterdir())
    train = json.loads((point / "metrics.json").read_text())
    # validation accuracy of the union and of each member that has validation rows
    per_source = {k for k in train if k.startswith("val_accuracy_")}
    assert per_source and per_source <= {"val_accuracy_voc", "val_accuracy_centromeres"}
    assert 0.0 <= train["val_accuracy"] <= 1.0
    own = json.loads((res / "evaluate/both/karyonet_fast/metrics.json").read_text())
    # each member of the union with test rows, on its own rows; the union lies between
    import h5py

    members = [
        m
        for m in ("voc", "centromeres")
        for f in (res / "preprocess" / m).glob("*/test.h5")
        if h5py.File(f)["images"].shape[0]
    ]
    per_source = {k: v for k, v in own.items() if k.startswith("accuracy_")}
    per_source = {k: v for k, v in per_source.items() if k[9:] in ("voc", "centromeres")}
    assert set(per_source) == ({f"accuracy_{m}" for m in members} if len(members) > 1 else set())
    if per_source:
        assert min(per_source.values()) <= own["accuracy"] <= max(per_source.values())
    ext_file = res / "evaluate/both/karyonet_fast/external/gband/metrics.json"
    ext = json.loads(ext_file.read_text())
    assert ext["test_instances"] == 46 and ext["test_cells"] == 1  # every val crop, 1 cell
    assert not (res / "evaluate/both/karyonet_fast/external/voc").exists()
    table = pd.read_csv(res / "evaluate/both/external.csv")
    assert table[["test_set", "kind"]].values.tolist() == [["both", "own"], ["gband", "external"]]
    assert table["accuracy"].tolist() == pytest.approx([own["accuracy"], ext["accuracy"]], abs=1e-4)
    assert (res / "evaluate/both/external.png").stat().st_size > 5000
    db = sqlite3.connect(res / "mlflow" / "mlflow.db")

    def tags(run_id):
        rows = db.execute("select key, value from tags where run_uuid=?", (run_id,))
        return dict(rows.fetchall())

    def params(run_id):
        rows = db.execute("select key, value from params where run_uuid=?", (run_id,))
        return dict(rows.fetchall())

    assert tags(train["mlflow_run_id"])["sources"] == "voc,centromeres"
    assert {"sources.voc", "sources.centromeres"} <= set(params(train["mlflow_run_id"]))
    # the own test split registers the model; an external test set does not
    assert tags(own["mlflow_run_id"])["registered_model"] == "karyoflow-classification"
    ext_tags = tags(ext["mlflow_run_id"])
    assert ext_tags["karyoflow.kind"] == "evaluate_external" and "registered_model" not in ext_tags
    # the learning curve on voc: all its training cells, one cell, one cell fine-tuned
    curve = pd.read_csv(res / "curves/voc.csv").set_index("entry")
    cells = json.loads((res / "evaluate/voc/karyonet_fast/metrics.json").read_text())
    assert curve.loc["voc_1", "train_cells"] == curve.loc["voc_1ft", "train_cells"] == 1
    assert curve.loc["voc", "train_cells"] > 1
    assert curve.loc["voc", "accuracy"] == pytest.approx(cells["accuracy"], abs=1e-4)
    assert curve.loc["voc_1", "start"] == "scratch" and curve.loc["voc_1ft", "start"] == FROM_UNION
    assert (res / "curves/voc.png").stat().st_size > 5000
    ft_point = next((res / "train/voc_1ft/karyonet_fast").iterdir())
    ft = json.loads((ft_point / "metrics.json").read_text())
    assert params(ft["mlflow_run_id"])["weights"] == FROM_UNION
