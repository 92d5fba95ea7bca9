"""The one table of models: name -> builder, task, default and minimum input, outputs.

Free of Keras, so the workflow reads it when it builds its DAG (wildcard constraints,
config checks); :mod:`karyoflow.models.registry` builds from it. Each model module
takes its default and minimum sizes from here.

>>> models_for("segmentation"), models_for("centromere")
(['segnet', 'unet'], ['centromere_cnn', 'centromere_heatmap'])
>>> MODEL_SPECS["inception_v3"].min_input
(75, 75)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODEL_SPECS", "TASKS", "ModelSpec", "models_for"]

#: The tasks models are built for.
TASKS: tuple[str, ...] = ("classification", "centromere", "segmentation", "detection")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the table.

    Attributes
    ----------
    builder : str
        ``"module:function"``; ``function(input_shape[, outputs], **options)`` returns
        a ``keras.Model``.
    task : str
        One of :data:`TASKS`.
    default_input : tuple of int or None
        ``(H, W)`` it is meant to be trained at (None: the data's size).
    min_input : tuple of int
        Smallest ``(H, W)`` it accepts.
    outputs : int or None
        Outputs it is built with by default (classes), passed after the input shape;
        None: the builder takes no such argument (fixed outputs).
    """

    builder: str
    task: str
    default_input: tuple[int, int] | None
    min_input: tuple[int, int]
    outputs: int | None = None


_M = "karyoflow.models."

#: Every model by name. ``inception_v3``: ``keras.applications.InceptionV3`` rejects
#: anything under 75x75 (its 'valid' stem and reduction blocks shrink 75 -> 37 -> 35 ->
#: 17 -> 8 -> 3 -> 1), and 150x75 keeps the 2:1 aspect of the others' 96x48 at the
#: smallest legal width; ``resnet50`` and ``vgg16``: their Keras applications (five
#: 2x2 poolings) reject under 32x32.
MODEL_SPECS: dict[str, ModelSpec] = {
    "hu2019": ModelSpec(_M + "hu2019:hu2019", "classification", (220, 100), (8, 8), 24),
    "resnet18": ModelSpec(_M + "resnet:resnet18", "classification", (96, 48), (16, 16), 24),
    "resnet50": ModelSpec(_M + "resnet:resnet50", "classification", (96, 48), (32, 32), 24),
    "vgg16": ModelSpec(_M + "vgg:vgg16", "classification", (96, 48), (32, 32), 24),
    "inception_v3": ModelSpec(
        _M + "inception:inception_v3", "classification", (150, 75), (75, 75), 24
    ),
    "karyonet_fast": ModelSpec(
        _M + "karyonet:karyonet_fast", "classification", (96, 48), (16, 16), 24
    ),
    "centromere_cnn": ModelSpec(_M + "centromere:centromere_cnn", "centromere", None, (16, 16)),
    "centromere_heatmap": ModelSpec(
        _M + "centromere:centromere_heatmap", "centromere", None, (16, 16)
    ),
    "segnet": ModelSpec(_M + "segmentation:segnet", "segmentation", None, (8, 8), 4),
    "unet": ModelSpec(_M + "segmentation:unet", "segmentation", None, (8, 8), 4),
    "centernet": ModelSpec(_M + "detector:centernet", "detection", None, (16, 16)),
}


def models_for(task: str) -> list[str]:
    """The names of ``task``'s models, sorted.

    Raises
    ------
    ValueError
        An unknown task.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    return sorted(n for n, s in MODEL_SPECS.items() if s.task == task)
