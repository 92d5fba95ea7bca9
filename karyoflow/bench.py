"""Benchmarks: ``python -m karyoflow.bench`` (``make bench``) prints one JSON line per case.

Each case runs in a fresh subprocess so its wall time and peak resident memory are its
own. Cases on ``../shared/data`` are skipped (with a JSON line saying so) when that
folder is absent. Record results with the machine in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from karyoflow.config import PROJECT_ROOT, load_config

__all__ = ["CASES", "main", "run_case"]

SHARED = PROJECT_ROOT.parent / "shared" / "data"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _bench_synth() -> dict[str, Any]:
    from karyoflow.synth.dataset import synthesize

    config = load_config(PROJECT_ROOT / "config" / "config.yaml")
    params = config["synthetic"]["params"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = synthesize(Path(tmp) / "synth", params, config["seed"])
        wall = time.perf_counter() - start
    return {
        "cells": summary["cells"],
        "objects": summary["objects"],
        "pairs": summary["pairs"],
        "wall_s": round(wall, 3),
        "cells_per_s": round(summary["cells"] / wall, 3),
    }


def _bench_call_karyotype() -> dict[str, Any]:
    """The karyotype call of one cell (94 hypotheses, one assignment each) on
    simulated probabilities of 46 objects, and the case call of 20 such cells."""
    import numpy as np

    from karyoflow.evaluate.cells import case_call
    from karyoflow.evaluate.hypotheses import call_karyotype, karyotype_hypotheses

    rng = np.random.default_rng(0)
    labels = np.array([i for i in range(22) for _ in range(2)] + [22, 23])
    logits = rng.normal(0, 1, (200, 46, 24))
    logits[:, np.arange(46), labels] += 4.0
    proba = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    table = karyotype_hypotheses()
    start = time.perf_counter()
    calls = [call_karyotype(p, hypotheses=table) for p in proba]
    wall = time.perf_counter() - start
    t0 = time.perf_counter()
    for k in range(10):
        case_call(calls[20 * k : 20 * (k + 1)])
    case_wall = (time.perf_counter() - t0) / 10
    return {
        "cells": len(calls),
        "hypotheses": len(table),
        "ms_per_cell": round(1000 * wall / len(calls), 2),
        "ms_per_case_of_20": round(1000 * case_wall, 2),
        "normal_calls": sum(c.iscn in ("46,XX", "46,XY") for c in calls),
    }


def _bench_ingest(example: str, dataset: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        from karyoflow.ingest import ingest_dataset

        config = load_config(PROJECT_ROOT / "config" / "examples" / example)
        entry = config["datasets"][dataset]
        if not (PROJECT_ROOT / entry["path"]).exists():
            return {"skipped": f"{entry['path']} not found"}
        start = time.perf_counter()
        out = ingest_dataset(
            dataset,
            entry,
            seed=config["seed"],
            split=config["split"],
            base_dir=PROJECT_ROOT,
            log=lambda _msg: None,
        )
        wall = time.perf_counter() - start
        n = len(out.manifest)
        return {
            "instances": n,
            "sources": int(out.manifest["source"].nunique()),
            "rejected": len(out.rejects),
            "wall_s": round(wall, 3),
            "instances_per_s": round(n / wall, 1),
        }

    return run


def _taichung_manifest(tmp: Path) -> tuple[dict[str, Any], Path] | None:
    from karyoflow.ingest import ingest_dataset
    from karyoflow.manifest import write_manifest, write_rejects

    config = load_config(PROJECT_ROOT / "config" / "examples" / "taichung_voc.yaml")
    entry = config["datasets"]["taichung"]
    if not (PROJECT_ROOT / entry["path"]).exists():
        return None
    out = ingest_dataset(
        "taichung",
        entry,
        seed=config["seed"],
        split=config["split"],
        base_dir=PROJECT_ROOT,
        log=lambda _m: None,
    )
    path = tmp / "results" / "manifest" / "taichung.parquet"
    write_rejects(out.rejects, path.with_name("taichung.rejected.csv"))
    write_manifest(out.manifest, path)
    return config, path


def _bench_preprocess_chain() -> dict[str, Any]:
    """The whole chain in one process on one core (OpenCV limited to 1 thread)."""
    import cv2

    cv2.setNumThreads(1)
    from karyoflow.manifest import read_manifest
    from karyoflow.preprocess.chain import preprocess_rows, resolve_params
    from karyoflow.preprocess.sharding import eligible_rows, select_shard

    with tempfile.TemporaryDirectory() as tmp:
        found = _taichung_manifest(Path(tmp))
        if found is None:
            return {"skipped": "../shared/data/taichung-voc-dev not found"}
        config, path = found
        params = resolve_params(config["preprocess"]["params"])
        rows = select_shard(eligible_rows(read_manifest(path)), 0, 1)
        start = time.perf_counter()
        data = preprocess_rows(rows, params, config["seed"], log=lambda _m: None)
        wall = time.perf_counter() - start
    n = len(rows)
    return {
        "crops": n,
        "rejected": len(data.rejects),
        "outputs_with_augmentation": len(data.instance_id),
        "wall_s": round(wall, 2),
        "crops_per_s_per_core": round(n / wall, 1),
    }


def _bench_preprocess_scaling() -> dict[str, Any]:
    """Snakemake preprocessing rules on Taichung with --cores 1 and --cores 2."""
    import shutil

    snakemake = str(Path(sys.executable).parent / "snakemake")
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        found = _taichung_manifest(Path(tmp) / "base")
        if found is None:
            return {"skipped": "../shared/data/taichung-voc-dev not found"}
        config, _ = found
        cfg = PROJECT_ROOT / "config" / "examples" / "taichung_voc.yaml"
        shared = str((PROJECT_ROOT / config["datasets"]["taichung"]["path"]).resolve())
        for cores in (1, 2):
            work = Path(tmp) / f"cores{cores}"
            shutil.copytree(Path(tmp) / "base", work)
            override = work / "config.yaml"
            import yaml

            text = cfg.read_text().replace("../shared/data/taichung-voc-dev", shared)
            settings = yaml.safe_load(text)
            # preprocessing only: no training, detection or prediction jobs
            settings.setdefault("train", {})["enabled"] = False
            settings.setdefault("detect", {})["evaluate"] = False
            settings.setdefault("predict", {})["enabled"] = False
            override.write_text(yaml.safe_dump(settings))
            # the manifest exists and is newer than the config: only preprocessing runs
            for done in (work / "results" / "manifest").iterdir():
                done.touch()
            cmd = [snakemake, "-s", str(PROJECT_ROOT / "Snakefile"), "--directory", str(work)]
            cmd += ["--configfile", str(override), "--cores", str(cores), "--quiet", "all"]
            cmd += ["--rerun-triggers", "mtime"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            walls[cores] = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip().splitlines()[-1])
    return {
        "wall_s_cores1": round(walls[1], 2),
        "wall_s_cores2": round(walls[2], 2),
        "speedup_2_vs_1": round(walls[1] / walls[2], 3),
    }


def _bench_detect_taichung() -> dict[str, Any]:
    """Classical detection on every Taichung metaphase: speed (detection alone) and recall."""
    from karyoflow.manifest import read_manifest
    from karyoflow.tasks.detection.pipeline import (
        evaluate_manifest,
        metrics_by_split,
        resolve_params,
    )

    with tempfile.TemporaryDirectory() as tmp:
        found = _taichung_manifest(Path(tmp))
        if found is None:
            return {"skipped": "../shared/data/taichung-voc-dev not found"}
        config, path = found
        params = resolve_params((config.get("detect") or {}).get("params"))
        start = time.perf_counter()
        run = evaluate_manifest(read_manifest(path), params)
        wall = time.perf_counter() - start
    m = metrics_by_split(run)
    ms, cpu = m["ms_per_image"], m["cpu_ms_per_image"]
    return {
        "metaphases": len(run.per_cell),
        "metaphases_per_s": round(1000.0 / ms["mean"], 2),
        "ms_per_metaphase": round(ms["mean"], 1),
        "ms_per_metaphase_median": round(ms["median"], 1),
        "ms_per_metaphase_max": round(ms["max"], 1),
        "cpu_ms_per_metaphase": round(cpu["mean"], 1),
        "wall_s_with_decoding": round(wall, 2),
        "recall": round(m["all"]["recall"], 4),
        "precision": round(m["all"]["precision"], 4),
        "count_error_abs_mean": round(m["all"]["count_error_abs_mean"], 2),
    }


def _sample_metaphases() -> tuple[dict[str, Any], list[str]] | None:
    """The Taichung example config and 13 of its metaphases (every 20th source), the
    sample of the per-metaphase speed cases; None without ../shared/data."""
    from karyoflow.manifest import read_manifest

    with tempfile.TemporaryDirectory() as tmp:
        found = _taichung_manifest(Path(tmp))
        if found is None:
            return None
        config, path = found
        return config, sorted(read_manifest(path)["source"].unique())[::20][:13]


def _bench_predict_metaphase() -> dict[str, Any]:
    """``karyoflow predict`` on Taichung metaphases: detection + preprocessing + classification.

    The classifier is ``karyonet_fast`` with size input and untrained weights (speed does
    not depend on them), with the default config's test-time views (``evaluate.tta``);
    TensorFlow is warmed up on the first image, then the next ones are timed, all cores.
    """
    import statistics

    from karyoflow.engine import devices
    from karyoflow.imageio import read_image
    from karyoflow.models.registry import build_model
    from karyoflow.predict import Classifier, predict_cell

    devices.configure(seed=0, use_gpu=False, threads=os.cpu_count() or 1)
    found = _sample_metaphases()
    if found is None:
        return {"skipped": "../shared/data/taichung-voc-dev not found"}
    config, sources = found
    model = build_model("karyonet_fast", (96, 48, 1), 24, seed=0, size_features=2)
    tta = config["evaluate"]["tta"]
    clf = Classifier(model, 96, 48, True, "untrained karyonet_fast", tta)
    pre = config["preprocess"]["params"]
    det = (config.get("detect") or {}).get("params")
    predict_cell(read_image(sources[0]), clf, preprocess=pre, detect=det)  # warm-up
    walls, parts, counts = [], {}, []
    for src in sources[1:]:
        image = read_image(src)
        start = time.perf_counter()
        pred = predict_cell(image, clf, preprocess=pre, detect=det)
        walls.append(time.perf_counter() - start)
        counts.append(pred.count)
        for k, v in pred.timings.items():
            parts.setdefault(k, []).append(v)
    return {
        "metaphases": len(walls),
        "classifier_tta": tta,
        "chromosomes_mean": round(statistics.mean(counts), 1),
        "s_per_metaphase_mean": round(statistics.mean(walls), 3),
        "s_per_metaphase_max": round(max(walls), 3),
        **{f"{k}_s_mean": round(statistics.mean(v), 3) for k, v in parts.items()},
    }


#: Test-time scales timed by the learned-detector case (relative to its ``scale``).
MULTISCALE = (1.0, 1.1, 1.2, 1.3)


def _bench_detect_learned() -> dict[str, Any]:
    """Learned detector (``centernet``, default size, untrained weights: speed does not
    depend on them) on Taichung metaphases at the default scale: detection alone, all
    cores, after a warm-up image; and its training speed on random crops."""
    import statistics

    import numpy as np

    from karyoflow.engine import devices
    from karyoflow.imageio import read_image
    from karyoflow.models.detector import centernet
    from karyoflow.tasks.detection.learned import detect_learned, training_batch
    from karyoflow.tasks.detection.task import DEFAULT_DETECTOR_TRAIN as P

    devices.configure(seed=0, use_gpu=False, threads=os.cpu_count() or 1)
    found = _sample_metaphases()
    if found is None:
        return {"skipped": "../shared/data/taichung-voc-dev not found"}
    sources = found[1]
    model = centernet(filters=P["filters"], head=P["head"])
    greys = [read_image(s, grey=True) for s in sources]
    detect_learned(model, greys[0], scale=P["scale"])  # warm-up
    walls: dict[int, list[float]] = {1: [], int(P["tta"]): []}
    for tta, times in walls.items():
        for grey in greys[1:]:
            start = time.perf_counter()
            detect_learned(model, grey, scale=P["scale"], tta=tta)
            times.append(time.perf_counter() - start)
    multi: list[float] = []  # the four scales of config/examples/taichung_detect_long.yaml
    for grey in greys[1:]:
        start = time.perf_counter()
        detect_learned(model, grey, scale=P["scale"], tta=int(P["tta"]), scales=MULTISCALE)
        multi.append(time.perf_counter() - start)
    from karyoflow.tasks.detection.centernet import centernet_loss

    model.compile(optimizer="adam", loss=centernet_loss())
    rng = np.random.default_rng(0)
    # random content: this measures speed only
    images = [(rng.random((400, 400)) * 255).astype(np.uint8) for _ in range(4)]
    boxes = [np.array([[100.0, 100.0, 140.0, 160.0]])] * 4
    bs, crop = int(P["batch_size"]), int(P["crop"])
    batches = [training_batch(rng, images, boxes, bs, crop) for _ in range(6)]
    model.train_on_batch(*batches[0])  # warm-up (graph tracing)
    start = time.perf_counter()
    for x, y in batches[1:]:
        model.train_on_batch(x, y)
    train_s = time.perf_counter() - start
    return {
        "metaphases": len(walls[1]),
        "parameters": int(model.count_params()),
        "scale": P["scale"],
        "tta": int(P["tta"]),  # the default; s_per_metaphase_* are with it
        "s_per_metaphase_mean": round(statistics.mean(walls[int(P["tta"])]), 3),
        "s_per_metaphase_max": round(max(walls[int(P["tta"])]), 3),
        "one_view_s_per_metaphase_mean": round(statistics.mean(walls[1]), 3),
        "multiscale": list(MULTISCALE),
        "multiscale_s_per_metaphase_mean": round(statistics.mean(multi), 3),
        "train_crop": crop,
        "train_crops_per_s": round(bs * (len(batches) - 1) / train_s, 1),
    }


def _bench_train(model_name: str, batch: int, steps: int) -> Callable[[], dict[str, Any]]:
    """Training throughput of one architecture at its default input size (CPU)."""

    def run() -> dict[str, Any]:
        from karyoflow.engine import devices

        devices.configure(seed=0, use_gpu=False, threads=os.cpu_count() or 1)
        from karyoflow.models.registry import build_model, default_input_size, measure_throughput

        h, w = default_input_size(model_name)
        model = build_model(model_name, (h, w, 1), 24, seed=0)
        ips = measure_throughput(model, (h, w, 1), batch=batch, steps=steps, threads=None)
        return {
            "model": model_name,
            "input": f"{h}x{w}",
            "parameters": int(model.count_params()),
            "batch": batch,
            "images_per_s": round(ips, 1),
        }

    return run


#: Images of the scale cases: the 1,876-metaphase Taichung set's 86,236 crops.
SCALE_IMAGES = 86_236


def _scale_shards(root: Path, n: int, shards: int = 8) -> list[Path]:
    """``shards`` files of :func:`~karyoflow.preprocess.h5io.write_shard` holding ``n``
    random 96x48 crops in cells of 46 (70 % train, 10 % val, 20 % test by cell)."""
    from karyoflow.preprocess.chain import ShardData
    from karyoflow.preprocess.h5io import write_shard

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, rows in enumerate(np.array_split(np.arange(n), shards)):
        m = len(rows)
        cells = rows // 46
        split = np.where(cells % 10 < 7, "train", np.where(cells % 10 < 8, "val", "test"))
        obj = lambda values: np.array(values, dtype=object)  # noqa: E731
        data = ShardData(
            images={"96x48": rng.integers(0, 256, (m, 96, 48), dtype=np.uint8)},
            centromere={"96x48": np.full((m, 2), np.nan, np.float32)},
            row=rows.astype(np.int64),
            instance_id=obj([f"i{r}" for r in rows]),
            cell_id=obj([f"c{c}" for c in cells]),
            dataset=obj(["scale"] * m),
            label_index=(rows % 24).astype(np.int16),
            split=obj(split.tolist()),
            augmented=np.zeros(m, np.uint8),
            straightened=np.zeros(m, np.uint8),
            flipped=np.zeros(m, np.uint8),
            estimated_centromere_y=np.full(m, np.nan, np.float32),
            length_px=rng.uniform(20, 90, m).astype(np.float32),
            area_px=rng.uniform(200, 1500, m).astype(np.float32),
        )
        paths.append(root / f"{k}.h5")
        write_shard(paths[-1], data)
        del data
    return paths


def _bench_merge_scale() -> dict[str, Any]:
    """Merging 8 shards of :data:`SCALE_IMAGES` crops (block by block; the peak is
    the process's, shard writing included: one shard of images at a time)."""
    from karyoflow.preprocess.h5io import merge_shards

    with tempfile.TemporaryDirectory() as tmp:
        paths = _scale_shards(Path(tmp), SCALE_IMAGES)
        written_mb = _peak_rss_mb()
        start = time.perf_counter()
        out = merge_shards(paths, Path(tmp) / "merged", sizes=["96x48"])
        wall = time.perf_counter() - start
        mb = sum(p.stat().st_size for p in out.values()) / 1e6
    return {
        "images": SCALE_IMAGES,
        "image_mb": round(SCALE_IMAGES * 96 * 48 / 1e6, 1),
        "merged_file_mb": round(mb, 1),
        "wall_s": round(wall, 2),
        "peak_rss_mb_before_merge": round(written_mb, 1),
    }


def _bench_train_scale(in_memory_mb: float, steps: int = 150) -> Callable[[], dict[str, Any]]:
    """Training steps of karyonet_fast (with size input) on the 70 % training split of
    :data:`SCALE_IMAGES` crops, its images in memory or read from disk batch by batch."""

    def run() -> dict[str, Any]:
        from karyoflow.engine import devices

        devices.configure(seed=0, use_gpu=False, threads=os.cpu_count() or 1)
        import keras

        from karyoflow.models.registry import build_model
        from karyoflow.preprocess.h5io import merge_shards
        from karyoflow.tasks.classification.data import load_split, make_dataset

        with tempfile.TemporaryDirectory() as tmp:
            paths = _scale_shards(Path(tmp) / "shards", SCALE_IMAGES)
            out = merge_shards(paths, Path(tmp) / "merged", sizes=["96x48"])
            for p in paths:
                p.unlink()
            base_mb = _peak_rss_mb()
            train = load_split(out[("96x48", "train")], in_memory_mb)
            ds = make_dataset(train, batch_size=64, seed=0, training=True, size_features=True)
            model = build_model("karyonet_fast", (96, 48, 1), 24, seed=0, size_features=2)
            model.compile(optimizer="adamw", loss=keras.losses.CategoricalCrossentropy())
            start = time.perf_counter()
            model.fit(ds.take(steps), epochs=1, verbose=0)
            wall = time.perf_counter() - start
            return {
                "train_images": len(train),
                "images_mb": round(train.images.nbytes / 1e6, 1),
                "on_disk": not isinstance(train.images, np.ndarray),
                "steps": steps,
                "images_per_s": round(steps * 64 / wall, 1),
                "peak_rss_mb_before_load": round(base_mb, 1),
            }

    return run


#: case name -> function returning the measured fields.
CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "synth_default": _bench_synth,
    "ingest_taichung_voc": _bench_ingest("taichung_voc.yaml", "taichung"),
    "ingest_karyograms612": _bench_ingest("karyograms_612.yaml", "karyograms612"),
    "ingest_pampaj7": _bench_ingest("pampaj7_tiff.yaml", "pampaj7"),
    "preprocess_taichung_chain": _bench_preprocess_chain,
    "preprocess_taichung_scaling": _bench_preprocess_scaling,
    "detect_taichung": _bench_detect_taichung,
    "detect_learned": _bench_detect_learned,
    "predict_metaphase": _bench_predict_metaphase,
    "call_karyotype": _bench_call_karyotype,
    "merge_scale": _bench_merge_scale,
    "train_scale_in_memory": _bench_train_scale(in_memory_mb=1e9),
    "train_scale_from_disk": _bench_train_scale(in_memory_mb=0),
    "train_karyonet_fast": _bench_train("karyonet_fast", 64, 20),
    "train_hu2019": _bench_train("hu2019", 16, 4),
    "train_resnet18": _bench_train("resnet18", 32, 4),
    "train_resnet50": _bench_train("resnet50", 16, 4),
    "train_vgg16": _bench_train("vgg16", 16, 4),
    "train_inception_v3": _bench_train("inception_v3", 16, 4),
}


def run_case(name: str) -> dict[str, Any]:
    """Run one case in this process and return its JSON record."""
    fields = CASES[name]()
    return {
        "bench": name,
        **fields,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases (default all), each in a subprocess; print JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m karyoflow.bench")
    parser.add_argument("cases", nargs="*", help=f"cases to run (default all): {list(CASES)}")
    parser.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {list(CASES)}")
    if args.inline:
        for name in args.cases:
            print(json.dumps(run_case(name)), flush=True)
        return 0
    status = 0
    for name in args.cases or list(CASES):
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "karyoflow.bench", "--inline", name],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
        )
        if proc.returncode != 0:
            status = 1
            tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(json.dumps({"bench": name, "error": tail}), flush=True)
        else:
            print(proc.stdout.strip().splitlines()[-1], flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
