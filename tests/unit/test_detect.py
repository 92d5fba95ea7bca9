"""Detection of chromosomes in crafted metaphases, box matching and the detect rule glue."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from karyoflow.config import ConfigError, validate_config
from karyoflow.manifest import manifest_frame, write_manifest
from karyoflow.tasks.detection.evaluate import (
    average_precision,
    box_iou,
    match_boxes,
    summarise_cells,
)
from karyoflow.tasks.detection.pipeline import (
    DEFAULT_PARAMS,
    evaluate_manifest,
    metrics_by_split,
    pr_curves,
    resolve_params,
    run_detect_evaluate,
)
from karyoflow.tasks.detection.plots import COLOURS, overlay_detections
from karyoflow.tasks.detection.segment import Detections, detect_chromosomes

BG, FG = 225, 70


def _canvas(h: int = 300, w: int = 400) -> np.ndarray:
    return np.full((h, w), BG, np.uint8)


def _bar(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], width: int = 14) -> None:
    """A chromosome-like capsule (round ends) from p0 to p1 (x, y)."""
    cv2.line(img, p0, p1, FG, width, lineType=cv2.LINE_8)
    for p in (p0, p1):
        cv2.circle(img, p, width // 2, FG, -1)


def _finish(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def _box_of(p0: tuple[int, int], p1: tuple[int, int], width: int = 14) -> list[int]:
    r = width // 2
    return [
        min(p0[0], p1[0]) - r,
        min(p0[1], p1[1]) - r,
        max(p0[0], p1[0]) + r + 1,
        max(p0[1], p1[1]) + r + 1,
    ]


def _scene(extra=()) -> tuple[np.ndarray, list[list[int]]]:
    """Five separate bars of different lengths and angles (+ extra drawing callbacks)."""
    img = _canvas()
    bars = [
        ((40, 40), (40, 120)),
        ((90, 50), (150, 60)),
        ((200, 40), (230, 110)),
        ((300, 60), (300, 100)),
        ((60, 200), (140, 250)),
    ]
    for p0, p1 in bars:
        _bar(img, p0, p1)
    for draw in extra:
        draw(img)
    return _finish(img), [_box_of(p0, p1) for p0, p1 in bars]


def test_separate_bars_boxes_right():
    img, truth = _scene()
    det = detect_chromosomes(img, background_radius=40)
    assert len(det) == 5
    res = match_boxes(truth, det.boxes)
    assert res.tp == 5 and res.ious.min() > 0.6  # boxes padded by a quarter width
    tight = detect_chromosomes(img, background_radius=40, box_pad_factor=0)
    assert match_boxes(truth, tight.boxes).ious.min() > 0.85
    # masks: one label per detection, covering the bar's centre line
    assert det.labels.max() == 5 and det.labels[80, 40] > 0
    assert det.areas.min() > 300 and np.all((det.scores > 0.3) & (det.scores <= 1))


def test_touching_bars_split_in_two():
    img = _canvas(200, 260)
    a, b = ((40, 100), (118, 100)), ((132, 100), (220, 60))  # tip to tip, at an angle
    _bar(img, *a)
    _bar(img, *b)
    img = _finish(img)
    grey_fg = img < (BG + FG) // 2
    assert cv2.connectedComponents(grey_fg.astype(np.uint8))[0] - 1 == 1  # they touch
    det = detect_chromosomes(img, background_radius=40)
    assert len(det) == 2
    res = match_boxes([_box_of(*a), _box_of(*b)], det.boxes)
    assert res.tp == 2
    off = detect_chromosomes(img, background_radius=40, split=False)
    assert len(off) == 1


def test_round_nucleus_removed():
    def nucleus(img):
        cv2.circle(img, (300, 220), 55, 110, -1)

    img, truth = _scene([nucleus])
    det = detect_chromosomes(img, background_radius=40)
    assert det.labels[220, 300] == 0
    res = match_boxes(truth, det.boxes)
    assert res.tp == 5 and res.fp == 0


def test_debris_removed():
    def debris(img):
        for x, y in ((250, 180), (180, 150), (350, 250), (20, 280)):
            cv2.circle(img, (x, y), 2, 40, -1)

    img, truth = _scene([debris])
    det = detect_chromosomes(img, background_radius=40)
    res = match_boxes(truth, det.boxes)
    assert (res.tp, res.fp) == (5, 0)
    assert det.labels[180, 250] == 0


def test_light_on_dark_and_empty_images():
    img, truth = _scene()
    det = detect_chromosomes(255 - img, background_radius=40)  # fluorescence-like
    assert match_boxes(truth, det.boxes).tp == 5
    empty = detect_chromosomes(_canvas())
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.labels.max() == 0


def test_box_iou_and_matching():
    t = [[0, 0, 10, 10], [10, 0, 20, 10]]
    d = [[5, 0, 15, 10], [0, 0, 10, 10], [30, 30, 40, 40]]
    iou = box_iou(t, d)
    assert iou.shape == (2, 3)
    assert iou[0, 1] == 1.0 and iou[1, 2] == 0.0
    assert iou[0, 0] == pytest.approx(1 / 3)
    res = match_boxes(t, d)
    assert (res.tp, res.fp, res.fn, res.count_error) == (1, 2, 1, 1)
    assert box_iou(np.zeros((0, 4)), d).shape == (0, 3)
    assert match_boxes([], d).fp == 3 and match_boxes(t, []).fn == 2
    with pytest.raises(ValueError, match="matching method"):
        match_boxes(t, d, method="best")


def test_hungarian_finds_more_matches_than_greedy():
    # d0 overlaps t0 best but also t1; greedy gives t0 to d0 and leaves d1 without a
    # partner, Hungarian pairs d0-t1 and d1-t0.
    t = [[0, 0, 10, 10], [2, 0, 12, 10]]
    d = [[1, 0, 11, 10], [-3, 0, 7, 10]]
    assert match_boxes(t, d, method="hungarian").tp == 2
    greedy = match_boxes(t, d, method="greedy", scores=[0.9, 0.1])
    assert greedy.tp == 1
    assert match_boxes(t, d, iou_threshold=0.99).tp == 0


def test_summarise_cells_count_error():
    cells = [
        match_boxes([[0, 0, 4, 4], [5, 5, 9, 9]], [[0, 0, 4, 4]]),  # one missed
        match_boxes([[0, 0, 4, 4]], [[0, 0, 4, 4], [9, 9, 12, 12], [20, 20, 24, 24]]),
    ]
    s = summarise_cells(cells)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 1)
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == pytest.approx(0.5)
    assert s["count_error_mean"] == pytest.approx(0.5)
    assert s["count_error_abs_mean"] == pytest.approx(1.5)
    assert s["count_error_abs_median"] == pytest.approx(1.5)
    assert s["exact_count_fraction"] == 0.0
    assert summarise_cells([])["recall"] is None


def test_resolve_params_and_config_check():
    p = resolve_params({"detector": {"saddle_ratio": 0.7}, "matching": "greedy"})
    assert p["detector"]["saddle_ratio"] == 0.7 and p["matching"] == "greedy"
    assert DEFAULT_PARAMS["matching"] == "hungarian"  # defaults untouched
    for bad in (
        {"detector": {"nope": 1}},
        {"matching": "best"},
        {"iou_threshold": 0},
        {"detector": {"method": "sauvola"}},
        {"extra": 1},
    ):
        with pytest.raises(ValueError):
            resolve_params(bad)
    config = {
        "datasets": {"d": {"kind": "voc", "path": "x"}},
        "detect": {"params": {"detector": {"nope": 1}}},
    }
    with pytest.raises(ConfigError, match="detect/params"):
        validate_config(config)


def test_overlay_colours():
    img, truth = _scene()
    det = detect_chromosomes(img, background_radius=40)
    missed = [[330, 200, 360, 230]]  # a true box with nothing in it
    out = overlay_detections(img, truth + missed, det.boxes, labels=det.labels, title="x")
    assert out.shape == (*img.shape, 3) and out.dtype == np.uint8
    assert tuple(out[215, 330]) == COLOURS["true_missed"]


def test_run_detect_evaluate_writes_outputs(tmp_path):
    img, truth = _scene()
    records = []
    for k, cell in enumerate(("c1", "c2")):
        path = tmp_path / f"{cell}.png"
        cv2.imwrite(str(path), img if k == 0 else img[:, ::-1])
        w = img.shape[1]
        for i, (x0, y0, x1, y1) in enumerate(truth):
            if k == 1:
                x0, x1 = w - x1, w - x0
            records.append(
                {
                    "dataset": "d",
                    "instance_id": f"{cell}/{i}",
                    "kind": "metaphase",
                    "source": str(path),
                    "cell_id": cell,
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                    "image_width": w,
                    "image_height": img.shape[0],
                    "label": "1",
                    "split": "train" if k == 0 else "test",
                }
            )
    manifest = tmp_path / "d.parquet"
    write_manifest(manifest_frame(records), manifest)
    outputs = {
        k: str(tmp_path / "out" / n)
        for k, n in (
            ("metrics", "metrics.json"),
            ("per_cell", "per_cell.csv"),
            ("overlay", "overlay.png"),
        )
    }
    params = {"detector": {"background_radius": 40}}
    run_detect_evaluate(
        dataset="d",
        manifest=manifest,
        params=params,
        overlay_cells=2,
        outputs=outputs,
        log=lambda _m: None,
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["images"] == 2 and metrics["all"]["recall"] == 1.0
    assert metrics["test"]["cells"] == 1 and metrics["val+test"]["cells"] == 1
    assert metrics["params"]["background_radius"] == 40
    per_cell = pd.read_csv(outputs["per_cell"])
    assert per_cell["tp"].tolist() == [5, 5] and (per_cell["count_error"] == 0).all()
    assert cv2.imread(outputs["overlay"]).shape[0] == 700
    run = evaluate_manifest(manifest_frame(records), params, cells=["c2"], keep=True)
    assert list(run.detections) == ["c2"] and metrics_by_split(run)["all"]["tp"] == 5
    # the classical detector has no operating threshold: no precision-recall curve
    assert "ap" not in metrics["all"] and pr_curves(run) == {}
    assert not (tmp_path / "out" / "pr.png").exists()
    # a union of two datasets (two manifests): equal cell ids stay two cells, and the
    # test split of each dataset is also measured on its own
    for cell in ("c1", "c2"):  # the same pictures, as files of another dataset
        (tmp_path / f"e_{cell}.png").write_bytes((tmp_path / f"{cell}.png").read_bytes())
    other = [
        {**r, "dataset": "e", "source": str(tmp_path / f"e_{r['cell_id']}.png")} for r in records
    ]
    # the second dataset's cell c2 has one more true box, which no detection finds
    other.append({**other[-1], "instance_id": "c2/extra", "x0": 1, "y0": 1, "x1": 9, "y1": 9})
    write_manifest(manifest_frame(other), tmp_path / "e.parquet")
    run_detect_evaluate(
        dataset="de",
        manifest=[manifest, tmp_path / "e.parquet"],
        params=params,
        overlay_cells=2,
        outputs={**outputs, "metrics": str(tmp_path / "out" / "union.json")},
        log=lambda _m: None,
    )
    union = json.loads((tmp_path / "out" / "union.json").read_text())
    assert union["images"] == 4 and union["test"]["cells"] == 2
    assert union["test:d"]["recall"] == 1.0 and union["test:e"]["recall"] == pytest.approx(5 / 6)
    assert union["test"]["recall"] == pytest.approx(10 / 11)


def _reference_ap(truth, dets, scores, thr=0.5):
    """VOC AP the slow way: for each rank k, precision/recall of the top-k detections
    (greedy by score), then the area under the monotone envelope."""
    flat = sorted(
        ((s, i, j) for i, ss in enumerate(scores) for j, s in enumerate(ss)),
        key=lambda t: -t[0],
    )
    used = [set() for _ in truth]
    tp, points = 0, []
    for k, (_s, i, j) in enumerate(flat, 1):
        best, arg = thr, None
        for q, t in enumerate(truth[i]):
            iou = float(box_iou([t], [dets[i][j]])[0, 0])
            if q not in used[i] and iou >= best:
                best, arg = iou, q
        if arg is not None:
            used[i].add(arg)
            tp += 1
        points.append((tp / sum(len(t) for t in truth), tp / k))
    ap, prev_r = 0.0, 0.0
    for r, _p in points:
        if r > prev_r:
            ap += (r - prev_r) * max(p2 for r2, p2 in points if r2 >= r)
            prev_r = r
    return ap


def test_average_precision_crafted():
    t = [[[0, 0, 10, 10], [20, 0, 30, 10]], [[0, 0, 10, 10]]]
    # perfect: every true box found, nothing else -> 1
    c = average_precision(t, t, [[0.9, 0.8], [0.7]])
    assert c.ap == 1.0 and c.recall[-1] == 1.0 and c.n_true == 3
    # a duplicate of a found box is a false positive, ranked above a true one
    d = [[[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10]], [[0, 0, 10, 10]]]
    c = average_precision(t, d, [[0.9, 0.8, 0.3], [0.5]])
    assert c.precision.round(3).tolist() == [1.0, 0.5, 0.667, 0.75]
    assert c.recall.round(3).tolist() == [0.333, 0.333, 0.667, 1.0]
    assert c.ap == pytest.approx(1 / 3 + 2 / 3 * 0.75)
    assert c.at(0.85) == (1.0, pytest.approx(1 / 3)) and c.at(0.0) == (0.75, 1.0)
    # nothing right -> 0; no detections -> 0; no true boxes -> NaN
    assert average_precision(t, [[[50, 50, 60, 60]], []], [[0.9], []]).ap == 0.0
    assert average_precision(t, [[], []], [[], []]).ap == 0.0
    assert np.isnan(average_precision([[]], [[[0, 0, 1, 1]]], [[0.5]]).ap)
    with pytest.raises(ValueError, match="image 0 has 1 boxes, 2 scores"):
        average_precision([[]], [[[0, 0, 1, 1]]], [[0.5, 0.4]])


def test_average_precision_matches_a_slow_reference():
    rng = np.random.default_rng(3)
    truth, dets, scores = [], [], []
    for _ in range(6):
        xy = rng.uniform(0, 200, (8, 2))
        t = np.hstack([xy, xy + rng.uniform(8, 30, (8, 2))])
        d = np.vstack([t[:6] + rng.normal(0, 3, (6, 4)), t[2:4] + rng.normal(0, 8, (2, 4))])
        d = np.vstack([d, np.hstack([xy[:2] + 5, xy[:2] + 20])])
        truth.append(t)
        dets.append(d)
        scores.append(rng.uniform(0, 1, len(d)))
    c = average_precision(truth, dets, scores)
    assert c.ap == pytest.approx(_reference_ap(truth, dets, scores), abs=1e-12)
    assert 0.1 < c.ap < c.recall[-1] < 1.0 and np.all(np.diff(c.scores) <= 0)


def test_score_threshold_keeps_everything_for_the_curve(tmp_path):
    img, truth = _scene()
    records = _voc_records(tmp_path, [(img, truth)], ["test"])
    boxes = np.array([*truth[:3], [300, 250, 320, 270], *truth[3:]], int)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])

    def fake(image):
        return Detections(boxes, np.zeros(image.shape[:2], np.int32), scores, np.ones(6, int))

    run = evaluate_manifest(manifest_frame(records), None, detector=fake, score_threshold=0.5)
    # matched at the operating point: 3 of 5 found, 1 false
    assert (run.matches["m0"].tp, run.matches["m0"].fp) == (3, 1)
    m = metrics_by_split(run)
    assert m["test"]["recall"] == 0.6 and m["test"]["recall_at_floor"] == 1.0
    # ranks: T T T F T T -> precision 1 up to recall 0.6, then 4/5 and 5/6
    assert m["test"]["ap"] == pytest.approx(0.6 + 0.2 * 5 / 6 + 0.2 * 5 / 6)
    assert pr_curves(run)["test"].at(0.5) == (0.75, 0.6)


def test_default_config_matches_defaults():
    import yaml

    from karyoflow.config import PROJECT_ROOT

    config = yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text())
    assert resolve_params(config["detect"]["params"]) == DEFAULT_PARAMS


# --------------------------------------------------------------------------- learned detector


def _voc_records(tmp_path, scenes, splits) -> list[dict]:
    records = []
    for k, ((img, truth), split) in enumerate(zip(scenes, splits, strict=True)):
        path = tmp_path / f"m{k}.png"
        cv2.imwrite(str(path), img)
        for i, (x0, y0, x1, y1) in enumerate(truth):
            records.append(
                {
                    "dataset": "d",
                    "instance_id": f"m{k}/{i}",
                    "kind": "metaphase",
                    "source": str(path),
                    "cell_id": f"m{k}",
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                    "image_width": img.shape[1],
                    "image_height": img.shape[0],
                    "label": "1",
                    "split": split,
                }
            )
    return records


def _random_scene(rng: np.random.Generator, n: int = 6) -> tuple[np.ndarray, list[list[int]]]:
    """``n`` bars of random length and angle, some touching or crossing."""
    img = _canvas(256, 256)
    bars = []
    for _ in range(n):
        c = rng.uniform(40, 216, 2)
        length = rng.uniform(25, 70)
        a = rng.uniform(0, np.pi)
        d = np.array([np.cos(a), np.sin(a)]) * length / 2
        p0, p1 = tuple(int(v) for v in c - d), tuple(int(v) for v in c + d)
        _bar(img, p0, p1, width=10)
        bars.append(_box_of(p0, p1, width=10))
    return _finish(img), bars


def test_centernet_encoding_round_trip():
    from karyoflow.tasks.detection.centernet import decode_boxes, encode_boxes

    boxes = np.array([[10, 10, 50, 30], [20, 14, 44, 60], [100, 80, 130, 150.0]])
    t = encode_boxes(boxes, (160, 160), stride=4)
    assert t.shape == (40, 40, 5) and (t[..., 0] == 1).sum() == 3
    found, scores = decode_boxes(t, stride=4, threshold=0.99)
    assert match_boxes(boxes, found).tp == 3
    assert np.allclose(np.sort(found, axis=0), np.sort(boxes, axis=0), atol=1e-6)
    assert np.all(scores == 1.0)
    # a box whose centre lies outside the map belongs to a neighbouring crop
    assert (encode_boxes([[150, 150, 200, 200]], (160, 160))[..., 0] == 1).sum() == 0
    # the Gaussian falls off around the centre, and nothing decodes from an empty map
    assert t[5, 7, 0] == 1 and 0 < t[6, 7, 0] < 1 and t[0, 39, 0] == 0
    assert len(decode_boxes(np.zeros((8, 8, 5)), threshold=0.1)[0]) == 0


def test_random_crop_moves_boxes_with_the_pixels():
    from karyoflow.tasks.detection.learned import random_crop

    img = _canvas(200, 240)
    _bar(img, (100, 70), (120, 120), width=12)
    truth = np.array([_box_of((100, 70), (120, 120), width=12)], float)
    seen_rot, checked = set(), 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        crop, boxes = random_crop(rng, img, truth, 160, contrast=0.0, brightness=0.0)
        again = random_crop(np.random.default_rng(seed), img, truth, 160, contrast=0, brightness=0)
        assert np.array_equal(crop, again[0]) and np.array_equal(boxes, again[1])
        dark = crop < (BG + FG) / 2
        if not len(boxes) or boxes.min() <= 0 or boxes.max() >= 160:
            continue  # bar cut by the crop edge (its box is clipped, not re-fitted)
        checked += 1
        ys, xs = np.nonzero(dark)
        seen_rot.add(bool(np.ptp(xs) > np.ptp(ys)))
        outline = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert box_iou([outline], boxes)[0, 0] > 0.8, (seed, outline, boxes)
    assert checked >= 10 and seen_rot == {True, False}  # rotations by 90 degrees happened


def test_test_time_views_are_brought_back_to_the_image_frame():
    """With all 8 views the detections of a flipped or transposed image are the flipped
    or transposed detections (an untrained network: its single views differ)."""
    import keras

    from karyoflow.models.detector import centernet
    from karyoflow.tasks.detection.centernet import decode_boxes
    from karyoflow.tasks.detection.learned import predict_map

    keras.utils.set_random_seed(3)
    model = centernet(filters=[4, 8, 8, 8], head=8)
    img = (np.random.default_rng(0).random((64, 96)) * 255).astype(np.uint8)
    h, w = img.shape
    one = predict_map(model, img)
    assert one.shape == (16, 24, 5)
    assert not np.allclose(predict_map(model, img[:, ::-1])[:, ::-1, 0], one[..., 0])
    ref = predict_map(model, img, tta=8)
    views = {
        "flip x": (
            img[:, ::-1],
            lambda b: np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1),
        ),
        "flip y": (img[::-1], lambda b: np.stack([b[:, 0], h - b[:, 3], b[:, 2], h - b[:, 1]], 1)),
        "transpose": (img.T, lambda b: b[:, [1, 0, 3, 2]]),
    }
    boxes, scores = decode_boxes(ref, threshold=0.0, max_boxes=1000)
    for name, (view, back) in views.items():
        got, got_scores = decode_boxes(
            predict_map(model, view, tta=8), threshold=0.0, max_boxes=1000
        )
        assert len(got) == len(boxes), name
        # same boxes (in the original frame) with the same scores; order by position
        a = np.lexsort(np.round(boxes, 6).T[::-1])
        b = np.lexsort(np.round(back(got), 6).T[::-1])
        assert np.allclose(back(got)[b], boxes[a], atol=1e-4), name
        assert np.allclose(got_scores[b], scores[a], atol=1e-6), name
    # fewer views: flips only are invariant under flips, not under transposition
    four = predict_map(model, img, tta=4)
    assert np.allclose(predict_map(model, img[::-1, ::-1], tta=4)[::-1, ::-1, 0], four[..., 0])
    with pytest.raises(ValueError, match="tta must be one of"):
        predict_map(model, img, tta=3)


def test_fuse_boxes_crafted():
    from karyoflow.tasks.detection.fusion import fuse_boxes

    a, b, c = [0.0, 0, 10, 20], [2.0, 0, 12, 20], [40.0, 40, 50, 50]
    # the same chromosome in two passes: one box, score-weighted, the mean score
    boxes, scores = fuse_boxes([[a], [b]], [[0.9], [0.3]])
    assert np.allclose(boxes, [[0.5, 0, 10.5, 20]]) and np.allclose(scores, [0.6])
    # found by one pass of three: a third of its score; the best box first
    boxes, scores = fuse_boxes([[a, c], [b], [a]], [[0.6, 0.9], [0.6], [0.6]])
    assert np.allclose(scores, [0.6, 0.3]) and np.allclose(boxes[1], c)
    # two crossing chromosomes of one pass are never merged, and the other pass's box
    # joins the cluster it overlaps most
    x1, x2, y = [0.0, 0, 20, 20], [2.0, 2, 22, 22], [1.0, 1, 21, 21]
    boxes, scores = fuse_boxes([[x1, x2], [y]], [[0.8, 0.8], [0.8]])
    assert len(boxes) == 2 and np.allclose(sorted(scores), [0.4, 0.8])
    # boxes that do not overlap enough stay apart
    boxes, _ = fuse_boxes([[a], [[6.0, 0, 16, 20]]], [[0.5], [0.5]], iou_threshold=0.55)
    assert len(boxes) == 2
    # empty passes
    boxes, scores = fuse_boxes([np.zeros((0, 4)), [a]], [[], [0.4]])
    assert boxes.tolist() == [a] and np.allclose(scores, [0.2])
    assert fuse_boxes([[]], [[]])[0].shape == (0, 4)
    with pytest.raises(ValueError, match="one score array per box array"):
        fuse_boxes([[a]], [])
    with pytest.raises(ValueError, match="pass 0 has 1 boxes and 2 scores"):
        fuse_boxes([[a]], [[0.1, 0.2]])


def test_multiscale_detection_fuses_the_passes():
    """Several test-time scales: the same scale twice gives the one-scale detections
    back; other scales only add fused boxes above the threshold, inside the image."""
    import keras

    from karyoflow.models.detector import centernet
    from karyoflow.tasks.detection.learned import detect_learned

    keras.utils.set_random_seed(5)
    model = centernet(filters=[4, 8, 8, 8], head=8)
    img = (np.random.default_rng(1).random((96, 128)) * 255).astype(np.uint8)
    one, one_s = detect_learned(model, img, scale=0.5, threshold=0.05)
    assert len(one) > 3
    same, same_s = detect_learned(model, img, scale=0.5, threshold=0.05, scales=(1.0, 1.0))
    order = np.lexsort(np.round(one, 6).T[::-1])
    back = np.lexsort(np.round(same, 6).T[::-1])
    assert np.allclose(same[back], one[order]) and np.allclose(same_s[back], one_s[order])
    multi, multi_s = detect_learned(
        model, img, scale=0.5, threshold=0.05, scales=(1.0, 1.5), fusion_iou=0.5
    )
    assert len(multi) and multi_s.min() >= 0.05 and np.all(np.diff(multi_s) <= 0)
    assert multi.min() >= 0 and np.all(multi[:, 2] <= 128) and np.all(multi[:, 3] <= 96)
    with pytest.raises(ValueError, match="scales must be positive"):
        detect_learned(model, img, scale=0.5, scales=(1.0, 0.0))


def test_learned_detector_params_checked(repo):
    from karyoflow.tasks.detection.task import resolve_detector_params

    assert resolve_detector_params({"thresholds": [0.5, 0.2]})["thresholds"] == [0.2, 0.5]
    assert resolve_detector_params({"tta": 8})["tta"] == 8
    assert resolve_detector_params({"scales": [1, 1.2]})["scales"] == [1.0, 1.2]
    bad_values = ({"crop": 50}, {"tresholds": [0.1]}, {"thresholds": [1.5]}, {"filters": [8]})
    bad_scales = ({"scales": []}, {"scales": [1.0, -1]}, {"scales": 1.0}, {"fusion_iou": 1})
    for bad in (*bad_values, *bad_scales, {"tta": 3}, {"tta": True}):
        with pytest.raises(ValueError):
            resolve_detector_params(bad)
    import yaml

    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["detect"]["learned"] = {"enabled": True, "params": {"scale": -1}}
    with pytest.raises(ConfigError, match=r"detect/learned/params: .*scale"):
        validate_config(config)
    config["detect"]["learned"] = {"enabled": False}
    config["predict"]["boxes"] = "learned"
    with pytest.raises(ConfigError, match=r"predict/boxes: 'learned' needs detect/learned"):
        validate_config(config)


@pytest.mark.slow
def test_learned_detector_learns_bars_and_is_evaluated(tmp_path):
    """Train on crafted spreads, then evaluate like the classical one; both tracked in
    MLflow, the evaluated detector registered."""
    import sqlite3

    from karyoflow.engine import tracking
    from karyoflow.engine.job import Job
    from karyoflow.engine.run import run_evaluate, run_train
    from karyoflow.tasks.detection.task import TASK, load_detector, resolve_detector_params

    def run_detector_training(job, outputs, log=print):
        return run_train(TASK, job, outputs, log=log)

    rng = np.random.default_rng(0)
    scenes = [_random_scene(rng) for _ in range(10)]
    records = _voc_records(tmp_path, scenes, ["train"] * 6 + ["val"] * 2 + ["test"] * 2)
    manifest = tmp_path / "d.parquet"
    write_manifest(manifest_frame(records), manifest)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "results"
    tracking.init_store(uri, "test", results)
    parent = tracking.start_parent_run(uri, "test", name="workflow")
    (results / "mlflow").mkdir(parents=True, exist_ok=True)
    (results / "mlflow" / "parent_run.json").write_text(json.dumps({"run_id": parent}))
    params = {
        "scale": 0.5,
        "crop": 64,
        "batch_size": 16,
        "steps_per_epoch": 20,
        "epochs": 20,
        "learning_rate": 0.01,
        "filters": [8, 16, 16, 24],
        "head": 16,
        "threads": 1,
        "thresholds": [0.05, 0.1, 0.2, 0.3],
        "scales": [1.0, 1.2],
    }
    job = Job(
        task="detection",
        rule="train_detector",
        dataset="d",
        model="centernet",
        params=resolve_detector_params(params),
        seed=1,
        inputs={"manifest": str(manifest)},
        wildcards={"dataset": "d"},
        tracking={
            "tracking_uri": uri,
            "experiment": "test",
            "log_models": True,
            "results": str(results),
        },
    )
    out = tmp_path / "learned"
    names = ("model.keras", "detector.json", "train.json", "history.json", "curves.png")
    outputs = {
        k: str(out / n)
        for k, n in zip(("model", "settings", "metrics", "history", "curves"), names, strict=True)
    }
    metrics = run_detector_training(job, outputs, log=lambda _m: None)
    assert metrics["epochs_run"] == 20 and metrics["train_boxes"] == 36
    history = json.loads(Path(outputs["history"]).read_text())
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    # 12 val bars, some crossing; nothing is found before ~10 epochs (starts at 0)
    assert history["val_recall"][0] == 0 and metrics["val_recall"] >= 0.6, metrics
    _model, settings = load_detector(outputs["model"])
    assert settings["threshold"] == metrics["threshold"] and settings["scale"] == 0.5
    # epochs compared on one view at one scale, the threshold chosen on val with the
    # default 4 views at both scales
    assert settings["tta"] == metrics["tta"] == 4
    assert settings["scales"] == metrics["scales"] == [1.0, 1.2]
    assert set(metrics["val_sweep_one_view"]) == set(metrics["val_sweep"])
    chosen = metrics["val_sweep"][str(metrics["threshold"])]
    assert chosen["recall"] == round(metrics["val_recall"], 4)
    assert chosen["fscore"] == max(r["fscore"] for r in metrics["val_sweep"].values())
    ev_out = {k: str(out / f"{k}.{e}") for k, e in (("metrics", "json"), ("per_cell", "csv"))}
    ev_out["overlay"] = str(out / "overlay.png")
    ev_out["pr"] = str(out / "pr.png")
    ev_job = job.with_(
        rule="detect_learned_evaluate",
        params={},
        inputs={"manifest": str(manifest), "model": outputs["model"]},
        settings={"overlay_cells": 2},
    )
    ev = run_evaluate(TASK, ev_job, ev_out, log=lambda _m: None)
    assert ev["detector"] == "learned" and ev["params"]["threshold"] == metrics["threshold"]
    assert ev["images"] == 10 and ev["test"]["cells"] == 2 and ev["all"]["recall"] >= 0.5
    # AP over detections down to ap_floor: at most the recall reached there
    for name in ("all", "train", "val", "test"):
        assert 0.0 < ev[name]["ap"] <= ev[name]["recall_at_floor"] <= 1.0, ev[name]
    assert ev["all"]["recall_at_floor"] >= ev["all"]["recall"] - 0.05
    assert cv2.imread(ev_out["pr"]).shape[2] == 3
    tags = dict(
        sqlite3.connect(tmp_path / "mlflow.db")
        .execute("select key, value from tags where run_uuid=?", (metrics["mlflow_run_id"],))
        .fetchall()
    )
    assert tags["mlflow.parentRunId"] == parent and tags["karyoflow.kind"] == "train_detector"
    # the evaluation is a tracked run too, and registers the detector by its test F1
    ev_tags = dict(
        sqlite3.connect(tmp_path / "mlflow.db")
        .execute("select key, value from tags where run_uuid=?", (ev["mlflow_run_id"],))
        .fetchall()
    )
    assert ev_tags["karyoflow.kind"] == "detect_learned_evaluate" and ev_tags["task"] == "detection"
    assert ev_tags["registered_model"] == "karyoflow-detection" and 0 < ev["test_f1"] <= 1
    # fine-tuning: one epoch from the trained weights at a tiny learning rate finds the
    # bars at once (from fresh weights, epoch 1 found none: above)
    tuned = {k: str(tmp_path / "tuned" / Path(v).name) for k, v in outputs.items()}
    params_ft = resolve_detector_params(params, {"epochs": 1, "learning_rate": 1e-6})
    job_ft = job.with_(params=params_ft, weights=outputs["model"])
    ft = run_detector_training(job_ft, tuned, log=lambda _m: None)
    history_ft = json.loads(Path(tuned["history"]).read_text())
    assert history_ft["val_recall"][0] >= 0.5, history_ft
    assert load_detector(tuned["model"])[1]["init_weights"] == outputs["model"]
    assert ft["epochs_run"] == 1
    # weights of another architecture: one error naming the file, nothing written
    wrong = resolve_detector_params(params, {"epochs": 1, "filters": [8, 16, 16, 32]})
    other = {k: str(tmp_path / "other" / Path(v).name) for k, v in outputs.items()}
    with pytest.raises(ValueError, match=r"model\.keras does not fit model 'centernet'"):
        run_detector_training(job.with_(params=wrong, weights=outputs["model"]), other)
    assert not (tmp_path / "other").exists()
    with pytest.raises(FileNotFoundError, match=r"weights file not found: .*nothing\.keras"):
        run_detector_training(job.with_(weights=str(tmp_path / "nothing.keras")), other)
