"""The frozen description of one training or evaluation job, built once per rule job."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["Job"]


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Job:
    """Everything a job of the engine needs, in one immutable value.

    Attributes
    ----------
    task : str
        The task (``classification``, ``centromere``, ``segmentation``, ``detection``).
    rule : str
        The Snakemake rule; also the MLflow run's ``karyoflow.kind`` tag.
    dataset : str
        Dataset name (``a+b`` for a model trained on several).
    model : str
        Model name (a key of :data:`karyoflow.models.registry.MODEL_SPECS`).
    seed : int
        Seeds Python, NumPy and the backend.
    params : mapping
        The task's resolved options (its ``resolve_params``).
    inputs : mapping
        Rule input name -> list of paths.
    options : mapping
        Keyword options of the model builder.
    weights : str, optional
        A weights file to start from.
    size : str
        Input size name (``96x48``), or ``""``.
    wildcards : mapping
        The rule's wildcards (logged as the ``wildcards`` tag).
    settings : mapping
        Task settings that are not training options (figure counts, decoding...).
    threads : int
        CPU threads the scheduler gave the job.
    use_gpu, mixed_precision : bool
        The job was granted a GPU; ``mixed_float16`` there.
    tracking : mapping
        ``tracking_uri``, ``experiment``, ``log_models``, ``results``.
    tags : mapping
        Extra MLflow tags.

    Examples
    --------
    >>> job = Job("centromere", "train_centromere", "a+b", "centromere_cnn",
    ...           inputs={"train": ["a.h5", "b.h5"], "model": "m.keras"})
    >>> job.files("train"), job.file("model")
    (['a.h5', 'b.h5'], 'm.keras')
    >>> job.file("train")
    Traceback (most recent call last):
    ...
    ValueError: job train_centromere: input 'train' has 2 files, not 1
    """

    task: str
    rule: str
    dataset: str
    model: str
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, list[str]] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    size: str = ""
    wildcards: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 1
    use_gpu: bool = False
    mixed_precision: bool = False
    tracking: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        files = {
            k: [str(p) for p in ([v] if isinstance(v, str | Path) else v)]
            for k, v in dict(self.inputs).items()
        }
        object.__setattr__(self, "inputs", MappingProxyType(files))
        for name in ("params", "options", "wildcards", "settings", "tracking", "tags"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "weights", str(self.weights) if self.weights else None)
        object.__setattr__(self, "seed", int(self.seed))

    @classmethod
    def from_snakemake(cls, smk: Any) -> Job:
        """The job of a running rule: its ``params.job`` (``job_spec`` in
        ``workflow/rules/common.smk``), named inputs, wildcards and name; a GPU only
        where the scheduler granted one (profiles cap the ``gpu`` resource at what the
        machine has)."""
        spec = dict(smk.params.job)
        granted = int(smk.resources.get("gpu", 0) or 0) > 0
        spec["use_gpu"] = bool(spec.get("use_gpu")) and granted
        spec["inputs"] = {
            k: list(v) if not isinstance(v, str) else [v] for k, v in smk.input.items()
        }
        spec["wildcards"] = dict(smk.wildcards.items())
        spec["rule"] = smk.rule
        spec["threads"] = int(getattr(smk, "threads", 1) or 1)
        return cls(**spec)

    def file(self, name: str) -> str:
        """The one path of input ``name``."""
        paths = self.files(name)
        if len(paths) != 1:
            raise ValueError(f"job {self.rule}: input {name!r} has {len(paths)} files, not 1")
        return paths[0]

    def files(self, name: str) -> list[str]:
        """The paths of input ``name`` (an error naming the rule when it has none)."""
        try:
            return list(self.inputs[name])
        except KeyError:
            raise KeyError(f"job {self.rule}: no input {name!r}") from None

    @property
    def results(self) -> str:
        """The results root (MLflow store, GPU locks)."""
        return str(self.tracking.get("results", "results"))

    def with_(self, **changes: Any) -> Job:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        from dataclasses import replace

        return replace(self, **changes)

    def wildcards_tag(self) -> str:
        """The ``wildcards`` tag: the rule's wildcards as JSON."""
        return json.dumps(dict(self.wildcards))
