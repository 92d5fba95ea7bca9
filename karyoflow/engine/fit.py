"""The shared fit: optimizers, learning-rate schedules, best-epoch selection, loops.

Every task trains through :func:`fit_model` - Keras ``fit`` on ``tf.data`` pipelines,
or :func:`fit_epochs` on batches made in Python - with the same optimizer table
(:data:`OPTIMIZERS`), schedules (:data:`SCHEDULES`), early stopping / best-weight
restoring and per-epoch log (:func:`selection_callbacks`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from karyoflow.progress import eta

__all__ = [
    "FIT_DEFAULTS",
    "OPTIMIZERS",
    "SCHEDULES",
    "FitData",
    "TrainResult",
    "check_fit_params",
    "fit_epochs",
    "fit_model",
    "make_optimizer",
    "make_schedule",
    "progress_line",
    "selection_callbacks",
]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle")

#: Optimizer and schedule options every task's option table starts from.
FIT_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "adamw",  # adam | adamw | sgd | rmsprop
    "learning_rate": 0.003,
    "weight_decay": 0.0001,
    "momentum": 0.9,  # sgd / rmsprop
    "schedule": "cosine",  # constant | step | cosine | onecycle
    "warmup_epochs": 1,  # cosine: linear warm-up
    "step_every": 10,  # step: multiply by step_factor every k epochs
    "step_factor": 0.1,
    "early_stopping_patience": 0,  # 0: every epoch runs, the best one's weights kept
    "threads": 0,  # intra-op CPU threads, 0: all
    "progress_every_s": 60,  # a batch / ETA line inside an epoch this often; 0: off
}


def check_fit_params(params: Mapping[str, Any], where: str = "") -> None:
    """Refuse an unknown optimizer or schedule, or non-positive epochs, batch size or
    learning rate (``where``: a prefix naming the config section).

    Examples
    --------
    >>> check_fit_params({**FIT_DEFAULTS, "schedule": "linear"})
    Traceback (most recent call last):
    ...
    ValueError: schedule 'linear': choose from ['constant', 'step', 'cosine', 'onecycle']
    """
    pre = f"{where}." if where else ""
    if params["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"{pre}optimizer {params['optimizer']!r}: choose from {list(OPTIMIZERS)}")
    if params["schedule"] not in SCHEDULES:
        raise ValueError(f"{pre}schedule {params['schedule']!r}: choose from {list(SCHEDULES)}")
    if (
        int(params["epochs"]) < 1
        or int(params["batch_size"]) < 1
        or float(params["learning_rate"]) <= 0
    ):
        raise ValueError(f"{pre}epochs, batch_size and learning_rate must be positive")


def make_schedule(params: Mapping[str, Any], steps_per_epoch: int):
    """Learning-rate schedule (a Keras schedule, or the float for ``constant``)."""
    import keras

    lr = float(params["learning_rate"])
    total = max(1, int(params["epochs"]) * steps_per_epoch)
    kind = params["schedule"]
    if kind == "constant":
        return lr
    if kind == "step":
        every = max(1, int(params["step_every"])) * steps_per_epoch
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=every, decay_rate=float(params["step_factor"]), staircase=True
        )
    if kind == "cosine":
        warm = min(total - 1, int(params["warmup_epochs"]) * steps_per_epoch)
        return keras.optimizers.schedules.CosineDecay(
            lr / 10 if warm else lr,
            decay_steps=total - warm,
            alpha=0.01,
            warmup_target=lr if warm else None,
            warmup_steps=warm,
        )
    # onecycle: linear up for 30 %, cosine down to lr/1000
    return _OneCycle(lr, total)


def _one_cycle_class():
    import keras

    class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, peak: float, total: int):
            self.peak = peak
            self.total = total

        def __call__(self, step):
            from keras import ops

            step = ops.cast(step, "float32")
            up = 0.3 * self.total
            rise = self.peak / 25 + (self.peak - self.peak / 25) * step / up
            frac = ops.clip((step - up) / (self.total - up), 0.0, 1.0)
            fall = self.peak / 1000 + (self.peak - self.peak / 1000) * 0.5 * (
                1 + ops.cos(math.pi * frac)
            )
            return ops.where(step < up, rise, fall)

        def get_config(self):
            return {"peak": self.peak, "total": self.total}

    return OneCycle


def _OneCycle(peak: float, total: int):
    return _one_cycle_class()(peak, total)


def make_optimizer(params: Mapping[str, Any], steps_per_epoch: int):
    """Keras optimizer for ``params`` with its learning-rate schedule."""
    import keras

    schedule = make_schedule(params, steps_per_epoch)
    name = params["optimizer"]
    wd = float(params["weight_decay"]) or None
    if name == "adam":
        return keras.optimizers.Adam(schedule)
    if name == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=wd or 0.0)
    if name == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=float(params["momentum"]), nesterov=True, weight_decay=wd
        )
    return keras.optimizers.RMSprop(schedule, momentum=0.0, weight_decay=wd)


@dataclass
class TrainResult:
    """History (per-epoch metrics), best epoch and timing of a fit."""

    history: dict[str, list[float]]
    best_epoch: int
    seconds: float
    train_images: int
    epochs_run: int
    images_per_second: float = field(init=False)

    def __post_init__(self) -> None:
        self.images_per_second = self.train_images * self.epochs_run / max(self.seconds, 1e-9)


@dataclass
class FitData:
    """What one fit runs on.

    Attributes
    ----------
    train : tf.data.Dataset or callable
        A dataset for Keras ``fit``, or ``epoch -> iterable of (x, y[, weight])`` for
        :func:`fit_epochs` (batches made in Python).
    steps_per_epoch : int
        Optimizer steps per epoch (sets the schedule's length).
    samples : int
        Training samples seen per epoch (throughput).
    val : tf.data.Dataset, optional
        Validation data for ``fit``.
    validate : callable, optional
        ``() -> {"val_...": value}`` after each epoch (with :func:`fit_epochs`).
    """

    train: Any
    steps_per_epoch: int
    samples: int
    val: Any = None
    validate: Callable[[], Mapping[str, float]] | None = None


def fit_model(
    model,
    data: FitData,
    params: Mapping[str, Any],
    *,
    monitor: str,
    mode: str,
    callbacks: Sequence[Any] = (),
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Fit a compiled ``model`` for ``params["epochs"]``, keeping the best epoch's weights.

    Parameters
    ----------
    model : keras.Model
        Compiled (:func:`make_optimizer` gives its optimizer).
    data : FitData
        A ``tf.data`` pipeline (Keras ``fit``) or a batch function (:func:`fit_epochs`).
    params : mapping
        ``epochs`` and ``early_stopping_patience``.
    monitor, mode : str
        The history key that picks the best epoch, and ``"min"`` or ``"max"``.
    callbacks : sequence
        Keras callbacks run before the selection callbacks (MLflow epoch metrics).

    Returns
    -------
    TrainResult
        History, best epoch (0-based), time and throughput.
    """
    epochs = int(params["epochs"])
    patience = int(params.get("early_stopping_patience", 0))
    every = float(params.get("progress_every_s", FIT_DEFAULTS["progress_every_s"]))
    steps = getattr(data, "steps_per_epoch", None)
    selection = selection_callbacks(
        monitor, mode, patience, epochs, log, progress_every_s=every, steps=steps
    )
    cbs = [*callbacks, *selection]
    start = time.perf_counter()
    if callable(data.train) and not hasattr(data.train, "element_spec"):
        history = fit_epochs(model, data.train, epochs, cbs, validate=data.validate)
    else:
        hist = model.fit(
            data.train, validation_data=data.val, epochs=epochs, callbacks=cbs, verbose=0
        )
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    seconds = time.perf_counter() - start
    scores = history.get(monitor, [0.0])
    best = int(np.argmin(scores) if mode == "min" else np.argmax(scores))
    return TrainResult(history, best, seconds, data.samples, len(scores))


def fit_epochs(
    model,
    epoch_batches: Callable[[int], Iterable[Any]],
    epochs: int,
    callbacks: Sequence[Any] = (),
    *,
    validate: Callable[[], Mapping[str, float]] | None = None,
) -> dict[str, list[float]]:
    """Train a compiled ``model`` batch by batch, calling Keras callbacks as ``fit`` does.

    For batches made in Python (the learned detector's random crops): there, Keras
    ``fit`` on the same NumPy batches took 1.5-2x longer per step than ``train_on_batch``
    on the 2-core CPU (docs/benchmarks.md). (The ``tf.data`` classifier pipeline gained
    nothing from it - 40 s per epoch either way on karyograms-612 - and keeps ``fit``.)

    Parameters
    ----------
    model : keras.Model
        Compiled.
    epoch_batches : callable
        ``epoch -> iterable`` of ``(x, y)`` or ``(x, y, sample_weight)`` batches.
    epochs : int
        Most epochs (callbacks may stop earlier through ``model.stop_training``).
    callbacks : sequence of keras.callbacks.Callback
        Get ``on_train_begin/end``, ``on_epoch_begin/end`` (with the epoch's logs) and
        ``on_train_batch_begin/end``.
    validate : callable, optional
        ``() -> {"val_...": value}`` after each epoch, merged into its logs.

    Returns
    -------
    dict
        History: metric -> one value per epoch run (training metrics are the means over
        the epoch's samples, as ``fit`` reports them).
    """
    import keras

    cbl = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, model=model, epochs=epochs, verbose=0
    )
    model.stop_training = False
    cbl.on_train_begin()
    for epoch in range(epochs):
        cbl.on_epoch_begin(epoch)
        sums: dict[str, float] = {}
        count = 0
        for step, batch in enumerate(epoch_batches(epoch)):
            cbl.on_train_batch_begin(step)
            x, y, *weight = batch
            logs = model.train_on_batch(
                x, y, sample_weight=weight[0] if weight else None, return_dict=True
            )
            n = int(y.shape[0])
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
            count += n
            cbl.on_train_batch_end(step, logs)
        epoch_logs: dict[str, Any] = {k: v / max(count, 1) for k, v in sums.items()}
        if validate is not None:
            epoch_logs.update(validate())
        cbl.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    cbl.on_train_end()
    return {k: [float(v) for v in vals] for k, vals in model.history.history.items()}


def selection_callbacks(
    monitor: str,
    mode: str,
    patience: int,
    epochs: int,
    log: Callable[[str], None] = print,
    *,
    progress_every_s: float = 0.0,
    steps: int | None = None,
) -> list[Any]:
    """Keras callbacks keeping the best epoch's weights, and a one-line log per epoch.

    Early stopping on ``monitor`` (``mode`` ``"min"`` or ``"max"``) with ``patience``
    epochs, restoring the best weights; with ``patience <= 0`` every epoch runs and the
    best weights are restored at the end. With ``progress_every_s > 0`` a line with the
    batch, the running loss and the epoch's ETA is logged at most that often inside an
    epoch (``steps``: batches per epoch, for the ETA).
    """
    import keras

    cbs: list[Any] = []
    if patience > 0:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
            )
        )
    else:
        cbs.append(_BestWeights(monitor, mode))
    cbs.append(_EpochLog(log, epochs, progress_every_s, steps))
    return cbs


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class _BestWeights:
    """Restore the best epoch's weights at the end (when early stopping is off)."""

    def __new__(cls, monitor: str, mode: str):
        base = _keras_callback_base()

        class BestWeights(base):
            def __init__(self):
                super().__init__()
                self.best = None
                self.weights = None

            def on_epoch_end(self, epoch, logs=None):
                value = (logs or {}).get(monitor)
                if value is None:
                    return
                better = self.best is None or (
                    value < self.best if mode == "min" else value > self.best
                )
                if better:
                    self.best = value
                    self.weights = self.model.get_weights()

            def on_train_end(self, logs=None):
                if self.weights is not None:
                    self.model.set_weights(self.weights)

        return BestWeights()


def progress_line(epoch: int, epochs: int, batch: int, steps: int | None, seconds: float,
                  logs: Mapping[str, Any]) -> str:  # fmt: skip
    """The in-epoch progress line of :func:`selection_callbacks`.

    Examples
    --------
    >>> progress_line(0, 10, 99, 400, 50.0, {"loss": 1.23456})
    'epoch 1/10: batch 100/400 (25 %), loss=1.2346, 50 s in, about 150 s to go'
    """
    done = batch + 1
    parts = ", ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()) if k == "loss")
    where = f"batch {done}/{steps} ({100 * done // steps} %)" if steps else f"batch {done}"
    left = eta(done, steps, seconds)
    left = f", {left}" if left else ""
    loss = f"{parts}, " if parts else ""
    return f"epoch {epoch + 1}/{epochs}: {where}, {loss}{seconds:.0f} s in{left}"


class _EpochLog:
    """One progress line per epoch, and throttled ones inside long epochs."""

    def __new__(
        cls, log: Callable[[str], None], epochs: int, every_s: float = 0.0,
        steps: int | None = None,
    ):  # fmt: skip
        base = _keras_callback_base()

        class EpochLog(base):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = self.last = time.perf_counter()
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if every_s <= 0:
                    return
                now = time.perf_counter()
                if now - self.last >= every_s:
                    self.last = now
                    total = steps or (self.params or {}).get("steps")
                    log(progress_line(self.epoch, epochs, batch, total, now - self.start,
                                      logs or {}))  # fmt: skip

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                parts = " ".join(
                    f"{k}={v:.4f}" for k, v in sorted(logs.items()) if k != "learning_rate"
                )
                took = time.perf_counter() - self.start
                log(f"epoch {epoch + 1}/{epochs} {parts} ({took:.1f}s)")

        return EpochLog()
