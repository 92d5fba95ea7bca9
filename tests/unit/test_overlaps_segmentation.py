"""Overlap segmentation: matched IoU on crafted masks, losses, models, a 1-epoch fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from karyoflow.evaluate.segmentation import (
    colour_labels,
    match_ab,
    plot_segmentation_samples,
    segmentation_report,
    swap_ab,
)


def _truth() -> np.ndarray:
    """Two 6x6 images: background, A, B and overlap in known amounts."""
    t = np.zeros((2, 6, 6), np.int64)
    t[:, 1:5, 1] = 1  # A: 4 px per image
    t[:, 1:5, 3] = 2  # B: 4 px
    t[:, 2, 2] = 3  # overlap: 1 px
    return t


def test_perfect_and_swapped_predictions():
    t = _truth()
    assert segmentation_report(t, t)["mean_iou"] == 1.0
    swapped = swap_ab(t)
    r = segmentation_report(t, swapped)
    assert r["iou"] == {"background": 1.0, "chromosome_a": 1.0, "chromosome_b": 1.0, "overlap": 1.0}
    assert r["swapped"] == 2 and r["pixel_accuracy"] == 1.0
    assert r["unmatched_iou"]["chromosome_a"] == 0.0  # without matching A/B would be lost
    # one image swapped, the other not: matched per image
    mixed = t.copy()
    mixed[1] = swap_ab(t[1])
    r = segmentation_report(t, mixed)
    assert r["mean_iou"] == 1.0 and r["swapped"] == 1
    assert np.isclose(r["unmatched_iou"]["chromosome_a"], 4 / 12)  # 4 hits, 12 in union


def test_pooled_iou_on_crafted_errors():
    t = _truth()
    p = t.copy()
    p[0, 2, 2] = 1  # overlap pixel called A in image 0
    p[1, 0, 0] = 2  # a background pixel called B in image 1
    r = segmentation_report(t, p)
    # overlap: 1 of 2 truth pixels found, nothing extra -> 1/2
    assert r["overlap_iou"] == pytest.approx(0.5)
    # A: 8 truth pixels all found, 1 extra -> 8/9; B: 8 found, 1 extra -> 8/9
    assert r["iou"]["chromosome_a"] == pytest.approx(8 / 9)
    assert r["iou"]["chromosome_b"] == pytest.approx(8 / 9)
    assert r["chromosome_iou"] == pytest.approx(8 / 9)
    # background: 72 - 18 = 54 truth px, 53 found -> 53/54
    assert r["iou"]["background"] == pytest.approx(53 / 54)
    assert r["pixel_accuracy"] == pytest.approx(70 / 72)
    assert r["mean_iou"] == pytest.approx(np.mean([53 / 54, 8 / 9, 8 / 9, 0.5]))
    cm = np.asarray(r["confusion_matrix"])
    assert cm.sum() == 72 and cm[3, 1] == 1 and cm[0, 2] == 1


def test_match_ab_keeps_ties_and_checks_shapes():
    t = np.array([[0, 1, 2]])
    p = np.array([[0, 1, 1]])  # one A hit either way: keep as it is
    matched, swapped = match_ab(t, p)
    assert matched.tolist() == [[0, 1, 1]] and not swapped.any()
    with pytest.raises(ValueError, match="differ in shape"):
        match_ab(np.zeros((1, 2, 2)), np.zeros((1, 2, 3)))


def test_absent_class_is_nan_and_skipped_in_mean():
    t = np.zeros((1, 4, 4), np.int64)
    t[0, 1, 1] = 1
    r = segmentation_report(t, t)
    assert np.isnan(r["overlap_iou"]) and r["mean_iou"] == 1.0


def test_colours_and_sample_figure(tmp_path):
    assert colour_labels(np.array([[0, 1, 2, 3]])).shape == (1, 4, 3)
    t = _truth()
    path = tmp_path / "s.png"
    plot_segmentation_samples(
        (t * 50).astype(np.uint8), t, swap_ab(t), path, title="x", per_image_iou=[1.0, 1.0]
    )
    first = path.read_bytes()
    plot_segmentation_samples(
        (t * 50).astype(np.uint8), t, swap_ab(t), path, title="x", per_image_iou=[1.0, 1.0]
    )
    assert path.read_bytes() == first and len(first) > 2000  # deterministic PNG


def test_swap_invariant_loss():
    from karyoflow.tasks.segmentation.losses import SwapInvariantLoss, class_pixel_weights

    y = _truth()
    p = np.eye(4, dtype=np.float32)[swap_ab(y)] * 0.9 + 0.025
    for kind in ("weighted_ce", "dice", "ce_dice"):
        loss = SwapInvariantLoss(kind, class_pixel_weights(y, 4, "sqrt"))
        assert float(loss(y, p)) == pytest.approx(float(loss(swap_ab(y), p)), rel=1e-6)
        plain = SwapInvariantLoss(kind, swap=False)
        assert float(plain(y, p)) > float(loss(y, p)) + 0.1
    w = class_pixel_weights(y, 4, "balanced")
    assert w[3] > w[1] > w[0]
    assert SwapInvariantLoss.from_config(loss.get_config()).kind == "ce_dice"


def test_models_build_and_reject_bad_sizes():
    from karyoflow.models.registry import build_model, model_options

    for name in ("unet", "segnet"):
        m = build_model(name, (32, 32, 1), options={"filters": 4, "depth": 2})
        assert m.output_shape == (None, 32, 32, 4)
        assert m.layers[-1].dtype_policy.name == "float32"
        assert any("dropout" in layer.name for layer in m.layers)
    assert "dropout" in model_options("segnet")
    with pytest.raises(ValueError, match="multiple of 8"):
        build_model("unet", (36, 36, 1))
    with pytest.raises(ValueError, match="unknown option"):
        build_model("unet", (32, 32, 1), options={"filter": 4})
    with pytest.raises(ValueError, match=r"unknown model 'fcn'.*segmentation: segnet, unet"):
        build_model("fcn", (32, 32, 1))


def test_test_time_views_of_segmentation():
    """Averaged over all 8 views, the labels of a transposed or flipped pair are the
    transposed or flipped labels (an untrained net: one view is not symmetric)."""
    import keras

    from karyoflow.models.registry import build_model
    from karyoflow.tasks.segmentation.task import predict_pairs, resolve_seg_params

    keras.utils.set_random_seed(0)
    m = build_model("unet", (32, 32, 1), options={"filters": 4, "depth": 2})
    grey = (np.random.default_rng(1).random((3, 32, 32)) * 255).astype(np.uint8)
    one = resolve_seg_params({"mode": "four_class"})
    assert not np.array_equal(
        predict_pairs(m, grey[:, ::-1], params=one)[:, ::-1], predict_pairs(m, grey, params=one)
    )
    eight = {"mode": "four_class", "tta": 8}  # predict_pairs alone: no A / B split here
    ref = predict_pairs(m, grey, params=eight)
    assert np.array_equal(
        predict_pairs(m, grey.transpose(0, 2, 1), params=eight).transpose(0, 2, 1), ref
    )
    assert np.array_equal(predict_pairs(m, grey[:, ::-1, ::-1], params=eight)[:, ::-1, ::-1], ref)
    assert resolve_seg_params({"mode": "contact_geometric", "tta": 4})["tta"] == 4
    with pytest.raises(ValueError, match="tta > 1 needs a geometric mode"):
        resolve_seg_params({"tta": 8})
    with pytest.raises(ValueError, match="tta must be 1, 2, 4 or 8"):
        resolve_seg_params({"mode": "contact_geometric", "tta": 3})


def test_segmentation_uses_the_shared_optimizers_and_schedules():
    import keras

    from karyoflow.engine.fit import make_optimizer
    from karyoflow.tasks.segmentation.task import resolve_seg_params

    params = resolve_seg_params({"optimizer": "sgd", "schedule": "cosine", "epochs": 4})
    opt = make_optimizer(params, steps_per_epoch=10)
    assert isinstance(opt, keras.optimizers.SGD)
    # the cosine schedule's linear warm-up starts at a tenth of the learning rate
    assert float(opt.learning_rate) == pytest.approx(params["learning_rate"] / 10)
    constant = make_optimizer(resolve_seg_params({}), steps_per_epoch=10)
    assert float(constant.learning_rate) == pytest.approx(0.002)
    assert resolve_seg_params({})["schedule"] == "constant"  # the measured default
    with pytest.raises(ValueError, match="schedule 'linear'"):
        resolve_seg_params({"schedule": "linear"})


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["four_class", "contact_geometric"])
def test_one_epoch_fit_and_evaluation(tmp_path, mode):
    from karyoflow.engine.job import Job
    from karyoflow.engine.run import run_evaluate, run_train
    from karyoflow.tasks.segmentation.generate import compose_pair, write_pairs_h5
    from karyoflow.tasks.segmentation.task import TASK

    four = mode == "four_class"
    rng = np.random.default_rng(0)
    bar = (np.full((22, 5), 0.6, np.float32), np.ones((22, 5), bool))
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        pairs = np.zeros((n, 32, 32, 2), np.uint8)
        for i in range(n):
            grey, lab = compose_pair(bar, bar, rng, size=32, downsample=1)
            pairs[i, ..., 0], pairs[i, ..., 1] = grey, lab
        write_pairs_h5(
            tmp_path / f"{split}.h5",
            {"pairs": pairs, "cell_ids": ["c"] * n, "instance_ids": [["a", "b"]] * n},
        )
    tracking = {
        "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
        "experiment": "test",
        "log_models": False,
        "results": str(tmp_path),
    }
    job = Job(
        task="segmentation",
        rule="train_segmentation",
        dataset="d",
        model="unet",
        options={"filters": 4, "depth": 2},
        # the geometric mode evaluates with test-time views
        params={"epochs": 1, "batch_size": 8, "mode": mode, "tta": 1 if four else 8},
        seed=1,
        inputs={"train": tmp_path / "train.h5", "val": tmp_path / "val.h5"},
        wildcards={"dataset": "d", "seg_model": "unet"},
        settings={"samples": 4},
        tracking=tracking,
    )
    outs = {
        k: tmp_path / "m" / f
        for k, f in (
            ("model", "model.keras"),
            ("metrics", "metrics.json"),
            ("history", "history.json"),
            ("curves", "curves.png"),
        )
    }
    metrics = run_train(TASK, job, outs, log=lambda m: None)
    assert metrics["epochs_run"] == 1 and 0 <= metrics["val_mean_iou"] <= 1
    assert metrics["mode"] == mode
    assert json.loads(outs["history"].read_text())["loss"]
    ev = {
        k: tmp_path / "e" / f
        for k, f in (
            ("metrics", "metrics.json"),
            ("per_class", "per_class.csv"),
            ("samples", "samples.png"),
        )
    }
    job = job.with_(
        rule="evaluate_segmentation", inputs={"model": outs["model"], "test": tmp_path / "test.h5"}
    )
    result = run_evaluate(TASK, job, ev, log=lambda m: None)
    assert result["test_pairs"] == 8 and set(result["iou"]) >= {"overlap", "background"}
    assert result["mode"] == mode and result["tta"] == (1 if four else 8)
    with pytest.raises(ValueError, match="a 4-class model, but mode is three_class"):
        three = {**job.params, "mode": "three_class_geometric"}
        run_evaluate(TASK, job.with_(params=three), ev, log=lambda m: None)
    saved = json.loads(ev["metrics"].read_text())
    assert saved["mlflow_run_id"] and ev["samples"].stat().st_size > 2000
    if mode != "four_class":
        # (the same tracking code; a second store in one process is not looked up here)
        return

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    kinds = sorted(r.data.tags["karyoflow.kind"] for r in runs)
    assert kinds == ["evaluate_segmentation", "train_segmentation"]
    assert all(r.data.tags["rule"].endswith("segmentation") for r in runs)
