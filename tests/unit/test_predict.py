"""karyoflow predict and karyoflow serve on a synthetic metaphase (untrained model).

The model's weights are random: these tests check the pipeline, the outputs, the API
and the error handling, not accuracy (docs/results.md has the measured accuracy).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from karyoflow.predict import load_classifier, predict_cell, predict_paths
from karyoflow.predict.cell import read_boxes

ISCN = re.compile(r"^\d+,(X|Y)+(,[+-]\w+)*$")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from karyoflow.models.registry import build_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    build_model("karyonet_fast", (96, 48, 1), 24, seed=0, size_features=2).save(path)
    return load_classifier(path)


@pytest.fixture(scope="module")
def metaphase(tmp_path_factory):
    from karyoflow.synth.metaphase import compose_metaphase, karyotype_labels

    rng = np.random.default_rng(3)
    cell = compose_metaphase(karyotype_labels("XY"), rng, canvas=(700, 700), nucleus_prob=0.0)
    root = tmp_path_factory.mktemp("cell")
    image = root / "images" / "cell1.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), cell.image)
    boxes = np.array([o["bbox"] for o in cell.objects])
    xml = root / "voc" / "cell1.xml"
    xml.parent.mkdir()
    objs = "".join(
        f"<object><name>{o['label']}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for o, b in zip(cell.objects, boxes.tolist(), strict=True)
    )
    h, w = cell.image.shape
    xml.write_text(
        f"<annotation><size><width>{w}</width><height>{h}</height></size>{objs}</annotation>"
    )
    return {"image": image, "xml": xml, "boxes": boxes, "grey": cell.image}


def test_classifier_test_time_views(classifier, tmp_path):
    import dataclasses

    crops = (np.random.default_rng(0).random((5, 96, 48)) * 255).astype(np.uint8)
    sizes = np.full((5, 2), 0.5, np.float32)
    one = classifier.predict(crops, sizes)
    mirror = classifier.predict(crops[:, :, ::-1], sizes)
    both = dataclasses.replace(classifier, tta="hflip").predict(crops, sizes)
    assert np.abs(one - mirror).max() > 1e-6
    np.testing.assert_allclose(both, (one + mirror) / 2, rtol=0, atol=1e-7)
    assert dataclasses.replace(classifier, tta="flips").predict(crops[:0]).shape == (0, 24)
    with pytest.raises(ValueError, match="unknown test-time view mode 'all'"):
        load_classifier(classifier.source, tta="all")


def test_predict_cell_with_given_boxes(classifier, metaphase):
    pred = predict_cell(metaphase["grey"], classifier, boxes=metaphase["boxes"])
    assert pred.objects + len(pred.rejected) == len(metaphase["boxes"]) == 46
    assert ISCN.match(pred.iscn), pred.iscn
    assert pred.count == int(pred.iscn.split(",")[0])
    assert pred.karyogram.ndim == 3 and pred.overlay.shape[1] == metaphase["grey"].shape[1]
    assert pred.overlay.shape[0] > metaphase["grey"].shape[0]  # the call written above it
    table = pred.table()
    assert len(table) == pred.objects and set(table["label"]) <= set(
        [str(i) for i in range(1, 23)] + ["X", "Y"]
    )
    assert ((table.probability >= 0) & (table.probability <= 1)).all()
    assert set(pred.timings) == {"detect", "preprocess", "classify", "decode_and_render"}


def test_calibration_beside_the_model_is_applied(classifier, tmp_path):
    """``calibration.json`` beside ``model.keras`` rescales every prediction."""
    import dataclasses
    import shutil

    from karyoflow.evaluate.calibration import apply_temperature

    model = tmp_path / "model.keras"
    shutil.copy(classifier.source, model)
    (tmp_path / "calibration.json").write_text(
        json.dumps({"temperature": 3.0, "fitted_on": "val", "review_min_posterior": 0.9})
    )
    calibrated = load_classifier(model)
    assert calibrated.calibration.temperature == 3.0
    crops = (np.random.default_rng(1).random((4, 96, 48)) * 255).astype(np.uint8)
    sizes = np.full((4, 2), 0.5, np.float32)
    raw = dataclasses.replace(calibrated, calibration=None).predict(crops, sizes)
    np.testing.assert_allclose(
        calibrated.predict(crops, sizes), apply_temperature(raw, 3.0), rtol=0, atol=1e-6
    )
    (tmp_path / "calibration.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"calibration\.json: not a calibration"):
        load_classifier(model)


def test_predict_cell_call_and_review(classifier, metaphase):
    pred = predict_cell(metaphase["grey"], classifier, boxes=metaphase["boxes"])
    summary = pred.summary()
    assert 0.0 < summary["posterior"] <= 1.0 and summary["runner_up"]
    assert summary["review"] == bool(summary["review_reasons"]) == pred.review
    assert summary["objects"] == pred.objects
    # the untrained model is unsure of every chromosome: the call must be flagged
    assert pred.review and any("uncertain" in r for r in pred.reasons)
    flat = predict_cell(metaphase["grey"], classifier, boxes=metaphase["boxes"], decode=False)
    assert flat.summary()["posterior"] is None
    assign = predict_cell(
        metaphase["grey"], classifier, boxes=metaphase["boxes"], call={"mode": "assignment"}
    )
    assert assign.count == assign.objects == 46 - len(assign.rejected)


def test_predict_cell_detects_without_boxes(classifier, metaphase):
    pred = predict_cell(metaphase["grey"], classifier)
    assert 30 <= pred.objects <= 60  # the detector finds roughly the 46 chromosomes


def test_predict_cell_uses_a_given_detector(classifier, metaphase):
    """A learned detector (any ``image -> Detections``) replaces the classical one."""
    from karyoflow.tasks.detection.segment import Detections

    seen = []

    def detector(grey):
        seen.append(grey.shape)
        boxes = np.asarray(metaphase["boxes"][:10])
        return Detections(boxes, np.zeros(grey.shape, np.int32), np.ones(10), np.ones(10))

    pred = predict_cell(metaphase["grey"], classifier, detector=detector)
    assert seen == [metaphase["grey"].shape]
    assert pred.objects + len(pred.rejected) == 10


def test_read_boxes_strict(metaphase, tmp_path):
    boxes = read_boxes(metaphase["xml"])
    np.testing.assert_array_equal(boxes, metaphase["boxes"])
    bad = tmp_path / "evil.xml"
    bad.write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>'
    )
    with pytest.raises(ValueError, match=r"evil\.xml: unsafe XML"):
        read_boxes(bad)
    outside = tmp_path / "outside.xml"
    outside.write_text(
        "<annotation><size><width>10</width><height>10</height></size><object><name>1</name>"
        "<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>50</xmax><ymax>8</ymax></bndbox></object>"
        "</annotation>"
    )
    with pytest.raises(ValueError, match=r"outside\.xml: object 0: box .* outside image"):
        read_boxes(outside)


def test_predict_paths_writes_outputs_and_keeps_going(classifier, metaphase, tmp_path):
    folder = metaphase["image"].parent
    broken = tmp_path / "in" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(metaphase["image"].read_bytes()[:200])  # truncated PNG
    import struct
    import zlib

    bomb = bytearray(metaphase["image"].read_bytes())  # declares 50,000 x 50,000 pixels
    bomb[16:24] = struct.pack(">II", 50_000, 50_000)
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])))
    (tmp_path / "in" / "bomb.png").write_bytes(bytes(bomb))
    lines = []
    table = predict_paths(
        [folder, broken, tmp_path / "in" / "bomb.png"],
        classifier,
        tmp_path / "out",
        voc_dir=None,
        log=lines.append,
    )
    assert list(table["status"].str.startswith("error")) == [False, True, True]
    assert "broken.png" in table.loc[1, "status"] or "truncated" in table.loc[1, "status"]
    assert "image too large (50000x50000" in table.loc[2, "status"]
    out = tmp_path / "out" / "cell1"
    for name in ("karyogram.png", "overlay.png", "chromosomes.csv", "summary.json"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == table.loc[0, "count"] and ISCN.match(summary["iscn"])
    assert (tmp_path / "out" / "summary.csv").exists()
    first = next(line for line in lines if line.startswith("[predict 1/3]"))
    assert first.endswith(" s to go)")  # the time left, from the images done so far
    # with the VOC folder the boxes come from the annotations (all 46)
    table = predict_paths(
        [folder], classifier, tmp_path / "out2", voc_dir=metaphase["xml"].parent, log=print
    )
    assert table.loc[0, "status"] == "ok"


# --------------------------------------------------------------------------- web app


@pytest.fixture(scope="module")
def server(classifier):
    from karyoflow.serve import ServeLimits, make_server

    srv = make_server(classifier, port=0, limits=ServeLimits(max_bytes=3_000_000)).start()
    yield srv.url
    srv.stop()


def _post(url: str, data: bytes, ctype: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_health_and_openapi(server):
    with urllib.request.urlopen(server + "/api/health") as resp:
        assert json.loads(resp.read())["status"] == "ok"
    with urllib.request.urlopen(server + "/api/openapi.json") as resp:
        spec = json.loads(resp.read())
    assert spec["openapi"].startswith("3.") and "/api/predict" in spec["paths"]


def test_api_predict_metaphase_and_crop(server, metaphase):
    data = metaphase["image"].read_bytes()
    status, body = _post(server + "/api/predict", data, "image/png")
    assert status == 200, body
    assert ISCN.match(body["iscn"]) and body["objects"] == len(body["chromosomes"])
    assert body["count"] == int(body["iscn"].split(",")[0]) and "review" in body
    assert body["karyogram_png"].startswith("data:image/png;base64,")
    png = base64.b64decode(body["karyogram_png"].split(",", 1)[1])
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).ndim == 3
    # JSON body with boxes: all 46 given boxes are used
    payload = {"image": base64.b64encode(data).decode(), "boxes": metaphase["boxes"].tolist()}
    status, body = _post(server + "/api/predict", json.dumps(payload).encode(), "application/json")
    assert status == 200 and body["objects"] + len(body["rejected_boxes"]) == 46
    # one crop
    x0, y0, x1, y1 = metaphase["boxes"][0]
    _, crop = cv2.imencode(".png", metaphase["grey"][y0 - 4 : y1 + 4, x0 - 4 : x1 + 4])
    status, body = _post(server + "/api/predict?kind=crop", crop.tobytes(), "image/png")
    assert status == 200 and body["label"] and 0 <= body["probability"] <= 1


def test_api_rejects_bad_uploads(server, metaphase):
    status, body = _post(server + "/api/predict", b"hello", "text/plain")
    assert status == 415 and "unsupported content type" in body["error"]
    status, body = _post(server + "/api/predict", b"\x89PNG\r\n\x1a\nbroken", "image/png")
    assert status == 400 and "cannot decode" in body["error"]
    status, body = _post(server + "/api/predict", b"x" * 3_000_001, "image/png")
    assert status == 413 and "exceeds the limit" in body["error"]
    status, body = _post(server + "/api/predict", b'{"boxes": []}', "application/json")
    assert status == 400 and "image" in body["error"]


def test_upload_page_in_browser(server, metaphase, browser_page):
    page = browser_page
    page.goto(server + "/")
    page.set_input_files("#file", str(metaphase["image"]))
    page.click("#go")
    page.wait_for_function(
        "document.getElementById('karyogram').src.startsWith('data:image/png')", timeout=120_000
    )
    summary = page.inner_text("#summary")
    assert ISCN.match(summary.split()[0]), summary
    assert page.locator("#table tr").count() > 10
    width = page.evaluate("document.getElementById('karyogram').naturalWidth")
    assert width > 100  # the karyogram image decoded and is shown


def test_calibration_of_a_registered_version(tmp_path):
    """A ``models:/`` source (``champion``) takes the calibration from its version's tags."""
    from mlflow.tracking import MlflowClient

    from karyoflow.predict.classifier import find_calibration

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_registered_model("karyoflow-classification")
    v1 = client.create_model_version(
        "karyoflow-classification",
        source=str(tmp_path),
        tags={"calibration_temperature": "0.55", "review_min_posterior": "0.9"},
    )
    client.set_registered_model_alias("karyoflow-classification", "champion", v1.version)
    cal = find_calibration("models:/karyoflow-classification@champion", uri)
    assert cal.temperature == 0.55 and cal.review_min_posterior == 0.9
    assert find_calibration("models:/karyoflow-classification/1", uri).temperature == 0.55
    client.create_model_version("karyoflow-classification", source=str(tmp_path))
    assert find_calibration("models:/karyoflow-classification/2", uri).temperature == 1.0
    assert find_calibration("models:/unknown/1", uri).temperature == 1.0


def test_out_of_domain_cells_are_flagged(classifier, metaphase):
    """A cell whose mean confidence is below 0.8 x the median of the model's validation
    cells is flagged for review, naming the training data; within it, no flag."""
    import dataclasses

    from karyoflow.evaluate.calibration import Calibration

    boxes = metaphase["boxes"]
    plain = predict_cell(metaphase["grey"], classifier, boxes=boxes)
    mean = float(np.mean(plain.probability))  # the top probability of each kept box
    for median, flagged in ((1.0, True), (min(mean, 0.5) / 2, False)):
        cal = Calibration(trained_on="synthetic_voc", val_cells=30, cell_confidence_median=median)
        pred = predict_cell(
            metaphase["grey"], dataclasses.replace(classifier, calibration=cal), boxes=boxes
        )
        found = [r for r in pred.reasons if r.startswith("unlike the training data")]
        assert bool(found) == flagged, (median, pred.reasons)
        if flagged:
            assert (
                pred.review and "(synthetic_voc)" in found[0] and "30 validation cells" in found[0]
            )
