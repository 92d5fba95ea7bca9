"""The model table: every network of every task, built by name.

One :class:`ModelSpec` per model - its builder (a function returning a
``keras.Model``, as Keras applications are), task, default and minimum input size, and
the number of outputs it is built with; the workflow's wildcard constraints and the
config checks read the same table.

>>> sorted(MODELS)
['hu2019', 'inception_v3', 'karyonet_fast', 'resnet18', 'resnet50', 'vgg16']
>>> models_for("segmentation"), models_for("centromere")
(['segnet', 'unet'], ['centromere_cnn', 'centromere_heatmap'])
>>> default_input_size("hu2019")
(220, 100)
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from karyoflow.models.table import MODEL_SPECS, TASKS, ModelSpec, models_for

__all__ = [
    "MODELS",
    "MODEL_SPECS",
    "TASKS",
    "ModelSpec",
    "build_model",
    "builder",
    "default_input_size",
    "load_weights",
    "measure_throughput",
    "min_input_size",
    "model_options",
    "models_for",
    "uses_size_input",
    "with_size_input",
]


def builder(name: str) -> Callable[..., keras.Model]:
    """The function that builds model ``name`` (imported from its module)."""
    import importlib

    module, function = _spec(name).builder.split(":")
    return getattr(importlib.import_module(module), function)


def _spec(name: str) -> ModelSpec:
    try:
        return MODEL_SPECS[name]
    except KeyError:
        by_task = "; ".join(f"{t}: {', '.join(models_for(t))}" for t in TASKS)
        raise ValueError(f"unknown model {name!r}; choose one of: {by_task}") from None


def model_options(name: str) -> dict[str, Any]:
    """The options of model ``name`` and their defaults.

    Parameters
    ----------
    name : str
        A key of :data:`MODEL_SPECS`.

    Returns
    -------
    dict
        Keyword-only parameter name -> default value.

    Examples
    --------
    >>> model_options("unet")["filters"]
    16
    """
    fn = builder(name)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def default_input_size(name: str) -> tuple[int, int]:
    """The ``(H, W)`` a classifier is meant to be trained at.

    ``hu2019``: 220x100, the published size. ``inception_v3``: 150x75, because
    ``keras.applications.InceptionV3`` rejects anything under 75x75 (its 'valid' stem and
    reduction blocks shrink 75 to 1), and 150x75 keeps the 2:1 aspect of the others at the
    smallest legal width. Everything else: 96x48.

    Raises ``ValueError`` for a model that takes its data's size (centromere,
    segmentation, detection).
    """
    size = _spec(name).default_input
    if size is None:
        raise ValueError(f"model {name!r} takes the size of its data (no default size)")
    return size


def min_input_size(name: str) -> tuple[int, int]:
    """The smallest ``(H, W)`` model ``name`` (a key of :data:`MODEL_SPECS`) accepts,
    without its ``resize_to`` option."""
    return _spec(name).min_input


def build_model(
    name: str,
    input_shape: tuple[int | None, int | None, int],
    num_classes: int | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    seed: int | None = None,
    size_features: int = 0,
) -> keras.Model:
    """Build model ``name`` of any task from scratch, optionally loading a weights file.

    Parameters
    ----------
    name : str
        A key of :data:`MODEL_SPECS`.
    input_shape : tuple of int
        ``(H, W, 1)``; the model takes raw 0..255 grey values as float32.
    num_classes : int, optional
        Outputs of a classifier or segmentation model (default: the table's, 24 or 4);
        refused for models of fixed outputs.
    options : mapping, optional
        Keyword options of the builder (see :func:`model_options`); lists are passed
        as tuples.
    weights : str or Path, optional
        A ``.weights.h5`` file (from ``model.save_weights``) or a ``.keras`` file (from
        ``model.save``) of the same architecture, options and input shape. Nothing is ever
        downloaded.
    seed : int, optional
        Passed to ``keras.utils.set_random_seed`` before building, so the initial weights are
        reproducible. Note that this seeds Python, NumPy and the backend globally.
    size_features : int, default 0
        When > 0 (classifiers), a second input of that many per-chromosome size features
        is joined to the image features before the classifier (:func:`with_size_input`);
        a ``weights`` file must then come from such a model.

    Returns
    -------
    keras.Model
        An uncompiled model.

    Raises
    ------
    ValueError
        Unknown model name or option, a bad input shape, or a weights file that does not fit.
    FileNotFoundError
        ``weights`` does not exist.

    Examples
    --------
    >>> build_model("centromere_cnn", (32, 16, 1), options={"dense": 0}).output_shape
    (None, 2)
    >>> build_model("unet", (32, 32, 1), options={"filters": 4, "depth": 2}).output_shape
    (None, 32, 32, 4)
    """
    spec = _spec(name)
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(options or {}).items()}
    known = model_options(name)
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid options: {', '.join(sorted(known))}"
        )
    if spec.outputs is None and num_classes is not None:
        raise ValueError(f"model {name!r} has fixed outputs; num_classes cannot be set")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    args = () if spec.outputs is None else (int(num_classes or spec.outputs),)
    model = builder(name)(tuple(input_shape), *args, **opts)
    if int(size_features) > 0:
        model = with_size_input(model, int(size_features))
    if weights is not None:
        load_weights(model, weights, name)
    return model


def with_size_input(model: keras.Model, n_features: int = 2, hidden: int = 16) -> keras.Model:
    """Give a classifier a second input of per-chromosome size features.

    The image features entering the model's ``logits`` layer are concatenated with a
    small ReLU embedding of the size features (``Dense(hidden)``), followed by new
    logits and a float32 softmax. Relative length and area are what fitting every crop
    to one input size takes away (:mod:`karyoflow.tasks.classification.features`).

    Parameters
    ----------
    model : keras.Model
        A classifier of this registry (with a ``logits`` Dense layer).
    n_features : int, default 2
        Width of the size input.
    hidden : int, default 16
        Units of the size embedding.

    Returns
    -------
    keras.Model
        Inputs ``[images (B, H, W, 1), sizes (B, n_features)]``, same output.

    Examples
    --------
    >>> m = with_size_input(build_model("karyonet_fast", (64, 32, 1), 24))
    >>> [tuple(t.shape) for t in m.inputs], tuple(m.output.shape)
    ([(None, 64, 32, 1), (None, 2)], (None, 24))
    """
    try:
        logits = model.get_layer("logits")
    except ValueError as exc:
        raise ValueError(f"model {model.name!r} has no 'logits' layer to extend") from exc
    num_classes = int(logits.units)
    sizes = keras.Input((int(n_features),), name="sizes")
    s = keras.layers.Dense(int(hidden), activation="relu", name="size_embedding")(sizes)
    x = keras.layers.Concatenate(name="image_and_size")([logits.input, s])
    x = keras.layers.Dense(num_classes, name="logits_with_size")(x)
    out = keras.layers.Activation("softmax", dtype="float32", name="probs_with_size")(x)
    return keras.Model([model.inputs[0], sizes], out, name=model.name)


def uses_size_input(model: keras.Model) -> bool:
    """True for models built with ``size_features`` (two inputs)."""
    return len(model.inputs) == 2


def load_weights(model: keras.Model, path: str | Path, name: str) -> None:
    """Load a weights file into ``model`` in place, refusing any part that does not fit.

    Parameters
    ----------
    model : keras.Model
        A built model.
    path : str or Path
        A ``.weights.h5`` file (``model.save_weights``) or a ``.keras`` file
        (``model.save``) of a model of the same architecture.
    name : str
        The model's name, for the error message.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Another suffix, or a file whose layers or shapes differ from ``model``'s (Keras
        only warns and keeps fresh weights there; this raises).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if not (path.name.endswith(".weights.h5") or path.suffix == ".keras"):
        raise ValueError(f"weights must be a '.weights.h5' or '.keras' file, got {path.name}")
    try:
        # Keras only *warns* when parts of a file do not match (those layers keep their fresh
        # initial weights); treat that as an error, but let optimizer-state warnings through.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
        for warning in caught:
            message = str(warning.message)
            if "optimizer" not in message.lower() and (
                "skipping" in message.lower() or "freshly-initialized" in message
            ):
                raise ValueError(message)
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    except Exception as exc:  # keras raises ValueError / KeyError / TypeError here
        raise ValueError(
            f"weights file {path} does not fit model {name!r} with input shape "
            f"{tuple(model.input_shape[1:])} and {model.output_shape[-1]} outputs (it must come "
            f"from the same model, options, input shape and output count): {exc}"
        ) from exc


def measure_throughput(
    model: keras.Model,
    input_shape: tuple[int, int, int],
    batch: int = 64,
    steps: int = 10,
    *,
    warmup: int = 2,
    threads: int | None = 2,
) -> float:
    """Training throughput in images per second (``train_on_batch`` on random data).

    Compiles the model (Adam, sparse categorical cross-entropy) when it is not compiled yet,
    runs ``warmup`` untimed steps (graph tracing), then times ``steps`` steps.

    Parameters
    ----------
    model : keras.Model
        The model; its output size gives the number of classes.
    input_shape : tuple of int
        ``(H, W, C)`` of one image.
    batch : int, default 64
        Batch size.
    steps : int, default 10
        Timed steps.
    warmup : int, default 2
        Untimed steps first.
    threads : int or None, default 2
        Intra-op threads for TensorFlow. It can only be set before TensorFlow has run
        anything; if that is too late it is left as it is. ``None`` leaves it alone.

    Returns
    -------
    float
        Images per second.
    """
    if threads is not None and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
    if not getattr(model, "compiled", False):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    classes = int(model.output_shape[-1])
    x = rng.integers(0, 256, size=(batch, *input_shape)).astype("float32")
    y = rng.integers(0, classes, size=(batch,)).astype("int32")
    for _ in range(max(1, warmup)):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return batch * steps / (time.perf_counter() - start)


#: The classifiers (24-class chromosome models): builder by name.
MODELS: dict[str, Callable[..., keras.Model]] = {
    n: builder(n) for n, s in MODEL_SPECS.items() if s.task == "classification"
}
