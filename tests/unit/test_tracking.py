"""MLflow helpers on a real sqlite store: registry champion, namespaced parent artifacts."""

from __future__ import annotations

import json

import pytest

from karyoflow.engine import tracking as trk
from karyoflow.reproduce import compare, dataset_hashes, format_table

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trk.init_store(uri, "test", tmp_path / "results")
    return uri


def test_register_best_moves_champion_only_when_better(store, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("test")
    regs = []
    for value in (0.5, 0.4, 0.7, 0.7):
        with mlflow.start_run():
            model = mlflow.create_external_model(name="model")
            regs.append(
                trk.register_best(
                    model.model_uri,
                    "unit",
                    "test_accuracy",
                    value,
                    tracking_uri=store,
                    tags={"dataset": "d"},
                    lock=tmp_path / "registry.lock",
                )
            )
    assert [r.version for r in regs] == ["1", "2", "3", "4"]
    assert [r.champion for r in regs] == [True, False, True, False]
    assert regs[1].previous == 0.5 and regs[3].previous == 0.7
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    champ = client.get_model_version_by_alias("karyoflow-unit", trk.CHAMPION)
    assert str(champ.version) == "3"
    assert champ.tags["metric_name"] == "test_accuracy" and champ.tags["dataset"] == "d"
    # lower is better: a loss of 0.2 beats nothing, 0.3 does not beat 0.2
    with mlflow.start_run():
        model = mlflow.create_external_model(name="model")
        first = trk.register_best(model.model_uri, "loss", "mae", 0.2, False, tracking_uri=store)
        model = mlflow.create_external_model(name="model")
        second = trk.register_best(model.model_uri, "loss", "mae", 0.3, False, tracking_uri=store)
    assert first.champion and not second.champion


def test_save_model_and_register_evaluated_point_at_training_run(store, tmp_path):
    import keras
    import mlflow
    from mlflow.tracking import MlflowClient

    from karyoflow.fileutil import write_json

    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("test")
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model_file = tmp_path / "job" / "model.keras"
    with mlflow.start_run() as train_run:
        uri = trk.save_model(net, model_file, log=True)
    assert uri and model_file.exists() and not list(model_file.parent.glob(".*part"))
    write_json(model_file.with_name("metrics.json"), {"mlflow_run_id": train_run.info.run_id})
    assert trk.save_model(net, tmp_path / "other.keras", log=False) is None
    job = {"tracking_uri": store, "experiment": "test", "results": tmp_path / "results"}
    lines = []
    regs = []
    for error in (0.05, 0.02, 0.03):  # lower is better
        with mlflow.start_run() as eval_run:
            regs.append(
                trk.register_evaluated(
                    model_file,
                    net,
                    "centromere",
                    "test_median_error_frac",
                    error,
                    greater_is_better=False,
                    job=job,
                    tags={"model": "tiny"},
                    log=lines.append,
                )
            )
        run_tags = MlflowClient(store).get_run(eval_run.info.run_id).data.tags
        assert run_tags["registered_model"] == "karyoflow-centromere"
    assert [r.champion for r in regs] == [True, True, False]
    assert "(champion)" in lines[1] and "champion has 0.02" in lines[2]
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    champ = client.get_model_version_by_alias("karyoflow-centromere", trk.CHAMPION)
    assert str(champ.version) == "2" and champ.run_id == train_run.info.run_id
    assert champ.tags["greater_is_better"] == "false" and champ.tags["model"] == "tiny"
    # logging off: nothing registered
    with mlflow.start_run():
        off = {**job, "log_models": False}
        assert (
            trk.register_evaluated(
                model_file, net, "centromere", "m", 0.0, greater_is_better=False, job=off
            )
            is None
        )


def test_parent_artifacts_are_namespaced(store, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    files = []
    for model, acc in (("a", 0.5), ("b", 0.75)):
        path = tmp_path / "results" / "evaluate" / "voc" / model / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"dataset": "voc", "model": model, "accuracy": acc}))
        files.append(path)
    run_id = trk.start_parent_run(store, "test", name="workflow")
    trk.end_parent_run(
        store,
        run_id,
        "FINISHED",
        files,
        results=tmp_path / "results",
        metrics=trk.evaluation_summary(files),
    )
    client = MlflowClient(tracking_uri=store)
    logged = {a.path for a in client.list_artifacts(run_id, "evaluate/voc/a")}
    logged |= {a.path for a in client.list_artifacts(run_id, "evaluate/voc/b")}
    assert logged == {"evaluate/voc/a/metrics.json", "evaluate/voc/b/metrics.json"}
    run = client.get_run(run_id)
    assert run.data.metrics["voc/b/test_accuracy"] == 0.75
    assert run.info.status == "FINISHED"


def test_child_run_provenance_tags(store, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv(trk.CONFIG_HASH_ENV, trk.config_hash({"seed": 1}))
    data = tmp_path / "train.h5"
    data.write_bytes(b"data")
    with trk.child_run(
        store,
        "test",
        name="child",
        parent=None,
        tags={"rule": "train", "wildcards": "{}"},
        results=tmp_path / "results",
        data_files=[data],
    ) as run:
        run_id = run.info.run_id
    tags = MlflowClient(tracking_uri=store).get_run(run_id).data.tags
    assert tags["config_hash"] == trk.config_hash({"seed": 1})
    assert tags["dvc_data_hash"] == trk.dvc_md5(data)
    assert tags["rule"] == "train" and "git_commit" in tags


def test_dataset_hashes_ignore_checkout_location(tmp_path):
    import pandas as pd

    hashes = []
    for where in ("a", "b"):
        root = tmp_path / where
        manifest = root / "results" / "manifest"
        manifest.mkdir(parents=True)
        source = f"{root}/results/synthetic/x.png"
        pd.DataFrame({"source": [source], "label": ["1"]}).to_parquet(manifest / "m.parquet")
        (manifest / "m.rejected.csv").write_text(f"source\n{source}\n")
        hashes.append(dataset_hashes(root / "results", root))
    assert hashes[0] == hashes[1]
    assert set(hashes[0]) == {"results/manifest"} and hashes[0]["results/manifest"]["files"] == 2
    rows = compare({"d": {"x": 1.0, "h": "abc"}}, {"d": {"x": 1.0, "h": "abd"}})
    assert [r.ok for r in rows] == [False, True]
    assert "1/2 checks pass" in format_table(rows)
