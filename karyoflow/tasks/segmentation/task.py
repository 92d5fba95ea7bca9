"""The overlapping-pair segmentation task (rules ``make_overlaps``,
``train_segmentation``, ``evaluate_segmentation``).

``make_overlaps`` composes labelled pairs from the single chromosomes of a dataset;
training and evaluation run on the engine (:mod:`karyoflow.engine.run`) with the shared
optimizers and schedules, the swap-invariant losses of
:mod:`karyoflow.tasks.segmentation.losses` and, in the geometric modes, the A / B split
of :mod:`karyoflow.tasks.segmentation.instances`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from karyoflow.engine.fit import FIT_DEFAULTS, FitData, TrainResult, check_fit_params
from karyoflow.engine.job import Job
from karyoflow.engine.params import merge_params
from karyoflow.engine.task import Evaluation, Registered, Splits, Validation
from karyoflow.fileutil import atomic_path, write_json

__all__ = [
    "DEFAULT_SEG_TRAIN",
    "REGISTRY_TASK",
    "SEG_LOSSES",
    "SEG_MODES",
    "TASK",
    "check_overlaps_config",
    "load_pairs",
    "make_pair_dataset",
    "predict_pairs",
    "resolve_seg_params",
    "run_make_overlaps",
]

#: Registry task of the overlapping-pair segmenters: versions of ``karyoflow-segmentation``.
REGISTRY_TASK = "segmentation"

Log = Callable[[str], None]

#: Segmentation training options (``overlaps.params``; per model in ``model_settings``).
DEFAULT_SEG_TRAIN: dict[str, Any] = {
    **FIT_DEFAULTS,
    "epochs": 8,
    "batch_size": 32,
    "optimizer": "adam",  # adam | adamw | sgd | rmsprop
    "learning_rate": 0.002,
    "weight_decay": 0.0,  # adamw / sgd / rmsprop
    "schedule": "constant",  # constant | step | cosine | onecycle
    "loss": "ce_dice",  # weighted_ce | dice | ce_dice
    "class_weights": "sqrt",  # balanced | sqrt | none (pixel frequencies of the train split)
    "swap_invariant": True,  # loss against labels as they are or with 1/2 swapped
    "early_stopping_patience": 4,  # 0: off (the best epoch by monitor is kept anyway)
    "monitor": "val_loss",  # val_loss | val_matched_accuracy
    "augment": {"hflip": 0.5, "vflip": 0.5, "transpose": 0.5},  # online, per image
    # four_class: the net predicts A / B / overlap (swap-invariant loss);
    # three_class_geometric: the net predicts background / chromosome / overlap and A / B
    # are assigned by geometry (karyoflow.tasks.segmentation.instances.split_instances);
    # contact_geometric: as three_class_geometric plus a 4th class, the chromosome pixels
    # where A touches B, which the geometric split cuts along
    "mode": "four_class",
    "split": {},  # split_instances options (the geometric modes)
    # test-time views averaged at evaluation: 1 | 2 | 4 | 8 (flips, transposes); >1 only in
    # the geometric modes, whose classes do not depend on the orientation
    "tta": 1,
}

#: Segmentation modes (``overlaps.params.mode``) and the classes their network predicts.
SEG_MODES: dict[str, int] = {"four_class": 4, "three_class_geometric": 3, "contact_geometric": 4}

#: Loss names (``overlaps.params.loss``), see :mod:`karyoflow.tasks.segmentation.losses`.
SEG_LOSSES: tuple[str, ...] = ("weighted_ce", "dice", "ce_dice")
_SPLITS = ("train", "val", "test")
_DEFAULT_DEPTH = 3  # karyoflow.models.segmentation default (pooling levels)


def resolve_seg_params(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge option layers over :data:`DEFAULT_SEG_TRAIN`; unknown keys raise ValueError.

    Examples
    --------
    >>> resolve_seg_params({"epochs": 2}, {"loss": "dice"})["loss"]
    'dice'
    >>> resolve_seg_params({"epoch": 2})
    Traceback (most recent call last):
    ...
    ValueError: unknown segmentation training option 'epoch'
    """
    out = merge_params(
        DEFAULT_SEG_TRAIN, *layers, what="segmentation training option", nested=["augment"]
    )
    check_fit_params(out)
    if out["loss"] not in SEG_LOSSES:
        raise ValueError(f"loss must be one of {list(SEG_LOSSES)}, got {out['loss']!r}")
    if out["class_weights"] not in ("balanced", "sqrt", "none"):
        raise ValueError("class_weights must be balanced, sqrt or none")
    if out["monitor"] not in ("val_loss", "val_matched_accuracy"):
        raise ValueError("monitor must be val_loss or val_matched_accuracy")
    if out["mode"] not in SEG_MODES:
        raise ValueError(f"mode must be one of {list(SEG_MODES)}, got {out['mode']!r}")
    from karyoflow.engine.views import DIHEDRAL_VIEWS

    tta = out["tta"]
    if isinstance(tta, bool) or not isinstance(tta, int) or tta not in DIHEDRAL_VIEWS:
        raise ValueError(f"tta must be 1, 2, 4 or 8, got {out['tta']!r}")
    if out["tta"] > 1 and out["mode"] == "four_class":
        raise ValueError(
            "tta > 1 needs a geometric mode: in four_class the A / B order of a view is arbitrary"
        )
    if out["split"]:
        from karyoflow.tasks.segmentation.instances import DEFAULT_SPLIT

        unknown = sorted(set(out["split"]) - set(DEFAULT_SPLIT))
        if unknown:
            raise ValueError(f"unknown split option {unknown[0]!r}")
    return out


def check_overlaps_config(section: Mapping[str, Any], datasets: Mapping[str, Any]) -> None:
    """Checks of the ``overlaps`` config section a schema cannot express.

    Raises
    ------
    ValueError
        ``<key>: <reason>`` for an unknown dataset or kind, bad generator or training
        options, or a model that does not fit the pair size.

    Examples
    --------
    >>> check_overlaps_config({"datasets": ["x"]}, {})
    Traceback (most recent call last):
    ...
    ValueError: overlaps/datasets: no dataset 'x'
    """
    from karyoflow.tasks.segmentation.generate import resolve_generate_params

    if not section.get("enabled", True) or not section.get("datasets"):
        return
    for name in section["datasets"]:
        if name not in datasets:
            raise ValueError(f"overlaps/datasets: no dataset {name!r}")
        kind = datasets[name]["kind"]
        if kind not in ("voc", "crops", "centromere_csv", "overlaps_h5", "frames"):
            raise ValueError(f"overlaps/datasets: {name!r} ({kind}) has no single chromosomes")
    try:
        size = int(resolve_generate_params(section.get("generate"))["size"])
    except ValueError as exc:
        raise ValueError(f"overlaps/generate: {exc}") from None
    settings = section.get("model_settings") or {}
    for model in section.get("models") or ["unet"]:
        entry = settings.get(model) or {}
        try:
            resolve_seg_params(section.get("params"), entry.get("params"))
        except ValueError as exc:
            raise ValueError(f"overlaps/params ({model}): {exc}") from None
        # (option names are checked when the model is built: importing Keras here
        # would slow down every Snakemake start)
        depth = int((entry.get("options") or {}).get("depth", _DEFAULT_DEPTH))
        if size % 2**depth:
            raise ValueError(
                f"overlaps/generate/size: {size} is not a multiple of {2**depth} "
                f"({model} depth {depth})"
            )


# --------------------------------------------------------------------------- make_overlaps


def run_make_overlaps(
    *,
    dataset: str,
    kind: str,
    manifest: str | Path,
    counts: Mapping[str, int],
    params: Mapping[str, Any],
    seed: int,
    outputs: Mapping[str, str | Path],
    log: Log = print,
) -> dict[str, Any]:
    """Write ``train/val/test`` pair files, ``summary`` JSON and a ``preview`` PNG.

    Single-chromosome datasets: ``counts[split]`` pairs composed per split
    (:func:`~karyoflow.tasks.segmentation.generate.generate_pairs`). ``overlaps_h5`` datasets:
    their pairs, by the manifest's split (``counts`` ignored). ``frames`` datasets: the
    chromosomes are first cut out of each frame and split
    (:func:`~karyoflow.tasks.segmentation.frames.frame_sources`); every detected object, kept or
    rejected with its reason, is listed in the summary (``frame_objects``).
    """
    from karyoflow.evaluate.segmentation import plot_segmentation_samples
    from karyoflow.manifest import read_manifest
    from karyoflow.tasks.segmentation.generate import (
        generate_pairs,
        resolve_generate_params,
        select_pairs,
        write_pairs_h5,
    )

    p = resolve_generate_params(params)
    df = read_manifest(manifest)
    summary: dict[str, Any] = {"dataset": dataset, "kind": kind, "params": p, "splits": {}}
    precut = None
    if kind == "frames":
        df, precut, summary["frame_objects"] = _frame_sources(df, p, seed, log)
    previews = None
    for split in _SPLITS:
        rows = df[df["split"] == split]
        start = time.perf_counter()
        if kind == "overlaps_h5":
            frames = rows["frame"].astype(int).tolist()
            sources = sorted(set(rows["source"].astype(str)))
            if len(sources) > 1:
                raise ValueError(f"{manifest}: pairs from several files {sources}")
            if not frames:
                result = {
                    "pairs": np.zeros((0, p["size"], p["size"], 2), np.uint8),
                    "cell_ids": [],
                    "instance_ids": [],
                    "skipped": {},
                }
            else:
                result = select_pairs(sources[0], frames, rows["cell_id"].tolist(), p["size"])
        else:
            n = int(counts.get(split, 0))
            if n and rows.empty:
                raise ValueError(f"{manifest}: no {split} rows to make {n} {split} pairs from")
            try:
                result = generate_pairs(rows, n, p, seed, key=f"{dataset}/{split}", precut=precut)
            except ValueError as exc:
                raise ValueError(f"{manifest}: {split}: {exc}") from None
        write_pairs_h5(
            outputs[split],
            result,
            {"seed": int(seed), "dataset": dataset, "split": split, "params": p},
        )
        labels = result["pairs"][..., 1]
        frac = np.bincount(labels.reshape(-1), minlength=4)[:4] / max(labels.size, 1)
        summary["splits"][split] = {
            "pairs": len(result["pairs"]),
            "cells": len(set(result["cell_ids"])),
            "label_fractions": [round(float(v), 5) for v in frac],
            "skipped_rows": len(result["skipped"]),
        }
        if result["skipped"]:
            summary["splits"][split]["skipped_examples"] = dict(list(result["skipped"].items())[:5])
        # (the time goes to the log, not the summary: the dataset folder stays byte-identical)
        seconds = time.perf_counter() - start
        log(f"[make_overlaps] {dataset} {split}: {summary['splits'][split]} ({seconds:.2f}s)")
        if previews is None or (not len(previews) and len(result["pairs"])):
            previews = result["pairs"][:8]
    previews = previews if previews is not None else np.zeros((0, 1, 1, 2), np.uint8)
    plot_segmentation_samples(
        previews[..., 0], previews[..., 1], None, outputs["preview"], title=f"{dataset}: pairs"
    )
    write_json(outputs["summary"], summary)
    return summary


def _frame_sources(
    df: Any, p: Mapping[str, Any], seed: int, log: Log
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """The chromosomes of a frames dataset
    (:func:`karyoflow.tasks.segmentation.frames.frame_sources`)."""
    from collections import Counter

    from karyoflow.tasks.segmentation.frames import frame_sources

    frames = df[df["kind"].astype(str) == "frame"]
    if frames.empty:
        raise ValueError("no frame rows in the manifest")
    rows, precut, objects = frame_sources(
        frames, p["frames"], seed, min_area=int(p["min_area"]), polarity=p["polarity"]
    )
    rejected = Counter(o["reason"].split(" ")[0] for o in objects if "reason" in o)
    log(
        f"[make_overlaps] {len(frames)} frame(s): {len(objects)} objects detected, "
        f"{len(rows)} kept as chromosomes "
        f"({dict(Counter(rows['split']))} by {p['frames']['split_by']}), "
        f"{sum(rejected.values())} rejected {dict(rejected)}"
    )
    return rows, precut, objects


# --------------------------------------------------------------------------- data


def load_pairs(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(grey (N, H, W) uint8, labels (N, H, W) uint8, cell ids)`` of a pairs file.

    Raises
    ------
    ValueError
        Not a readable pairs file, or label values outside 0-3.
    """
    import h5py

    from karyoflow.readers.overlaps import find_pairs_key

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with h5:
        data = np.asarray(h5[find_pairs_key(h5)])
        cells = (
            [c.decode() if isinstance(c, bytes) else str(c) for c in h5["cell_ids"][()]]
            if "cell_ids" in h5
            else [f"pair{i}" for i in range(len(data))]
        )
    if data.size and int(data[..., 1].max()) > 3:
        raise ValueError(f"{path}: label values outside 0-3")
    return data[..., 0], data[..., 1], cells


def make_pair_dataset(
    grey: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    training: bool,
    augment: Mapping[str, float] | None = None,
):
    """``tf.data`` of ``(float32 (B, H, W, 1), int32 (B, H, W))`` batches.

    Training: seeded shuffle (deterministically reshuffled every epoch) and per-image
    random horizontal/vertical flips and transposition (square images), drawn from one
    seeded ``tf.random.Generator``; label values are unaffected by these.
    """
    import tensorflow as tf

    x = grey.astype(np.float32)[..., None]
    y = labels.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    aug = dict(augment or {}) if training else {}
    if any(float(v) > 0 for v in aug.values()):
        gen = tf.random.Generator.from_seed(seed)
        square = x.shape[1] == x.shape[2]

        def flip(xb, yb):
            n = tf.shape(xb)[0]
            for name, axis in (("hflip", 2), ("vflip", 1), ("transpose", None)):
                prob = float(aug.get(name, 0.0))
                if prob <= 0 or (axis is None and not square):
                    continue
                pick = gen.uniform([n]) < prob
                if axis is None:
                    xt, yt = tf.transpose(xb, [0, 2, 1, 3]), tf.transpose(yb, [0, 2, 1])
                else:
                    xt, yt = tf.reverse(xb, [axis]), tf.reverse(yb, [axis])
                xb = tf.where(pick[:, None, None, None], xt, xb)
                yb = tf.where(pick[:, None, None], yt, yb)
            return xb, yb

        ds = ds.map(flip, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(2)


def predict_pairs(
    model, grey: np.ndarray, batch_size: int = 64, params: Mapping[str, Any] | None = None
) -> np.ndarray:
    """4-class labels ``(N, H, W)`` uint8: the argmax, or in a geometric mode
    (``params["mode"]``) the argmax split into A / B by geometry. With ``params["tta"]``
    > 1 the class probabilities are averaged over that many flipped / transposed views
    (:data:`karyoflow.engine.views.DIHEDRAL_VIEWS`) before the argmax."""
    from karyoflow.engine.views import DIHEDRAL_VIEWS, from_view, to_view

    views = DIHEDRAL_VIEWS[int((params or {}).get("tta", 1))]
    out = np.zeros(grey.shape, np.uint8)
    for start in range(0, len(grey), batch_size):
        x = grey[start : start + batch_size].astype(np.float32)[..., None]
        proba = 0.0
        for view in views:
            seen = np.ascontiguousarray(to_view(x, view, axes=(1, 2)))
            proba = proba + from_view(np.asarray(model.predict_on_batch(seen)), view, axes=(1, 2))
        out[start : start + batch_size] = np.argmax(proba, axis=-1)
    if (params or {}).get("mode", "four_class") != "four_class":
        from karyoflow.tasks.segmentation.instances import split_instances_batch

        out = split_instances_batch(out, grey, **dict((params or {}).get("split") or {}))
    return out


# --------------------------------------------------------------------------- the task


class Segmentation:
    """Overlapping-pair segmentation (:class:`karyoflow.engine.task.Task`).

    Four classes (background, chromosome A, B, overlap) with a swap-invariant loss, or
    a geometric mode whose A / B split is drawn from the shapes; the validation and
    test reports are matched IoUs per class.
    """

    name, registry, params_key, unit = "overlap_segmentation", REGISTRY_TASK, "train", "pairs"
    resolve_params = staticmethod(resolve_seg_params)
    run_names = MappingProxyType(
        {
            "train": "{dataset}/{model}/segmentation",
            "evaluate": "{dataset}/{model}/evaluate_segmentation",
        }
    )

    def load(self, job: Job, params: Mapping[str, Any], log: Log) -> Splits:
        from karyoflow.tasks.segmentation.losses import class_pixel_weights

        x_tr, y_tr, _ = load_pairs(job.file("train"))
        x_va, y_va, _ = load_pairs(job.file("val"))
        if len(x_tr) == 0:
            raise ValueError(f"{job.file('train')}: no training pairs")
        target = _training_target(params["mode"])
        y_fit, y_fit_va = target(y_tr), target(y_va)
        weights = class_pixel_weights(y_fit, SEG_MODES[params["mode"]], params["class_weights"])
        log(f"{len(x_tr)} training pairs, {len(x_va)} validation pairs ({params['mode']})")
        return Splits(
            {"x": x_tr, "y": y_fit, "weights": weights},
            {"x": x_va, "y": y_fit_va, "labels": y_va},
            counts={"train_pairs": len(x_tr), "val_pairs": len(x_va)},
            data_files=[job.file("train"), job.file("val")],
            logged={"class_pixel_weights": [round(w, 4) for w in weights]},
            tags={"size": f"{x_tr.shape[1]}x{x_tr.shape[2]}"},
        )

    def build(self, job: Job, splits: Splits, params: Mapping[str, Any]):
        from karyoflow.models.registry import build_model

        x = splits.train["x"]
        return build_model(
            job.model,
            (int(x.shape[1]), int(x.shape[2]), 1),
            SEG_MODES[params["mode"]],
            options=dict(job.options),
            weights=job.weights,
            seed=job.seed,
        )

    def fit_data(self, model, splits: Splits, params: Mapping[str, Any], seed: int) -> FitData:
        batch = int(params["batch_size"])
        tr, va = splits.train, splits.val
        train_ds = make_pair_dataset(
            tr["x"], tr["y"], batch_size=batch, seed=seed, training=True, augment=params["augment"]
        )
        val_ds = (
            make_pair_dataset(va["x"], va["y"], batch_size=128, seed=seed, training=False)
            if len(va["x"])
            else None
        )
        return FitData(train_ds, -(-len(tr["x"]) // batch), len(tr["x"]), val=val_ds)

    def compile_args(self, model, splits: Splits, params: Mapping[str, Any]) -> dict:
        from karyoflow.tasks.segmentation.losses import (
            SwapInvariantLoss,
            matched_accuracy,
            pixel_accuracy,
        )

        geometric = params["mode"] != "four_class"
        # the geometric modes' classes (background, chromosome, overlap, contact) have
        # no arbitrary order: no swapping, plain pixel accuracy
        loss = SwapInvariantLoss(
            params["loss"],
            splits.train["weights"],
            num_classes=SEG_MODES[params["mode"]],
            swap=bool(params["swap_invariant"]) and not geometric,
        )
        return {"loss": loss, "metrics": [pixel_accuracy if geometric else matched_accuracy]}

    def monitor(self, splits: Splits, params: Mapping[str, Any]) -> tuple[str, str]:
        monitor = params["monitor"]
        if not len(splits.val["x"]):
            monitor = monitor.replace("val_", "")
        if params["mode"] != "four_class":
            monitor = monitor.replace("matched_accuracy", "pixel_accuracy")
        return monitor, "min" if monitor.endswith("loss") else "max"

    def validate(
        self, model, splits, params, result: TrainResult, outputs: Mapping[str, Any], log: Log
    ) -> Validation:
        from karyoflow.evaluate.segmentation import segmentation_report

        va = splits.val
        report = (
            segmentation_report(va["labels"], predict_pairs(model, va["x"], params=params))
            if len(va["x"])
            else {}
        )
        nan = float("nan")
        metrics = {
            "val_overlap_iou": report.get("overlap_iou", nan),
            "val_chromosome_iou": report.get("chromosome_iou", nan),
            "val_mean_iou": report.get("mean_iou", nan),
            "val_pixel_accuracy": report.get("pixel_accuracy", nan),
            "size": int(splits.train["x"].shape[1]),
            "mode": params["mode"],
        }
        return Validation(
            metrics,
            summary=f"val overlap IoU {metrics['val_overlap_iou']:.4f}, chromosome IoU "
            f"{metrics['val_chromosome_iou']:.4f}",
        )

    def evaluate(self, job: Job, outputs: Mapping[str, Any], log: Log) -> Evaluation:
        """Test-split metrics (matched IoU per class, mean IoU, pixel accuracy);
        ``outputs``: per_class (CSV), samples (PNG)."""
        import keras
        import pandas as pd

        from karyoflow.evaluate.segmentation import (
            CLASS_NAMES,
            match_ab,
            plot_segmentation_samples,
            segmentation_report,
        )

        params = resolve_seg_params(job.params)
        model_file = job.file("model")
        model = keras.models.load_model(model_file, compile=False)
        classes = int(model.output_shape[-1])
        if classes != SEG_MODES[params["mode"]]:
            raise ValueError(f"{model_file}: a {classes}-class model, but mode is {params['mode']}")
        grey, truth, cells = load_pairs(job.file("test"))
        start = time.perf_counter()
        pred = predict_pairs(model, grey, params=params)
        seconds = time.perf_counter() - start
        report = segmentation_report(truth, pred)
        metrics = {
            "dataset": job.dataset,
            "model": job.model,
            "mode": params["mode"],
            "tta": int(params["tta"]),
            "test_pairs": len(grey),
            "test_cells": len(set(cells)),
            "overlap_iou": report["overlap_iou"],
            "chromosome_iou": report["chromosome_iou"],
            "mean_iou": report["mean_iou"],
            "pixel_accuracy": report["pixel_accuracy"],
            "iou": report["iou"],
            "unmatched_mean_iou": report["unmatched_mean_iou"],
            "swapped": report["swapped"],
            "predict_seconds": round(seconds, 3),
        }
        confusion = np.asarray(report["confusion_matrix"])
        with atomic_path(outputs["per_class"]) as tmp:
            pd.DataFrame(
                {
                    "class": list(CLASS_NAMES),
                    "label": range(4),
                    "iou": [report["iou"][c] for c in CLASS_NAMES],
                    "truth_pixels": confusion.sum(1),
                    "predicted_pixels": confusion.sum(0),
                }
            ).to_csv(tmp, index=False, lineterminator="\n")
        k = min(int(job.settings.get("samples", 8)), len(grey))
        pick = np.linspace(0, len(grey) - 1, k).round().astype(int) if k else np.zeros(0, int)
        matched, _ = match_ab(truth[pick], pred[pick]) if k else (pred[:0], None)
        per_image = [
            segmentation_report(truth[i][None], matched[j][None])["mean_iou"]
            for j, i in enumerate(pick)
        ]
        plot_segmentation_samples(
            grey[pick],
            truth[pick],
            matched,
            outputs["samples"],
            title=(
                f"{job.dataset} / {job.model}: overlap IoU {report['overlap_iou']:.3f}, "
                f"chromosome IoU {report['chromosome_iou']:.3f}, "
                f"mean IoU {report['mean_iou']:.3f}"
            ),
            per_image_iou=per_image,
        )
        logged = {
            "test_overlap_iou": report["overlap_iou"],
            "test_chromosome_iou": report["chromosome_iou"],
            "test_mean_iou": report["mean_iou"],
            "test_pixel_accuracy": report["pixel_accuracy"],
            **{f"test_iou_{c}": v for c, v in report["iou"].items()},
        }
        return Evaluation(
            metrics,
            logged=logged,
            data_files=[job.file("test")],
            registered=Registered(
                model_file,
                model,
                "test_mean_iou",
                report["mean_iou"],
                greater_is_better=True,
                tags={"dataset": job.dataset, "model": job.model, "mode": params["mode"]},
            ),
            tags={"size": f"{grey.shape[1]}x{grey.shape[2]}"},
            summary=(
                f"{job.dataset} {job.model}: overlap IoU {report['overlap_iou']:.4f}, "
                f"chromosome IoU {report['chromosome_iou']:.4f}, mean IoU "
                f"{report['mean_iou']:.4f}, pixel accuracy {report['pixel_accuracy']:.4f} "
                f"({len(grey)} test pairs)"
            ),
        )


#: The segmentation task object the rules run (:func:`karyoflow.tasks.task_for`).
TASK = Segmentation()


def _training_target(mode: str) -> Callable[[np.ndarray], np.ndarray]:
    """Pair labels (0-3: background, A, B, overlap) -> the classes ``mode`` trains on."""
    from karyoflow.tasks.segmentation.instances import to_contact_classes, to_three_class

    return {
        "four_class": np.asarray,
        "three_class_geometric": to_three_class,
        "contact_geometric": to_contact_classes,
    }[mode]


# --------------------------------------------------------------------------- helpers
