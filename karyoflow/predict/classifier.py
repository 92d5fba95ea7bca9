"""The classifier of ``karyoflow predict``: a model with its calibration and input size,
loaded from a file, an MLflow URI or the registry's champion."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from karyoflow.labels import LABELS

__all__ = [
    "DEFAULT_MIN_PROBABILITY",
    "REGISTERED_MODEL",
    "Classifier",
    "default_model",
    "find_calibration",
    "load_classifier",
]


#: The registered model whose ``champion`` alias ``load_classifier("champion")`` loads.
REGISTERED_MODEL = "karyoflow-classification"
#: Below this probability of its final label a chromosome is flagged uncertain.
DEFAULT_MIN_PROBABILITY = 0.5


@dataclass
class Classifier:
    """A loaded classification model and how to feed it."""

    model: Any
    height: int
    width: int
    size_features: bool
    source: str
    tta: str = "none"  # test-time views (karyoflow.engine.views.TTA_MODES)
    calibration: Any = None  # karyoflow.evaluate.calibration.Calibration (None: identity)

    def predict(self, images: np.ndarray, sizes: np.ndarray | None = None) -> np.ndarray:
        """Calibrated class probabilities ``(N, 24)`` for uint8 images ``(N, H, W)``,
        averaged over the test-time views of :attr:`tta`, then rescaled by
        :attr:`calibration`."""
        from karyoflow.engine.views import crop_views

        n = len(images)
        if n == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        views = crop_views(np.asarray(images), self.tta)
        if len(views) == 1:
            proba = self._predict(views[0], sizes)
        else:
            # all views in one batch: one network call per cell, not one per view
            tiled = (
                None if sizes is None else np.tile(np.asarray(sizes, np.float32), (len(views), 1))
            )
            proba = self._predict(np.concatenate(views), tiled)
            proba = proba.reshape(len(views), n, -1).mean(axis=0, dtype=np.float64)
        if self.calibration is not None:
            proba = self.calibration.apply(proba)
        return np.asarray(proba, np.float32)

    def _predict(self, images: np.ndarray, sizes: np.ndarray | None) -> np.ndarray:
        x = np.asarray(images, np.float32)[..., None]
        feed: Any = x
        if self.size_features:
            s = np.zeros((len(x), 2), np.float32) if sizes is None else sizes
            feed = [x, np.asarray(s, np.float32)]
        # one direct call per batch: model.predict builds a data pipeline each time, which
        # costs more than the network for one cell's ~46 chromosomes
        out = [
            np.asarray(
                self.model(
                    [f[i : i + 256] for f in feed] if isinstance(feed, list) else feed[i : i + 256],
                    training=False,
                ),
                np.float32,
            )
            for i in range(0, len(x), 256)
        ]
        return np.concatenate(out)


def default_model(results: str | Path = "results") -> Path:
    """The best classifier of the newest grid summary under ``results/train``.

    Raises
    ------
    FileNotFoundError
        No trained model yet (run the workflow, or give ``--model``).
    """
    found = sorted(
        Path(results).glob("train/*/best.json"), key=lambda p: (p.stat().st_mtime, str(p))
    )
    if not found:
        raise FileNotFoundError(
            f"{Path(results) / 'train'}: no trained model (run the workflow or give --model)"
        )
    best = json.loads(found[-1].read_text())["best"]
    path = found[-1].parent / best["model"] / best["point"] / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file listed in {found[-1]} is missing")
    return path


def load_classifier(
    source: str | Path, *, tracking_uri: str | None = None, tta: str = "none"
) -> Classifier:
    """Load a classifier from a ``.keras`` file, an MLflow model URI or ``champion``.

    ``tta``: test-time views its predictions average (config ``evaluate.tta``).

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    ValueError
        A model that is not a 24-class classifier of this project.
    """
    text = str(source)
    if text == "champion":
        text = f"models:/{REGISTERED_MODEL}@champion"
    if ":/" in text and not Path(text).exists():
        import mlflow
        import mlflow.keras

        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        model = mlflow.keras.load_model(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: model file not found")
        import keras

        model = keras.models.load_model(path)
    shape = model.inputs[0].shape
    if len(shape) != 4 or int(model.output_shape[-1]) != len(LABELS):
        raise ValueError(f"{text}: not a {len(LABELS)}-class chromosome classifier")
    from karyoflow.engine.views import TTA_MODES

    if tta not in TTA_MODES:
        raise ValueError(f"unknown test-time view mode {tta!r}; use one of {sorted(TTA_MODES)}")
    calibration = find_calibration(text, tracking_uri)
    return Classifier(
        model, int(shape[1]), int(shape[2]), len(model.inputs) == 2, text, tta, calibration
    )


def find_calibration(source: str, tracking_uri: str | None) -> Any:
    """The calibration of a model: ``calibration.json`` beside a ``.keras`` file, or the
    tags of a registered version (``calibration_temperature``, ``review_min_posterior``,
    set by the evaluate rule); the identity when there is none."""
    from karyoflow.evaluate.calibration import Calibration, load_calibration

    if not source.startswith("models:/"):
        return load_calibration(source) if Path(source).exists() else Calibration()
    from mlflow.tracking import MlflowClient

    name, _, ref = source[len("models:/") :].partition("/")
    name, _, alias = name.partition("@")
    client = MlflowClient(tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias) if alias else None
        version = version or client.get_model_version(name, ref)
    except Exception:
        return Calibration()
    tags = dict(version.tags or {})
    if "calibration_temperature" not in tags:
        return Calibration()
    return load_calibration(
        {
            "temperature": float(tags["calibration_temperature"]),
            "fitted_on": "val",
            "review_min_posterior": float(tags.get("review_min_posterior", "nan")),
            "review_chosen_on": "val" if "review_min_posterior" in tags else "none",
        }
    )
