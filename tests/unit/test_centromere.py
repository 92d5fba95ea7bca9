"""Centromere localisation: models, data (flips move the point), metrics, a tracked job."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from karyoflow.tasks.centromere.data import flip_points, load_centromere_split, make_point_dataset
from karyoflow.tasks.centromere.metrics import (
    centromere_index,
    centromere_metrics,
    chromosome_extent,
    per_class_table,
)
from karyoflow.tasks.centromere.task import make_loss, resolve_centromere_params

H, W = 32, 16


def _chromosomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dark vertical bars on white with a pale notch at a random centromere row."""
    rng = np.random.default_rng(seed)
    images = np.full((n, H, W), 240, np.uint8)
    points = np.zeros((n, 2), np.float32)
    labels = rng.integers(0, 24, n)
    for i in range(n):
        top, bottom = rng.integers(1, 5), rng.integers(H - 5, H - 1)
        images[i, top : bottom + 1, 5:11] = 50
        cy = int(rng.integers(top + 4, bottom - 3))
        images[i, cy, 5:11] = 200  # the constriction
        images[i, cy, 5] = images[i, cy, 10] = 240
        points[i] = (7.5, cy)
    return images, points, labels


def _write(path: Path, n: int, seed: int, *, extra_rows: bool = False) -> None:
    images, points, labels = _chromosomes(n, seed)
    if extra_rows:  # a row without a centromere and one outside the image
        images = np.concatenate([images, images[:2]])
        points = np.concatenate([points, [[np.nan, np.nan], [3.0, H + 4.0]]]).astype(np.float32)
        labels = np.concatenate([labels, [0, 1]])
    m = len(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5["images"] = images
        h5["centromere"] = points
        h5["labels"] = labels.astype(np.int16)
        h5["cell_ids"] = np.array([f"{path.stem}{i // 8}" for i in range(m)], "S")
        h5["instance_ids"] = np.array([f"{path.stem}/{i}" for i in range(m)], "S")
        h5["datasets"] = np.array(["tiny"] * m, "S")
        h5["augmented"] = np.zeros(m, np.uint8)


def test_models_build_and_start_at_the_centre():
    from karyoflow.models.registry import build_model as build_centromere_model

    x = np.full((2, H, W, 1), 255.0, np.float32)  # blank: the heat map is uniform
    for name in ("centromere_cnn", "centromere_heatmap"):
        opts = {"width": 8} if name == "centromere_heatmap" else {"filters": [4, 8, 8, 8]}
        model = build_centromere_model(name, (H, W, 1), options=opts, seed=1)
        assert model.output_shape == (None, 2)
        out = model.predict(x, verbose=0)
        assert np.allclose(out, [(W - 1) / 2, (H - 1) / 2], atol=0.6), (name, out)
    with pytest.raises(ValueError, match="divisible by 8"):
        build_centromere_model("centromere_heatmap", (30, 16, 1))
    with pytest.raises(ValueError, match="unknown option"):
        build_centromere_model("centromere_cnn", (H, W, 1), options={"depth": 3})


def test_losses_and_params():
    assert resolve_centromere_params({"loss": "mape"})["loss"] == "mape"
    with pytest.raises(ValueError, match="unknown centromere training option 'epoch'"):
        resolve_centromere_params({"epoch": 1})
    true = np.array([[10.0, 20.0]], np.float32)
    pred = np.array([[13.0, 24.0]], np.float32)
    assert float(make_loss("l1")(true, pred)) == pytest.approx(3.5)
    assert float(make_loss("euclidean")(true, pred)[0]) == pytest.approx(5.0, abs=1e-3)


def test_flips_move_the_point():
    img = np.full((1, H, W), 255, np.uint8)
    pt = np.array([[3.0, 5.0]], np.float32)
    img[0, 5, 3] = 0
    assert flip_points(pt, (H, W), hflip=True).tolist() == [[12.0, 5.0]]
    from karyoflow.tasks.centromere.data import CentromereData

    data = CentromereData(
        img,
        pt,
        np.zeros(1, np.int64),
        np.array(["c"], object),
        np.array(["i"], object),
        np.array(["d"], object),
        np.zeros(1, np.uint8),
    )
    aug = {"hflip": 1.0, "vflip": 1.0, "brightness": 0.0, "contrast": 0.0}
    images, points = next(
        iter(make_point_dataset(data, batch_size=1, seed=0, training=True, augment=aug))
    )
    images, points = images.numpy()[0, ..., 0], points.numpy()[0]
    ys, xs = np.nonzero(images < 128)
    assert (xs[0], ys[0]) == (W - 1 - 3, H - 1 - 5) and tuple(points) == (xs[0], ys[0])


def test_metrics_on_crafted_points():
    img = np.full((H, W), 250, np.uint8)
    img[2:30, 4:12] = 60  # rows 2-29: 28 px long
    ext = chromosome_extent(np.stack([img, img, img]))
    assert ext[0].tolist() == [2.0, 29.0, 4.0, 11.0]
    true = np.array([[8.0, 8.5], [8.0, 15.5], [8.0, 20.0]])  # CI 0.25, 0.5, 9.5/28
    pred = np.array([[8.0, 8.5], [8.0, 16.9], [8.0, 10.0]])  # 0 px, 1.4 px (5 %), 10 px
    summary, table = centromere_metrics(pred, true, ext)
    assert summary["n"] == 3
    assert summary["mean_error_px"] == pytest.approx((0 + 1.4 + 10) / 3)
    assert summary["median_error_frac"] == pytest.approx(1.4 / 28)
    assert summary["within_5pct"] == pytest.approx(2 / 3)
    assert summary["p90_error_px"] == pytest.approx(1.4 + 0.8 * 8.6)
    assert centromere_index(true, ext).round(4).tolist() == [0.25, 0.5, 0.3393]
    # predicted at row 10, on the other arm: CI 8.5/28 instead of 9.5/28
    assert table["ci_error"].round(4).tolist() == [0.0, 0.05, 0.0357]
    per_class = per_class_table(table, np.array([0, 0, 23]), [str(i) for i in range(24)])
    assert per_class["n"].tolist() == [2, 1]
    assert per_class["ci_mae"].round(3).tolist() == [0.025, 0.036]


def test_load_split_quarantines_points_outside(tmp_path):
    _write(tmp_path / "a" / "s" / "train.h5", 8, 0, extra_rows=True)
    data = load_centromere_split(tmp_path / "a" / "s" / "train.h5")
    assert len(data) == 8  # NaN row skipped, outside row left out with its reason
    assert len(data.rejects) == 1 and "outside the 16x32 image" in data.rejects[0][2]
    assert str(tmp_path / "a" / "s" / "train.h5") == data.rejects[0][0]
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as h5:
        h5["images"] = np.zeros((1, H, W), np.uint8)
    with pytest.raises(ValueError, match=r"bad\.h5: no 'centromere' dataset"):
        load_centromere_split(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.h5"):
        load_centromere_split(tmp_path / "missing.h5")


@pytest.mark.slow
def test_one_epoch_fit_and_evaluation_tracked(tmp_path):
    from karyoflow.engine import tracking
    from karyoflow.engine.job import Job
    from karyoflow.engine.run import run_evaluate, run_train
    from karyoflow.tasks.centromere.task import TASK

    for split, n, seed in (("train", 96, 1), ("val", 16, 2), ("test", 16, 3)):
        _write(tmp_path / "data" / f"{split}.h5", n, seed)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "results"
    tracking.init_store(uri, "test", results)
    parent = tracking.start_parent_run(uri, "test", name="workflow")
    (results / "mlflow").mkdir(parents=True, exist_ok=True)
    (results / "mlflow" / "parent_run.json").write_text(json.dumps({"run_id": parent}))
    job = Job(
        task="centromere",
        rule="train_centromere",
        dataset="tiny",
        model="centromere_heatmap",
        seed=3,
        size=f"{H}x{W}",
        options={"width": 8},
        params=resolve_centromere_params({"epochs": 1, "batch_size": 32, "threads": 1}),
        inputs={
            "train": [str(tmp_path / "data" / "train.h5")],
            "val": [str(tmp_path / "data" / "val.h5")],
        },
        wildcards={"cmodel": "centromere_heatmap"},
        settings={"figure_count": 8},
        tracking={
            "tracking_uri": uri,
            "experiment": "test",
            "log_models": False,
            "results": str(results),
        },
    )
    out = tmp_path / "out"
    outputs = {
        k: str(out / f)
        for k, f in [
            ("model", "model.keras"),
            ("metrics", "m.json"),
            ("history", "h.json"),
            ("curves", "c.png"),
        ]
    }
    metrics = run_train(TASK, job, outputs, log=lambda _m: None)
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["val_mean_error_px"])
    ev_out = {
        k: str(out / "test" / f)
        for k, f in [
            ("metrics", "metrics.json"),
            ("per_class", "per_class.csv"),
            ("predictions", "pred.csv"),
            ("figure", "p.png"),
        ]
    }
    ev_job = job.with_(
        rule="evaluate_centromere",
        inputs={"model": outputs["model"], "test": [str(tmp_path / "data" / "test.h5")]},
    )
    ev = run_evaluate(TASK, ev_job, ev_out, log=lambda _m: None)
    saved = json.loads(Path(ev_out["metrics"]).read_text())
    for key in (
        "mean_error_px",
        "p90_error_px",
        "mean_error_frac",
        "p90_error_frac",
        "within_5pct",
        "ci_mae",
        "per_class_ci_mae",
    ):
        assert key in saved, key
    assert saved["n"] == 16 and Path(ev_out["figure"]).stat().st_size > 5000
    assert len(pd.read_csv(ev_out["predictions"])) == 16
    db = sqlite3.connect(tmp_path / "mlflow.db")
    for run, kind in (
        (metrics["mlflow_run_id"], "train_centromere"),
        (ev["mlflow_run_id"], "evaluate_centromere"),
    ):
        tags = dict(db.execute("select key, value from tags where run_uuid=?", (run,)).fetchall())
        assert tags["mlflow.parentRunId"] == parent
        assert tags["karyoflow.kind"] == kind and tags["rule"] == kind
        assert tags["model"] == "centromere_heatmap" and tags["git_commit"]
    params = dict(
        db.execute(
            "select key, value from params where run_uuid=?", (metrics["mlflow_run_id"],)
        ).fetchall()
    )
    assert params["centromere.loss"] == "l1" and params["centromere.epochs"] == "1"


def test_config_section_checked(repo):
    import yaml

    from karyoflow.config import ConfigError, validate_config

    base = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    filled = validate_config(json.loads(json.dumps(base)))
    assert filled["centromere"]["models"] == ["centromere_heatmap"]
    for change, message in (
        ({"datasets": ["nope"]}, "centromere/datasets: no dataset 'nope'"),
        ({"size": "1x1"}, "centromere/size: '1x1' is not a preprocess size"),
        ({"params": {"loss": "cosine"}}, "centromere/params: loss 'cosine'"),
        ({"models": ["resnet18"]}, "centromere"),
    ):
        config = json.loads(json.dumps(base))
        config["centromere"].update(change)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            validate_config(config)
