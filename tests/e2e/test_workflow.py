"""End to end: the Snakemake workflow on tiny configs in a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from karyoflow.engine.tracking import TRACKING_ENV
from karyoflow.evaluate.end_to_end import detector_rates
from karyoflow.fileutil import file_sha256
from karyoflow.iscn import validate_iscn

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY_SYNTH = {"cells": 4, "pairs": 24, "centromere_crops": 2}
#: Centromere localisation on the tiny run (1 epoch of a narrow heat-map model).
TINY_CENTROMERE = {
    "datasets": ["voc", "centromeres"],
    "params": {"epochs": 1, "batch_size": 64},
    "model_settings": {"centromere_heatmap": {"options": {"width": 8}}},
    "figure_count": 8,
}
#: Overlapping pairs on the tiny run: a few pairs from the synthetic metaphases, 1 epoch.
TINY_OVERLAPS = {
    "datasets": ["voc"],
    "pairs": {"train": 16, "val": 8, "test": 8},
    "generate": {"size": 32, "downsample": 3.0},
    "params": {"epochs": 1, "batch_size": 8},
    "model_settings": {"unet": {"options": {"filters": 4, "depth": 2}}},
    "figure_samples": 4,
}


#: Classification on the tiny run: 1 epoch with the size input, then evaluate and
#: karyograms of the test cells (predict_cells).
TINY_TRAIN = {
    "datasets": ["voc"],
    "models": ["karyonet_fast"],
    "params": {"epochs": 1, "batch_size": 64, "size_features": True},
}

#: The learned detector on the tiny run: 1 short epoch of a narrow network.
TINY_DETECT = {
    "learned": {
        "enabled": True,
        "params": {
            "epochs": 1,
            "steps_per_epoch": 2,
            "batch_size": 4,
            "crop": 64,
            "filters": [4, 4, 8, 8],
            "head": 4,
        },
    }
}


def tiny_config(**extra):
    config = {
        "seed": 11,
        "synthetic": {"enabled": True, "name": "tiny", "params": dict(TINY_SYNTH)},
        "datasets": {
            "voc": {
                "kind": "voc",
                "path": "results/synthetic/tiny/voc",
                "options": {"truth_csv": ["karyotypes.csv"]},
            },
            "pairs": {"kind": "overlaps_h5", "path": "results/synthetic/tiny/overlaps/overlaps.h5"},
            "centromeres": {
                "kind": "centromere_csv",
                "path": "results/synthetic/tiny/centromeres/centromeres.csv",
                "split_with": "voc",
                "options": {"label_preset": "karyotype_gif"},
            },
        },
        "split": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
    }
    config.update(extra)
    return config


def run_workflow(repo: Path, workdir: Path, config: dict, *args: str):
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--cores", "2", "--configfile", str(cfg), *args]
    # the workflow's own store (results/mlflow), whatever this process has exported
    env = {k: v for k, v in os.environ.items() if k not in TRACKING_ENV}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def tiny_run(repo, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run1")
    config = tiny_config(
        centromere=TINY_CENTROMERE,
        overlaps=TINY_OVERLAPS,
        train=TINY_TRAIN,
        detect=TINY_DETECT,
        mlflow={"log_models": False},
    )
    proc = run_workflow(repo, workdir, config)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir, proc


def test_classification_prediction_and_report(repo, tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results"
    metrics = json.loads((res / "evaluate/voc/karyonet_fast/metrics.json").read_text())
    assert metrics["test_instances"] > 0 and 0.0 <= metrics["accuracy"] <= 1.0
    summary = pd.read_csv(res / "predict/voc/summary.csv")
    voc = pd.read_parquet(res / "manifest/voc.parquet")
    test_cells = set(voc.loc[voc["split"] == "test", "cell_id"])
    assert set(summary["cell_id"]) == test_cells
    for row in summary.itertuples():
        cell = res / "predict/voc/cells" / row.folder
        assert (cell / "karyogram.png").stat().st_size > 1000
        table = pd.read_csv(cell / "chromosomes.csv")
        assert len(table) == row.objects  # every object classified; the call counts apart
        assert row.count == int(str(row.iscn).split(",")[0])
        assert str(row.truth).startswith(("45", "46", "47"))
        summary_json = json.loads((cell / "summary.json").read_text())
        assert 0.0 < summary_json["posterior"] <= 1.0
        assert summary_json["review"] == bool(summary_json["review_reasons"])
        assert validate_iscn(summary_json["iscn"]) == []
    # calibration beside the model, applied in evaluate; calls end to end
    point = next((res / "train/voc/karyonet_fast").iterdir())
    calibration = json.loads((point / "calibration.json").read_text())
    assert calibration["fitted_on"] == "val" and calibration["temperature"] > 0
    # what the model was trained on, and how sure it was on its validation cells
    assert calibration["trained_on"] == "voc" and calibration["val_cells"] >= 1
    assert 0 < calibration["cell_confidence_p05"] <= calibration["cell_confidence_median"] <= 1
    assert metrics["calibration_temperature"] == calibration["temperature"]
    assert metrics["karyotype_cells_comparable"] == len(test_cells)
    assert 0.0 <= metrics["call_flagged_share"] <= 1.0
    cells = pd.read_csv(res / "evaluate/voc/karyonet_fast/cells.csv")
    assert {"call_iscn", "call_posterior", "call_review", "call_reasons"} <= set(cells.columns)
    calls = json.loads((res / "calls/voc/metrics.json").read_text())
    assert calls["detector"] == "learned"
    # the image-only pass calls with the detector's val rates (none from a detector that
    # finds nothing on val: the configured rates)
    rates = detector_rates(res / "detect/voc/learned/train_metrics.json")
    assert calls["detected_rates"] == (rates or "config")
    for source in ("annotated", "detected"):
        pooled = calls[source]["all"]
        assert pooled["cells"] == len(test_cells)
        assert 0.0 <= pooled["placed"] <= pooled["found"] <= 1.0
    assert calls["annotated"]["all"]["found"] == 1.0  # the annotated boxes are the truth
    per_cell = pd.read_csv(res / "calls/voc/cells.csv")
    assert len(per_cell) == 2 * len(test_cells)
    assert all(validate_iscn(x) == [] for x in per_cell["iscn"])
    cases = pd.read_csv(res / "calls/voc/cases.csv")
    assert all(validate_iscn(x) == [] for x in cases["iscn"])
    # one HTML report with the karyograms, QC sheets and training figures
    report = workdir / "report.html"
    proc = run_workflow(
        repo,
        workdir,
        tiny_config(
            centromere=TINY_CENTROMERE,
            overlaps=TINY_OVERLAPS,
            train=TINY_TRAIN,
            mlflow={"log_models": False},
        ),
        "--report",
        str(report),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.stat().st_size > 100_000


def test_outputs_and_roundtrip_counts(tiny_run):
    workdir, proc = tiny_run
    res = workdir / "results"
    synth = json.loads((res / "synthetic/tiny/summary.json").read_text())
    summary = json.loads((res / "manifest/summary.json").read_text())
    voc = summary["datasets"]["voc"]
    # synthesize -> ingest: identical counts, nothing rejected
    assert voc["instances"] == synth["objects"]
    assert voc["cells"] == synth["cells"]
    assert voc["rejected"] == 0
    assert voc["with_mask"] == voc["instances"] == voc["with_centromere"]
    per_class = {
        lab: sum(s["per_class"][lab] for s in voc["splits"].values())
        for lab in synth["objects_per_label"]
    }
    assert per_class == synth["objects_per_label"]
    assert summary["datasets"]["pairs"]["instances"] == synth["pairs"]
    assert summary["datasets"]["centromeres"]["instances"] == synth["centromere_crops"]
    assert summary["datasets"]["centromeres"]["with_centromere"] == synth["centromere_crops"]
    # the summary table is printed
    assert "total" in proc.stderr and "voc" in proc.stderr
    assert (res / "synthetic/tiny/preview.png").stat().st_size > 10_000


def test_truth_and_splits(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results/manifest"
    synth = json.loads((workdir / "results/synthetic/tiny/summary.json").read_text())
    voc = pd.read_parquet(res / "voc.parquet")
    truth = voc.groupby("cell_id")["cell_truth"].first().to_dict()
    expected = {Path(k).stem if "." in k else k: v for k, v in synth["karyotypes"].items()}
    assert truth == expected
    assert (voc.groupby("cell_id")["split"].nunique() == 1).all()
    cen = pd.read_parquet(res / "centromeres.parquet")
    voc_split = voc.groupby("cell_id")["split"].first()
    assert (cen["split"].to_numpy() == voc_split.loc[cen["cell_id"]].to_numpy()).all()
    merged = pd.read_parquet(res / "all.parquet")
    assert len(merged) == sum(
        len(pd.read_parquet(res / f"{n}.parquet")) for n in ("voc", "pairs", "centromeres")
    )


def test_same_seed_byte_identical(repo, tiny_run, tmp_path):
    first, _ = tiny_run
    proc = run_workflow(repo, tmp_path, tiny_config())
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rel in [
        "results/manifest/voc.parquet",
        "results/manifest/pairs.parquet",
        "results/manifest/centromeres.parquet",
        "results/manifest/all.parquet",
        "results/manifest/summary.json",
        "results/synthetic/tiny/overlaps/overlaps.h5",
        "results/synthetic/tiny/voc/karyotypes.csv",
        "results/preprocess/voc/96x48/train.h5",
        "results/preprocess/voc/96x48/val.h5",
        "results/preprocess/voc/96x48/test.h5",
        "results/preprocess/centromeres/96x48/train.h5",
        "results/preprocess/voc/qc.png",
    ]:
        a = (first / rel).read_bytes()
        b = (tmp_path / rel).read_bytes()
        # manifests hold absolute source paths; compare with the folder swapped
        b = b.replace(str(tmp_path).encode(), str(first).encode())
        if rel.endswith(".parquet"):
            da = pd.read_parquet(first / rel)
            db = pd.read_parquet(tmp_path / rel)
            db["source"] = db["source"].str.replace(str(tmp_path), str(first))
            db["aux_source"] = db["aux_source"].str.replace(str(tmp_path), str(first))
            pd.testing.assert_frame_equal(da, db)
        else:
            assert a == b, rel
    for img in sorted((first / "results/synthetic/tiny/voc/JPEGImages").iterdir()):
        other = tmp_path / "results/synthetic/tiny/voc/JPEGImages" / img.name
        assert file_sha256(img) == file_sha256(other)


def test_preprocess_outputs(tiny_run):
    import h5py

    workdir, _ = tiny_run
    res = workdir / "results"
    voc = pd.read_parquet(res / "manifest/voc.parquet")
    summary = json.loads((res / "preprocess/voc/summary.json").read_text())
    rejects = pd.read_csv(res / "preprocess/voc/rejected.csv")
    counts = summary["counts"]["96x48"]
    assert sum(c["instances"] for c in counts.values()) + len(rejects) == len(voc)
    assert counts["val"]["augmented"] == counts["test"]["augmented"] == 0
    assert counts["train"]["augmented"] == 2 * counts["train"]["instances"]
    with h5py.File(res / "preprocess/voc/96x48/train.h5") as h5:
        assert h5["images"].dtype == "uint8" and h5["images"].shape[1:] == (96, 48)
        n = h5["images"].shape[0]
        for key in ("labels", "cell_ids", "instance_ids", "centromere", "augmented"):
            assert h5[key].shape[0] == n
        assert "params" in h5.attrs and json.loads(h5.attrs["params"])["denoise"]["enabled"]
        cells = {c.decode() if isinstance(c, bytes) else c for c in h5["cell_ids"][()]}
        assert cells == set(voc.loc[voc["split"] == "train", "cell_id"])
        known = ~np.isnan(h5["centromere"][()][:, 1])
        assert known.mean() > 0.9  # synthetic instances carry their centromere
    for job in ("preprocess_shard/voc/0", "preprocess_merge/voc", "preprocess_qc/voc"):
        assert (res / "benchmarks" / f"{job}.tsv").exists(), job


def test_centromere_outputs_and_runs(tiny_run):
    import sqlite3

    workdir, _ = tiny_run
    res = workdir / "results/centromere/centromere_heatmap"
    metrics = json.loads((res / "test/metrics.json").read_text())
    assert metrics["n"] > 0 and metrics["datasets"] == ["voc", "centromeres"]
    for key in ("median_error_px", "p90_error_frac", "within_5pct", "ci_mae"):
        assert metrics[key] is not None, key
    assert (res / "test/predictions.png").stat().st_size > 5000
    assert len(pd.read_csv(res / "test/per_class.csv")) > 1
    parent = json.loads((workdir / "results/mlflow/parent_run.json").read_text())["run_id"]
    db = sqlite3.connect(workdir / "results/mlflow/mlflow.db")
    kinds = {}
    for run in (
        json.loads((res / "metrics.json").read_text())["mlflow_run_id"],
        metrics["mlflow_run_id"],
    ):
        tags = dict(db.execute("select key, value from tags where run_uuid=?", (run,)).fetchall())
        assert tags["mlflow.parentRunId"] == parent
        kinds[tags["karyoflow.kind"]] = tags["rule"]
    assert kinds == {
        "train_centromere": "train_centromere",
        "evaluate_centromere": "evaluate_centromere",
    }
    assert (workdir / "results/benchmarks/train_centromere/centromere_heatmap.tsv").exists()


def test_overlaps_outputs_and_runs(tiny_run):
    import sqlite3

    import h5py

    workdir, _ = tiny_run
    res = workdir / "results/overlaps/voc"
    voc = pd.read_parquet(workdir / "results/manifest/voc.parquet")
    split_of = voc.groupby("cell_id")["split"].first()
    for split, n in TINY_OVERLAPS["pairs"].items():
        with h5py.File(res / f"pairs/{split}.h5") as h5:
            pairs = h5["pairs"][()]
            cells = [c.decode() for c in h5["cell_ids"][()]]
        assert pairs.shape == (n, 32, 32, 2) and pairs[..., 1].max() == 3
        assert {split_of[c] for c in cells} == {split}  # pairs keep their cell's split
    metrics = json.loads((res / "unet/test/metrics.json").read_text())
    assert metrics["test_pairs"] == 8
    for key in ("overlap_iou", "chromosome_iou", "mean_iou", "pixel_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert (res / "unet/test/samples.png").stat().st_size > 5000
    parent = json.loads((workdir / "results/mlflow/parent_run.json").read_text())["run_id"]
    db = sqlite3.connect(workdir / "results/mlflow/mlflow.db")
    rules = set()
    for run in (
        json.loads((res / "unet/metrics.json").read_text())["mlflow_run_id"],
        metrics["mlflow_run_id"],
    ):
        tags = dict(db.execute("select key, value from tags where run_uuid=?", (run,)).fetchall())
        assert tags["mlflow.parentRunId"] == parent and tags["model"] == "unet"
        rules.add(tags["rule"])
    assert rules == {"train_segmentation", "evaluate_segmentation"}


def test_learned_detector_outputs_and_run(tiny_run):
    import sqlite3

    workdir, _ = tiny_run
    res = workdir / "results/detect/voc/learned"
    train = json.loads((res / "train_metrics.json").read_text())
    settings = json.loads((res / "detector.json").read_text())
    assert train["epochs_run"] == 1 and train["val_images"] > 0
    assert settings["threshold"] == train["threshold"] and settings["scale"] == 0.5
    metrics = json.loads((res / "metrics.json").read_text())
    assert metrics["detector"] == "learned" and metrics["images"] == TINY_SYNTH["cells"]
    assert 0.0 <= metrics["all"]["recall"] <= 1.0
    assert (res / "overlay.png").stat().st_size > 5000
    assert 0.0 <= metrics["all"]["ap"] <= metrics["all"]["recall_at_floor"] <= 1.0
    assert (res / "pr.png").stat().st_size > 5000
    db = sqlite3.connect(workdir / "results/mlflow/mlflow.db")
    run = train["mlflow_run_id"]
    tags = dict(db.execute("select key, value from tags where run_uuid=?", (run,)).fetchall())
    assert tags["rule"] == "train_detector" and tags["dataset"] == "voc"
    assert (workdir / "results/benchmarks/train_detector/voc.tsv").exists()


def test_strict_mode_one_line_error(repo, tmp_path):
    data = tmp_path / "voc"
    (data / "Annotations").mkdir(parents=True)
    (data / "JPEGImages").mkdir()
    (data / "Annotations" / "a.xml").write_text("<annotation><object><name>1</name>")
    config = {
        "strict": True,
        "synthetic": {"enabled": False},
        "datasets": {"broken": {"kind": "voc", "path": str(data)}},
    }
    proc = run_workflow(repo, tmp_path / "work", config)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("karyoflow: ")]
    assert lines, proc.stderr[-3000:]
    assert str(data / "Annotations" / "a.xml") in lines[0] or "a.xml" in lines[0]
    assert not (tmp_path / "work/results/manifest/broken.parquet").exists()


def test_quarantine_mode_rejects_table(repo, tmp_path):
    data = tmp_path / "voc"
    (data / "Annotations").mkdir(parents=True)
    (data / "JPEGImages").mkdir()
    import numpy as np
    from PIL import Image

    for stem in ("good", "bad"):
        Image.fromarray(np.full((60, 80), 220, np.uint8)).save(data / "JPEGImages" / f"{stem}.png")
    (data / "Annotations" / "good.xml").write_text(
        "<annotation><filename>good.png</filename><size><width>80</width><height>60</height>"
        "<depth>1</depth></size><object><name>chr5</name><bndbox><xmin>5</xmin><ymin>5</ymin>"
        "<xmax>20</xmax><ymax>40</ymax></bndbox></object><object><name>Q</name><bndbox>"
        "<xmin>5</xmin><ymin>5</ymin><xmax>20</xmax><ymax>40</ymax></bndbox></object>"
        "</annotation>"
    )
    (data / "Annotations" / "bad.xml").write_text("<annotation><object>")
    config = {
        "synthetic": {"enabled": False},
        "datasets": {"mixed": {"kind": "voc", "path": str(data)}},
    }
    proc = run_workflow(repo, tmp_path / "work", config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = pd.read_parquet(tmp_path / "work/results/manifest/mixed.parquet")
    assert manifest["label"].tolist() == ["5"]
    rejects = pd.read_csv(tmp_path / "work/results/manifest/mixed.rejected.csv")
    assert len(rejects) >= 2
    assert rejects["reason"].str.contains("label").any()
    assert rejects["reason"].str.contains("XML", case=False).any()
