"""Learned-detector training job (rule ``train_detector``): VOC metaphases -> CenterNet.

The network (:func:`karyoflow.models.detector.centernet`) is trained from scratch on the
*train* split of a VOC dataset (random augmented crops of the metaphases,
:func:`karyoflow.detect.learned.random_crop`); after every epoch it detects the
chromosomes of every *val* metaphase, and the epoch with the best F-beta at IoU 0.5
(F1 by default) is kept, together with the score threshold that gave it. Tracked as
an MLflow child run like the other training jobs; evaluation on all splits is the
``detect_evaluate`` machinery with this model in place of the classical detector
(:func:`karyoflow.detect.pipeline.run_detect_evaluate`).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.fileutil import files_sha256, write_json

__all__ = [
    "DEFAULT_DETECTOR_TRAIN",
    "best_threshold",
    "crop_batches",
    "load_detector",
    "operating_threshold",
    "prepare_cells",
    "resolve_detector_params",
    "run_detector_training",
    "threshold_sweep",
]

#: Training options of the learned detector (``detect.learned.params``).
DEFAULT_DETECTOR_TRAIN: dict[str, Any] = {
    "scale": 0.5,  # network input / original pixels
    "crop": 192,  # side of the training crops (network pixels, multiple of 16)
    "batch_size": 16,
    "steps_per_epoch": 50,
    "epochs": 30,
    "optimizer": "adamw",
    "learning_rate": 0.002,
    "weight_decay": 0.0001,
    "momentum": 0.9,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "step_every": 10,
    "step_factor": 0.1,
    "filters": [16, 32, 64, 96],
    "head": 32,
    "polarity": "auto",  # auto | dark_on_light | light_on_dark
    "augment": {"scale_range": [0.8, 1.25], "contrast": 0.2, "brightness": 0.1},
    "thresholds": [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5],  # tried on val
    "tta": 4,  # test-time views averaged at detection (1, 2, 4 or 8; learned.predict_map)
    "scales": [1.0],  # test-time scales x `scale`, boxes fused (learned.detect_learned)
    "fusion_iou": 0.55,  # IoU at which the boxes of several scales are fused
    "beta": 1.0,  # epoch and threshold chosen by F-beta on val (>1 favours recall)
    "operating_recall": None,  # a number: the highest threshold reaching this val recall
    "iou_threshold": 0.5,
    "threads": 0,
}


def resolve_detector_params(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge option layers over :data:`DEFAULT_DETECTOR_TRAIN` and check them.

    Raises
    ------
    ValueError
        Naming the first unknown key or bad value.

    Examples
    --------
    >>> resolve_detector_params({"epochs": 2})["epochs"]
    2
    >>> resolve_detector_params({"crop": 100})
    Traceback (most recent call last):
    ...
    ValueError: detect.learned.params.crop must be a positive multiple of 16, got 100
    """
    out = copy.deepcopy(DEFAULT_DETECTOR_TRAIN)
    for layer in layers:
        for key, value in (layer or {}).items():
            if key not in out:
                raise ValueError(f"unknown detect.learned.params key {key!r}")
            if key == "augment":
                for k, v in (value or {}).items():
                    if k not in out["augment"]:
                        raise ValueError(f"unknown detect.learned.params.augment key {k!r}")
                    out["augment"][k] = copy.deepcopy(v)
            else:
                out[key] = copy.deepcopy(value)
    pre = "detect.learned.params"
    if int(out["crop"]) <= 0 or int(out["crop"]) % 16:
        raise ValueError(f"{pre}.crop must be a positive multiple of 16, got {out['crop']}")
    if not float(out["scale"]) > 0:
        raise ValueError(f"{pre}.scale must be positive, got {out['scale']}")
    for key in ("batch_size", "steps_per_epoch", "epochs"):
        if int(out[key]) < 1:
            raise ValueError(f"{pre}.{key} must be at least 1, got {out[key]}")
    if len(out["filters"]) != 4:
        raise ValueError(f"{pre}.filters must have 4 entries, got {out['filters']}")
    if out["polarity"] not in ("auto", "dark_on_light", "light_on_dark"):
        raise ValueError(f"{pre}.polarity: unknown mode {out['polarity']!r}")
    ths = [float(t) for t in out["thresholds"]]
    if not ths or not all(0.0 < t < 1.0 for t in ths):
        raise ValueError(f"{pre}.thresholds must be values in (0, 1), got {out['thresholds']}")
    out["thresholds"] = sorted(ths)
    if not float(out["beta"]) > 0:
        raise ValueError(f"{pre}.beta must be positive, got {out['beta']}")
    from karyoflow.train.views import DIHEDRAL_VIEWS

    tta = out["tta"]
    if isinstance(tta, bool) or not isinstance(tta, int) or tta not in DIHEDRAL_VIEWS:
        raise ValueError(f"{pre}.tta must be 1, 2, 4 or 8, got {out['tta']!r}")
    scales = out["scales"]
    if (
        not isinstance(scales, list | tuple)
        or not scales
        or not all(isinstance(s, int | float) and not isinstance(s, bool) and s > 0 for s in scales)
    ):
        raise ValueError(f"{pre}.scales must be a list of positive numbers, got {scales!r}")
    out["scales"] = [float(s) for s in scales]
    rec = out["operating_recall"]
    if rec is not None and (
        isinstance(rec, bool) or not isinstance(rec, int | float) or not 0 < rec <= 1
    ):
        raise ValueError(f"{pre}.operating_recall must be null or in (0, 1], got {rec!r}")
    if not 0.0 < float(out["fusion_iou"]) < 1.0:
        raise ValueError(f"{pre}.fusion_iou must be in (0, 1), got {out['fusion_iou']!r}")
    return out


def prepare_cells(
    manifest: pd.DataFrame, split: str | None, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Read the metaphases of ``split`` (all if None) with their true boxes.

    Returns
    -------
    list of dict
        Per image (sorted by source): ``cell_id``, ``split``, ``grey`` (original),
        ``small`` (network scale, dark on light), ``boxes`` (original pixels),
        ``invert``.
    """
    from karyoflow.detect.learned import needs_inversion, prepare_image
    from karyoflow.imageio import read_image
    from karyoflow.preprocess.intensity import to_grey

    rows = manifest[manifest["kind"] == "metaphase"]
    if split is not None:
        rows = rows[rows["split"] == split]
    cells = []
    for source, group in rows.groupby("source", sort=True):
        grey = to_grey(read_image(source))  # 8-bit grey, as at detection time
        inv = needs_inversion(grey, params["polarity"])
        cells.append(
            {
                "cell_id": str(group["cell_id"].iloc[0]),
                "split": str(group["split"].iloc[0]),
                "grey": grey,
                "small": prepare_image(grey, float(params["scale"]), invert=inv),
                "boxes": group[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64),
                "invert": inv,
            }
        )
    return cells


def threshold_sweep(
    model: Any,
    cells: list[dict[str, Any]],
    params: Mapping[str, Any],
    *,
    tta: int = 1,
    scales: Sequence[float] = (1.0,),
) -> dict[float, dict[str, float]]:
    """Recall, precision and F-beta (``params["beta"]``, pooled over ``cells``) at every
    threshold of ``params``; the F-beta is under the key ``fscore``. ``tta``: test-time
    views (:func:`karyoflow.detect.learned.predict_map`); ``scales``: test-time scales,
    fused at ``params["fusion_iou"]`` (:func:`karyoflow.detect.learned.detect_learned`)."""
    from karyoflow.detect.evaluate import match_boxes
    from karyoflow.detect.learned import detect_learned

    ths = list(params["thresholds"])
    counts = {t: [0, 0, 0] for t in ths}  # tp, n_detected, n_true
    for cell in cells:
        boxes, scores = detect_learned(
            model,
            cell["grey"],
            scale=float(params["scale"]),
            threshold=ths[0],
            invert=cell["invert"],
            tta=tta,
            scales=scales,
            fusion_iou=float(params["fusion_iou"]),
        )
        for t in ths:
            r = match_boxes(
                cell["boxes"], boxes[scores >= t], iou_threshold=params["iou_threshold"]
            )
            counts[t][0] += r.tp
            counts[t][1] += r.n_detected
            counts[t][2] += r.n_true
    out = {}
    b2 = float(params.get("beta", 1.0)) ** 2
    for t, (tp, nd, nt) in counts.items():
        rec = tp / nt if nt else 0.0
        prec = tp / nd if nd else 0.0
        fb = (1 + b2) * rec * prec / (b2 * prec + rec) if rec + prec else 0.0
        out[t] = {"recall": rec, "precision": prec, "fscore": fb}
    return out


def crop_batches(cells: list[dict[str, Any]], params: Mapping[str, Any], seed: int, epoch: int):
    """The training batches of one epoch (:func:`karyoflow.detect.learned.training_batch`);
    batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``."""
    from karyoflow.detect.learned import training_batch

    images = [c["small"] for c in cells]
    boxes = [c["boxes"] * float(params["scale"]) for c in cells]
    aug = dict(params["augment"])
    aug["scale_range"] = tuple(aug["scale_range"])
    for i in range(int(params["steps_per_epoch"])):
        rng = np.random.default_rng([seed, epoch, i])
        yield training_batch(
            rng, images, boxes, int(params["batch_size"]), int(params["crop"]), **aug
        )


def best_threshold(sweep: Mapping[float, Mapping[str, float]]) -> float:
    """The threshold of highest F-beta in a :func:`threshold_sweep` (ties: the lowest).

    Examples
    --------
    >>> best_threshold({0.2: {"fscore": 0.8}, 0.3: {"fscore": 0.9}, 0.4: {"fscore": 0.9}})
    0.3
    """
    return max(sweep, key=lambda t: (sweep[t]["fscore"], -t))


def operating_threshold(
    sweep: Mapping[float, Mapping[str, float]], recall: float | None = None
) -> float:
    """The operating threshold of a :func:`threshold_sweep`.

    Without ``recall``, the threshold of highest F-beta (:func:`best_threshold`); with
    it, the highest threshold whose recall reaches ``recall`` - the best precision that
    keeps that share of the chromosomes - or, if none does, the F-beta best.

    Examples
    --------
    >>> sweep = {0.2: {"recall": 0.96, "fscore": 0.90}, 0.3: {"recall": 0.95, "fscore": 0.93},
    ...          0.4: {"recall": 0.90, "fscore": 0.94}}
    >>> operating_threshold(sweep), operating_threshold(sweep, 0.95)
    (0.4, 0.3)
    >>> operating_threshold(sweep, 0.99)
    0.4
    """
    if recall is not None:
        reaching = [t for t in sweep if sweep[t]["recall"] >= float(recall)]
        if reaching:
            return max(reaching)
    return best_threshold(sweep)


def _rounded(sweep: Mapping[float, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    return {str(t): {k: round(v, 4) for k, v in r.items()} for t, r in sweep.items()}


def _val_logs(model, cells, params, store: dict) -> dict[str, float]:
    """Detection F-beta / recall / precision on the val metaphases at the best threshold
    (every sweep is kept in ``store["sweeps"]``)."""
    sweep = threshold_sweep(model, cells, params)
    best = best_threshold(sweep)
    store.setdefault("sweeps", []).append(sweep)
    return {
        "val_fscore": sweep[best]["fscore"],
        "val_recall": sweep[best]["recall"],
        "val_precision": sweep[best]["precision"],
        "val_threshold": best,
    }


def load_detector(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A trained detector and its settings (``scale``, ``threshold``, ``polarity``...).

    The settings are the ``detector.json`` written next to ``model.keras``.
    """
    import keras

    from karyoflow.detect.centernet import centernet_loss

    path = Path(path)
    meta_path = path.with_name("detector.json")
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: detector settings missing (next to {path.name})")
    meta = json.loads(meta_path.read_text())
    model = keras.saving.load_model(
        path, custom_objects={"centernet_loss": centernet_loss()}, compile=False
    )
    return model, meta


def run_detector_training(
    job: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the learned detector on one VOC dataset and write its outputs.

    ``job`` keys: dataset, manifest, params (over :data:`DEFAULT_DETECTOR_TRAIN`), seed,
    use_gpu, mixed_precision, tracking_uri, experiment, log_models, results, tags, and
    optionally weights (a ``.keras`` / ``.weights.h5`` file of a detector with the same
    ``filters`` and ``head`` to start from instead of fresh weights: fine-tuning).
    ``outputs`` keys: model, settings (detector.json), metrics, history, curves.
    """
    from karyoflow.train import devices

    params = resolve_detector_params(job["params"])
    seed = int(job["seed"])
    setup = devices.configure_job(job, params["threads"])
    import mlflow

    from karyoflow.detect.centernet import centernet_loss
    from karyoflow.evaluate.plots import plot_training_curves
    from karyoflow.manifest import read_manifest
    from karyoflow.models.detector import centernet
    from karyoflow.train import tracking
    from karyoflow.train.trainer import fit_epochs, make_optimizer, selection_callbacks

    dataset = job["dataset"]
    name = f"detector/{dataset}"
    log(f"[train_detector] {name} on {setup.describe()}")
    table = read_manifest(job["manifest"])
    train = prepare_cells(table, "train", params)
    val = prepare_cells(table, "val", params)
    if not train:
        raise ValueError(f"{job['manifest']}: no metaphase with boxes in the train split")
    n_boxes = sum(len(c["boxes"]) for c in train)
    log(
        f"[train_detector] {len(train)} training metaphases ({n_boxes} boxes), "
        f"{len(val)} validation metaphases; scale {params['scale']}, crops {params['crop']} px"
    )
    model = centernet(filters=params["filters"], head=int(params["head"]))
    weights = job.get("weights")
    if weights:
        from karyoflow.models.registry import load_weights

        load_weights(model, weights, "centernet")
        log(f"[train_detector] starting from the weights of {weights}")
    steps = int(params["steps_per_epoch"])
    model.compile(optimizer=make_optimizer(params, steps), loss=centernet_loss())
    store: dict[str, Any] = {}
    epochs = int(params["epochs"])
    monitor, mode = ("val_fscore", "max") if val else ("loss", "min")
    cbs: list[Any] = [tracking.EpochMetrics(), *selection_callbacks(monitor, mode, 0, epochs, log)]

    uri = tracking.resolve_tracking_uri(job["tracking_uri"], job["results"])
    tags = {
        "karyoflow.kind": "train_detector",
        "task": "detection",
        "model": "centernet",
        "dataset": dataset,
        "rule": "train_detector",
        "wildcards": json.dumps({"dataset": dataset}),
        "git_commit": tracking.git_commit(),
        "device": setup.device,
        "data_hash": files_sha256([job["manifest"]]),
        **(job.get("tags") or {}),
    }
    with tracking.child_run(
        uri,
        job["experiment"],
        name=name,
        parent=tracking.parent_run_id(job["results"]),
        tags=tags,
        results=job["results"],
        data_files=[str(job["manifest"])],
    ) as run:
        mlflow.log_params(
            tracking.flatten(
                {
                    "model": "centernet",
                    "dataset": dataset,
                    "seed": seed,
                    "detector": params,
                    "parameters": int(model.count_params()),
                    "train_images": len(train),
                    "train_boxes": n_boxes,
                    "val_images": len(val),
                    "weights": str(weights) if weights else None,
                }
            )
        )
        start = time.perf_counter()
        history = fit_epochs(
            model,
            lambda epoch: crop_batches(train, params, seed, epoch),
            epochs,
            cbs,
            validate=(lambda: _val_logs(model, val, params, store)) if val else None,
        )
        seconds = time.perf_counter() - start
        scores = history.get(monitor, [0.0])
        best = int(np.argmax(scores) if mode == "max" else np.argmin(scores))
        threshold = float(history["val_threshold"][best]) if val else 0.3
        crops = steps * int(params["batch_size"]) * len(scores)
        metrics: dict[str, Any] = {
            "best_epoch": best + 1,
            "epochs_run": len(scores),
            "threshold": threshold,
            "train_seconds": round(seconds, 3),
            "train_crops_per_second": round(crops / max(seconds, 1e-9), 2),
            "parameters": int(model.count_params()),
            "train_images": len(train),
            "train_boxes": n_boxes,
            "val_images": len(val),
        }
        tta, scales = int(params["tta"]), list(params["scales"])
        metrics["tta"], metrics["scales"] = tta, scales
        if val:
            # every threshold at the chosen epoch: the recall / precision trade-off
            sweep = store["sweeps"][best]
            threshold = best_threshold(sweep)  # the one _val_logs reported for that epoch
            if tta > 1 or scales != [1.0]:
                # epochs were compared on one view at one scale; the operating point
                # is chosen with the views and scales the detector will use
                metrics["val_sweep_one_view"] = _rounded(sweep)
                log(
                    f"[train_detector] {name}: threshold chosen on val with {tta} views "
                    f"at scales {scales}"
                )
                sweep = threshold_sweep(model, val, params, tta=tta, scales=scales)
                threshold = best_threshold(sweep)
            if params["operating_recall"] is not None:
                threshold = operating_threshold(sweep, params["operating_recall"])
                log(
                    f"[train_detector] {name}: threshold {threshold} for val recall >= "
                    f"{params['operating_recall']}"
                )
            for key in ("fscore", "recall", "precision"):
                metrics[f"val_{key}"] = float(sweep[threshold][key])
            metrics["threshold"] = threshold
            metrics["val_sweep"] = _rounded(sweep)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
        settings = {
            "model": "centernet",
            "dataset": dataset,
            "scale": float(params["scale"]),
            "threshold": threshold,
            "polarity": params["polarity"],
            "tta": tta,
            "scales": scales,
            "fusion_iou": float(params["fusion_iou"]),
            "stride": 4,
            "step": 16,
            "iou_threshold": float(params["iou_threshold"]),
            "init_weights": str(weights) if weights else None,
        }
        write_json(outputs["settings"], settings)
        write_json(outputs["history"], history)
        curves = {k: v for k, v in history.items() if k != "val_threshold"}
        plot_training_curves(curves, outputs["curves"], title=name)
        for path in (outputs["curves"], outputs["history"], outputs["settings"]):
            mlflow.log_artifact(str(path))
        tracking.save_model(model, outputs["model"], log=job.get("log_models", True))
        metrics["mlflow_run_id"] = run.info.run_id
        metrics["device"] = setup.device
        write_json(outputs["metrics"], metrics)
    val_text = (
        f"val recall {metrics['val_recall']:.3f}, precision {metrics['val_precision']:.3f} "
        f"at threshold {threshold}"
        if val
        else "no val split"
    )
    log(f"[train_detector] {name}: best epoch {best + 1}, {val_text} ({seconds:.0f}s)")
    return metrics
