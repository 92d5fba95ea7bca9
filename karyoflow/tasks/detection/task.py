"""Learned-detector training job (rule ``train_detector``): VOC metaphases -> CenterNet.

The network (:func:`karyoflow.models.detector.centernet`) is trained from scratch on the
*train* split of a VOC dataset (random augmented crops of the metaphases,
:func:`karyoflow.tasks.detection.learned.random_crop`); after every epoch it detects the
chromosomes of every *val* metaphase, and the epoch with the best F-beta at IoU 0.5
(F1 by default) is kept, together with the score threshold that gave it. Tracked as
an MLflow child run like the other training jobs; evaluation on all splits is the
``detect_evaluate`` machinery with this model in place of the classical detector
(:func:`karyoflow.tasks.detection.pipeline.run_detect_evaluate`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from karyoflow.engine.fit import FIT_DEFAULTS, FitData, TrainResult, check_fit_params
from karyoflow.engine.job import Job
from karyoflow.engine.params import merge_params
from karyoflow.engine.task import Evaluation, Registered, Splits, Validation
from karyoflow.fileutil import write_json

__all__ = [
    "DEFAULT_DETECTOR_TRAIN",
    "REGISTRY_TASK",
    "TASK",
    "best_threshold",
    "crop_batches",
    "load_detector",
    "operating_threshold",
    "prepare_cells",
    "resolve_detector_params",
    "threshold_sweep",
]

#: Registry task of the learned detectors: versions of ``karyoflow-detection``.
REGISTRY_TASK = "detection"

#: Training options of the learned detector (``detect.learned.params``).
DEFAULT_DETECTOR_TRAIN: dict[str, Any] = {
    **FIT_DEFAULTS,
    "scale": 0.5,  # network input / original pixels
    "crop": 192,  # side of the training crops (network pixels, multiple of 16)
    "batch_size": 16,
    "steps_per_epoch": 50,
    "epochs": 30,
    "learning_rate": 0.002,
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
    out = merge_params(
        DEFAULT_DETECTOR_TRAIN, *layers, what="detect.learned.params key", nested=["augment"]
    )
    pre = "detect.learned.params"
    if int(out["crop"]) <= 0 or int(out["crop"]) % 16:
        raise ValueError(f"{pre}.crop must be a positive multiple of 16, got {out['crop']}")
    if not float(out["scale"]) > 0:
        raise ValueError(f"{pre}.scale must be positive, got {out['scale']}")
    for key in ("batch_size", "steps_per_epoch", "epochs"):
        if int(out[key]) < 1:
            raise ValueError(f"{pre}.{key} must be at least 1, got {out[key]}")
    check_fit_params(out, pre)
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
    from karyoflow.engine.views import DIHEDRAL_VIEWS

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
    from karyoflow.imageio import read_image
    from karyoflow.preprocess.intensity import to_grey
    from karyoflow.tasks.detection.learned import needs_inversion, prepare_image

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
    views (:func:`karyoflow.tasks.detection.learned.predict_map`); ``scales``: test-time scales,
    fused at ``params["fusion_iou"]`` (:func:`karyoflow.tasks.detection.learned.detect_learned`)."""
    from karyoflow.tasks.detection.evaluate import match_boxes
    from karyoflow.tasks.detection.learned import detect_learned

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
    """The training batches of one epoch (:func:`karyoflow.tasks.detection.learned.training_batch`);
    batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``."""
    from karyoflow.tasks.detection.learned import training_batch

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


def load_detector(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A trained detector and its settings (``scale``, ``threshold``, ``polarity``...).

    The settings are the ``detector.json`` written next to ``model.keras``.
    """
    import keras

    from karyoflow.tasks.detection.centernet import centernet_loss

    path = Path(path)
    meta_path = path.with_name("detector.json")
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: detector settings missing (next to {path.name})")
    meta = json.loads(meta_path.read_text())
    model = keras.saving.load_model(
        path, custom_objects={"centernet_loss": centernet_loss()}, compile=False
    )
    return model, meta


class Detection:
    """The learned detector (:class:`karyoflow.engine.task.Task`): CenterNet on random
    augmented crops of the train metaphases, a threshold sweep on the val metaphases
    after every epoch (the epoch of best F-beta is kept, with its threshold)."""

    name, registry, params_key, unit = "detection", REGISTRY_TASK, "detector", "crops"
    resolve_params = staticmethod(resolve_detector_params)
    run_names = MappingProxyType(
        {"train": "detector/{dataset}", "evaluate": "detector/{dataset}/evaluate"}
    )

    def load(self, job: Job, params: Mapping[str, Any], log) -> Splits:
        from karyoflow.manifest import read_manifests

        table = read_manifests(job.files("manifest"))  # several: a union of datasets
        train = prepare_cells(table, "train", params)
        val = prepare_cells(table, "val", params)
        if not train:
            first = job.files("manifest")[0]
            raise ValueError(f"{first}: no metaphase with boxes in the train split")
        n_boxes = sum(len(c["boxes"]) for c in train)
        log(
            f"{len(train)} training metaphases ({n_boxes} boxes), {len(val)} validation "
            f"metaphases; scale {params['scale']}, crops {params['crop']} px"
        )
        return Splits(
            train,
            val,
            counts={"train_images": len(train), "train_boxes": n_boxes, "val_images": len(val)},
            data_files=job.files("manifest"),
            state={"dataset": job.dataset, "weights": job.weights, "sweeps": []},
        )

    def build(self, job: Job, splits: Splits, params: Mapping[str, Any]):
        from karyoflow.models.registry import build_model

        return build_model(
            "centernet",
            (None, None, 1),
            options={"filters": list(params["filters"]), "head": int(params["head"])},
            weights=job.weights,
            seed=job.seed,
        )

    def fit_data(self, model, splits: Splits, params: Mapping[str, Any], seed: int) -> FitData:
        steps = int(params["steps_per_epoch"])
        train, val, sweeps = splits.train, splits.val, splits.state["sweeps"]

        def validate() -> dict[str, float]:
            # F-beta / recall / precision on the val metaphases at the best threshold
            sweep = threshold_sweep(model, val, params)
            sweeps.append(sweep)
            best = best_threshold(sweep)
            return {
                "val_fscore": sweep[best]["fscore"],
                "val_recall": sweep[best]["recall"],
                "val_precision": sweep[best]["precision"],
                "val_threshold": best,
            }

        return FitData(
            lambda epoch: crop_batches(train, params, seed, epoch),
            steps,
            steps * int(params["batch_size"]),
            validate=validate if val else None,
        )

    def compile_args(self, model, splits: Splits, params: Mapping[str, Any]) -> dict:
        from karyoflow.tasks.detection.centernet import centernet_loss

        return {"loss": centernet_loss()}

    def monitor(self, splits: Splits, params: Mapping[str, Any]) -> tuple[str, str]:
        return ("val_fscore", "max") if splits.val else ("loss", "min")

    def validate(
        self, model, splits, params, result: TrainResult, outputs: Mapping[str, Any], log
    ) -> Validation:
        val = splits.val
        tta, scales = int(params["tta"]), list(params["scales"])
        metrics: dict[str, Any] = {"threshold": 0.3, "tta": tta, "scales": scales}
        if val:
            # every threshold at the chosen epoch: the recall / precision trade-off
            sweep = splits.state["sweeps"][result.best_epoch]
            threshold = best_threshold(sweep)
            if tta > 1 or scales != [1.0]:
                # epochs were compared on one view at one scale; the operating point is
                # chosen with the views and scales the detector will use
                metrics["val_sweep_one_view"] = _rounded(sweep)
                log(f"threshold chosen on val with {tta} views at scales {scales}")
                sweep = threshold_sweep(model, val, params, tta=tta, scales=scales)
                threshold = best_threshold(sweep)
            if params["operating_recall"] is not None:
                threshold = operating_threshold(sweep, params["operating_recall"])
                log(f"threshold {threshold} for val recall >= {params['operating_recall']}")
            for key in ("fscore", "recall", "precision"):
                metrics[f"val_{key}"] = float(sweep[threshold][key])
            metrics["threshold"] = threshold
            metrics["val_sweep"] = _rounded(sweep)
        settings = {
            "model": "centernet",
            "dataset": splits.state["dataset"],
            "scale": float(params["scale"]),
            "threshold": metrics["threshold"],
            "polarity": params["polarity"],
            "tta": tta,
            "scales": scales,
            "fusion_iou": float(params["fusion_iou"]),
            "stride": 4,
            "step": 16,
            "iou_threshold": float(params["iou_threshold"]),
            "init_weights": splits.state["weights"],
        }
        write_json(outputs["settings"], settings)
        summary = (
            f"val recall {metrics['val_recall']:.3f}, precision {metrics['val_precision']:.3f} "
            f"at threshold {metrics['threshold']}"
            if val
            else "no val split"
        )
        return Validation(metrics, summary=summary)

    def evaluate(self, job: Job, outputs: Mapping[str, Any], log) -> Evaluation:
        """Detection metrics on every metaphase (all, per split, val+test) with the
        operating threshold of ``detector.json`` (:func:`detection_report`); the model
        is registered by its test F1 at that threshold."""
        from karyoflow.tasks.detection.pipeline import detection_report

        model_file = job.file("model")
        metrics = detection_report(
            dataset=job.dataset,
            manifest=job.files("manifest"),
            params=job.params,
            overlay_cells=int(job.settings.get("overlay_cells", 4)),
            outputs=outputs,
            threads=job.threads,
            log=log,
            model=model_file,
        )
        logged: dict[str, float] = {}
        groups = ["all", "val", "test", *(k for k in metrics if k.startswith("test:"))]
        for split in groups:  # test:<dataset>: one member of a union
            part = metrics.get(split) or {}
            for key in ("recall", "precision", "ap", "count_error_abs_mean", "mean_iou"):
                if part.get(key) is not None:
                    logged[f"{split.replace(':', '_')}_{key}"] = float(part[key])
        test = metrics.get("test") or {}
        rec, prec = float(test.get("recall") or 0.0), float(test.get("precision") or 0.0)
        f1 = 2 * rec * prec / (rec + prec) if rec + prec else 0.0
        metrics["test_f1"] = logged["test_f1"] = f1
        model, _ = load_detector(model_file)
        return Evaluation(
            metrics,
            logged=logged,
            data_files=[*job.files("manifest"), model_file],
            registered=Registered(
                model_file,
                model,
                "test_f1",
                f1,
                greater_is_better=True,
                tags={"dataset": job.dataset, "model": "centernet"},
            ),
            summary=f"{job.dataset}: test F1 {f1:.4f} (recall {rec:.4f}, precision {prec:.4f})",
        )


#: The detection task object the rules run (:func:`karyoflow.tasks.task_for`).
TASK = Detection()
