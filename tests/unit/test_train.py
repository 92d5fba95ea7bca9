"""A 1-epoch training job and its evaluation on tiny data, with a real MLflow store."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from karyoflow.engine.job import Job
from karyoflow.engine.run import run_evaluate, run_train
from karyoflow.labels import LABELS
from karyoflow.manifest import manifest_frame, write_manifest
from karyoflow.tasks.classification.data import class_weights, load_split
from karyoflow.tasks.classification.grid import grid_points, point_id
from karyoflow.tasks.classification.task import TASK, resolve_train_params

pytestmark = pytest.mark.slow

H, W = 32, 16


def _write_split(path: Path, n_cells: int, seed: int) -> None:
    """Cells of 24 'chromosomes' whose class shows as a bar at a class-specific height."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(24), n_cells)
    images = np.full((len(labels), H, W), 230, np.uint8)
    for i, lab in enumerate(labels):
        top = lab % 12 * 2 + 2
        images[i, top : top + 4 + lab // 12 * 3, 4:12] = 40
    images = np.clip(images + rng.normal(0, 8, images.shape), 0, 255).astype(np.uint8)
    cells = np.repeat([f"{path.stem}{c}" for c in range(n_cells)], 24)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5["images"] = images
        h5["labels"] = labels.astype(np.int16)
        h5["cell_ids"] = cells.astype("S")
        h5["instance_ids"] = np.array([f"{c}/{i}" for i, c in enumerate(cells)], "S")
        h5["augmented"] = np.zeros(len(labels), np.uint8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    for split, n, seed in (("train", 6, 1), ("val", 2, 2), ("test", 2, 3)):
        _write_split(root / "data" / f"{split}.h5", n, seed)
    manifest = root / "manifest.parquet"
    write_manifest(manifest_frame([{"cell_id": "test0", "cell_truth": "46,XY"}]), manifest)
    return root


def _tracking(root: Path, log_models: bool = True) -> dict:
    return {
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        "experiment": "test",
        "log_models": log_models,
        "results": str(root / "results"),
    }


def _job(root: Path, *, params=None, log_models: bool = True) -> Job:
    point = point_id("adamw", 0.003)
    return Job(
        task="classification",
        rule="train",
        dataset="tiny",
        model="karyonet_fast",
        seed=5,
        params=params or resolve_train_params({"epochs": 1, "batch_size": 32, "threads": 1}),
        size=f"{H}x{W}",
        inputs={
            "train": [str(root / "data" / "train.h5")],
            "val": [str(root / "data" / "val.h5")],
            "manifest": [str(root / "manifest.parquet")],
        },
        wildcards={"dataset": "tiny", "model": "karyonet_fast", "point": point},
        tracking=_tracking(root, log_models),
    )


def run_training(job: Job, outputs, log=print) -> dict:
    return run_train(TASK, job, outputs, log=log)


def _outputs(root: Path, name: str) -> dict[str, str]:
    out = root / name
    return {
        "model": str(out / "model.keras"),
        "metrics": str(out / "metrics.json"),
        "history": str(out / "history.json"),
        "curves": str(out / "curves.png"),
        "confusion": str(out / "val_confusion.png"),
    }


def test_one_epoch_job_tracked(tiny):
    from karyoflow.engine import tracking

    uri = f"sqlite:///{tiny / 'mlflow.db'}"
    tracking.init_store(uri, "test", tiny / "results")
    parent = tracking.start_parent_run(uri, "test", name="workflow")
    (tiny / "results" / "mlflow").mkdir(parents=True, exist_ok=True)
    (tiny / "results" / "mlflow" / "parent_run.json").write_text(json.dumps({"run_id": parent}))
    outputs = _outputs(tiny, "run1")
    metrics = run_training(_job(tiny), outputs, log=lambda _m: None)
    for path in outputs.values():
        assert Path(path).stat().st_size > 0, path
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and metrics["epochs_run"] == 1
    history = json.loads(Path(outputs["history"]).read_text())
    assert np.isfinite(history["loss"][0])
    db = sqlite3.connect(tiny / "mlflow.db")
    run = metrics["mlflow_run_id"]
    tags = dict(db.execute("select key, value from tags where run_uuid=?", (run,)).fetchall())
    assert tags["mlflow.parentRunId"] == parent
    assert tags["model"] == "karyonet_fast" and tags["grid_point"] == "adamw-lr0.003"
    assert len(tags["data_hash"]) == 16 and tags["git_commit"]
    params = dict(db.execute("select key, value from params where run_uuid=?", (run,)).fetchall())
    assert params["train.optimizer"] == "adamw" and params["train.epochs"] == "1"
    names = {r[0] for r in db.execute("select key from metrics where run_uuid=?", (run,))}
    assert {"loss", "accuracy", "val_accuracy", "val_loss"} <= names
    # the keras model reloads and predicts the same as the saved metrics imply
    import keras

    model = keras.models.load_model(outputs["model"])
    assert model.output_shape == (None, len(LABELS))
    # fine-tuning from that run's logged model by its MLflow URI: the new job starts
    # from its weights (epoch 1 of the new job is better than the first one's)
    start = f"runs:/{run}/model"
    tuned = run_training(_job(tiny).with_(weights=start), _outputs(tiny, "tuned"), log=print)
    first = json.loads(Path(outputs["history"]).read_text())["loss"][0]
    assert json.loads(Path(_outputs(tiny, "tuned")["history"]).read_text())["loss"][0] < first
    params = dict(
        db.execute("select key, value from params where run_uuid=?", (tuned["mlflow_run_id"],))
    )
    assert params["weights"] == start


def test_cpu_training_is_deterministic(tiny):
    a = run_training(_job(tiny, log_models=False), _outputs(tiny, "a"), log=lambda _m: None)
    b = run_training(_job(tiny, log_models=False), _outputs(tiny, "b"), log=lambda _m: None)
    ha = json.loads(Path(_outputs(tiny, "a")["history"]).read_text())
    hb = json.loads(Path(_outputs(tiny, "b")["history"]).read_text())
    assert ha == hb and a["val_accuracy"] == b["val_accuracy"]


def test_evaluation_with_decoding(tiny):
    run_training(_job(tiny, log_models=False), _outputs(tiny, "adamw-lr0.003"), log=print)
    grid = tiny / "grid.csv"
    pd.DataFrame(
        [{"model": "karyonet_fast", "point": "adamw-lr0.003", "val_accuracy": 0.5}]
    ).to_csv(grid, index=False)
    out = tiny / "eval"
    outputs = {
        k: str(out / f)
        for k, f in [
            ("metrics", "m.json"),
            ("per_class", "p.csv"),
            ("cells", "c.csv"),
            ("cases", "cases.csv"),
            ("confusion", "c.png"),
            ("reliability", "r.png"),
            ("review", "review.png"),
        ]
    }
    model_file = _outputs(tiny, "adamw-lr0.003")["model"]
    calibration = Path(model_file).with_name("calibration.json")
    calibration.write_text('{"temperature": 2.0, "fitted_on": "val", "review_min_posterior": 0.5}')
    job = Job(
        task="classification",
        rule="evaluate",
        dataset="tiny",
        model="karyonet_fast",
        seed=5,
        inputs={
            "grid": [str(grid)],
            "models": [model_file],
            "calibrations": [str(calibration)],
            "test": [str(tiny / "data" / "test.h5")],
            "manifest": [str(tiny / "manifest.parquet")],
        },
        settings={
            "select_by": "val_accuracy",
            "decode": {"extra_copy_penalty": None, "max_copies": 4, "call": {}, "cases": {}},
        },
        tracking=_tracking(tiny, log_models=False),
    )
    metrics = run_evaluate(TASK, job, outputs, log=lambda _m: None)
    assert metrics["test_instances"] == 48 and metrics["test_cells"] == 2
    for key in ("accuracy", "accuracy_decoded", "accuracy_hierarchical", "denver_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    cells = pd.read_csv(outputs["cells"])
    assert len(cells) == 2 and cells["truth"].iloc[0] == "46,XY"
    assert len(pd.read_csv(outputs["per_class"])) == 24
    # the calibration beside the chosen model is applied; its review threshold is used
    assert metrics["calibration_temperature"] == 2.0 and metrics["review_min_posterior"] == 0.5
    assert cells["call_iscn"].notna().all() and cells["call_review"].dtype == bool
    assert len(pd.read_csv(outputs["cases"])) == 2  # each cell its own case
    for key in ("reliability", "review"):
        assert Path(outputs[key]).stat().st_size > 1000


def test_training_options():
    assert grid_points({"optimizer": ["sgd", "adam"], "learning_rate": [0.1, 0.01]}).keys() == {
        "sgd-lr0.1",
        "sgd-lr0.01",
        "adam-lr0.1",
        "adam-lr0.01",
    }
    with pytest.raises(ValueError, match="unknown training option"):
        resolve_train_params({"epocs": 3})
    with pytest.raises(ValueError, match="optimizer"):
        resolve_train_params({"optimizer": "lion"})
    w = class_weights(np.array([0] * 9 + [23]), 24)
    assert w[23] > w[0] and w[5] == 1.0


def test_schedules_and_optimizers():
    from karyoflow.engine.fit import make_optimizer

    for opt in ("adam", "adamw", "sgd", "rmsprop"):
        for schedule in ("constant", "step", "cosine", "onecycle"):
            params = resolve_train_params({"optimizer": opt, "schedule": schedule, "epochs": 4})
            optimizer = make_optimizer(params, steps_per_epoch=10)
            lr = optimizer.learning_rate
            assert float(np.asarray(lr)) > 0


def test_load_split_concatenates(tiny):
    a = load_split([tiny / "data" / "train.h5", tiny / "data" / "val.h5"])
    assert len(a) == 24 * 8 and a.images.shape[1:] == (H, W)


def _add_sizes(path: Path) -> np.ndarray:
    """Give a split file sizes that grow with the label (as chromosome 1 > 22)."""
    with h5py.File(path, "a") as h5:
        labels = h5["labels"][()].astype(float)
        length = 100.0 - 3.0 * labels
        h5["length_px"] = length.astype(np.float32)
        h5["area_px"] = (length * 12.0).astype(np.float32)
    return length


def test_size_features_from_split_files(tmp_path):
    from karyoflow.tasks.classification.data import make_dataset

    path = tmp_path / "train.h5"
    _write_split(path, 2, 0)
    plain = load_split(path)
    assert plain.size_features is not None and not plain.size_features.any()
    length = _add_sizes(path)
    data = load_split(path)
    cell0 = data.cell_ids == data.cell_ids[0]
    expected = np.log(length[cell0] / np.median(length[cell0]))
    np.testing.assert_allclose(data.size_features[cell0, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(data.size_features[:, 1], data.size_features[:, 0], atol=1e-5)
    ds = make_dataset(data, batch_size=8, seed=0, training=False, size_features=True)
    (images, sizes), onehot = next(iter(ds))
    assert tuple(images.shape) == (8, H, W, 1) and tuple(sizes.shape) == (8, 2)
    np.testing.assert_allclose(sizes.numpy(), data.size_features[:8])
    assert onehot.numpy().argmax(1).tolist() == data.labels[:8].tolist()
    # training batches (shuffled, augmented, mixed) keep images and sizes paired
    ds = make_dataset(data, batch_size=48, seed=1, training=True, mixup=0.2, size_features=True)
    (images, sizes), onehot = next(iter(ds))
    assert tuple(sizes.shape) == (48, 2) and np.isfinite(sizes.numpy()).all()


def test_size_feature_job_builds_two_input_model(tmp_path):
    import keras

    from karyoflow.tasks.classification.data import predict_proba

    for split, n, seed in (("train", 4, 1), ("val", 1, 2)):
        _write_split(tmp_path / "data" / f"{split}.h5", n, seed)
        _add_sizes(tmp_path / "data" / f"{split}.h5")
    write_manifest(manifest_frame([]), tmp_path / "manifest.parquet")
    params = resolve_train_params({"epochs": 1, "batch_size": 32, "threads": 1})
    params["size_features"] = True
    outputs = _outputs(tmp_path, "sized")
    metrics = run_training(
        _job(tmp_path, params=params, log_models=False), outputs, log=lambda _m: None
    )
    model = keras.models.load_model(outputs["model"])
    assert len(model.inputs) == 2 and metrics["epochs_run"] == 1
    val = load_split(tmp_path / "data" / "val.h5")
    proba = predict_proba(model, val)
    assert proba.shape == (24, 24)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-4)
    # test-time views: the mean of the crops' and their mirrors' probabilities
    mirrored = predict_proba(model, dataclasses.replace(val, images=val.images[:, :, ::-1]))
    assert np.abs(mirrored - proba).max() > 1e-6  # an untrained net is not symmetric
    both = predict_proba(model, val, tta="hflip")
    np.testing.assert_allclose(both, (proba + mirrored) / 2, rtol=0, atol=1e-7)
    assert predict_proba(model, val, tta="flips").shape == (24, 24)
    with pytest.raises(ValueError, match="unknown test-time view mode 'rot'"):
        predict_proba(model, val, tta="rot")


def test_training_from_disk_is_deterministic(tiny):
    """A training split over ``images_in_memory_mb`` is read batch by batch from its
    files; the job learns (the loss falls) and repeats exactly."""
    params = resolve_train_params(
        {"epochs": 2, "batch_size": 32, "threads": 1, "images_in_memory_mb": 0,
         "progress_every_s": 1e-9}  # a progress line after every batch
    )  # fmt: skip
    logs: list[str] = []
    runs = [
        run_training(_job(tiny, params=params, log_models=False), _outputs(tiny, n), logs.append)
        for n in ("disk_a", "disk_b")
    ]
    assert any('"on_disk": true' in m for m in logs)
    # 144 training images in batches of 32: 5 batches an epoch, each with its line
    progress = [m.split("] ", 1)[-1] for m in logs if "epoch 1/2: batch " in m]
    assert progress[0].startswith("epoch 1/2: batch 1/5 (20 %), loss=") and "to go" in progress[0]
    ha, hb = (
        json.loads(Path(_outputs(tiny, n)["history"]).read_text()) for n in ("disk_a", "disk_b")
    )
    assert ha == hb and runs[0]["val_accuracy"] == runs[1]["val_accuracy"]
    assert ha["loss"][1] < ha["loss"][0]
