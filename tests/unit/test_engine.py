"""The engine: jobs built from the Snakemake object, option merges, the task table."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from karyoflow.engine.job import Job
from karyoflow.engine.params import merge_params
from karyoflow.engine.run import finite_numbers, run_name
from karyoflow.tasks import task_for, task_names


class _Named(dict):
    """Snakemake's named lists: ``.items()`` and attribute access."""

    __getattr__ = dict.__getitem__


def _smk(gpu: int, use_gpu: bool = True):
    return SimpleNamespace(
        params=SimpleNamespace(
            job={
                "task": "classification",
                "dataset": "voc",
                "model": "karyonet_fast",
                "params": {"epochs": 1},
                "seed": 3,
                "use_gpu": use_gpu,
                "mixed_precision": True,
                "tracking": {"experiment": "e", "results": "results"},
            }
        ),
        input=_Named(train="results/train.h5", val="results/val.h5", models=["a", "b"]),
        wildcards=_Named(dataset="voc", model="karyonet_fast", point="adamw-lr0.003"),
        resources={"gpu": gpu},
        rule="train",
        threads=2,
    )


def test_job_from_snakemake_uses_a_gpu_only_when_granted():
    job = Job.from_snakemake(_smk(gpu=1))
    assert job.use_gpu and job.rule == "train" and job.seed == 3 and job.threads == 2
    assert job.file("train") == "results/train.h5" and job.files("models") == ["a", "b"]
    assert not Job.from_snakemake(_smk(gpu=0)).use_gpu
    assert not Job.from_snakemake(_smk(gpu=1, use_gpu=False)).use_gpu
    with pytest.raises(KeyError, match="job train: no input 'test'"):
        job.files("test")
    with pytest.raises(TypeError):
        job.params["epochs"] = 2  # frozen
    with pytest.raises(AttributeError):
        job.seed = 4  # type: ignore[misc]
    assert job.with_(seed=4).seed == 4 and job.seed == 3


def test_run_names_follow_each_task_template():
    job = Job.from_snakemake(_smk(gpu=0))
    cls = task_for("classification")
    assert run_name(cls, job, "train") == "voc/karyonet_fast/adamw-lr0.003"
    assert run_name(cls, job, "evaluate") == "voc/karyonet_fast/evaluate"
    cen = task_for("centromere")
    assert run_name(cen, job.with_(model="centromere_cnn"), "evaluate") == (
        "centromere/centromere_cnn/test"
    )
    assert run_name(task_for("detection"), job, "train") == "detector/voc"


def test_every_task_has_the_interface():
    needed = ("load", "build", "fit_data", "compile_args", "monitor", "validate", "evaluate")
    registries = set()
    for name in task_names():
        task = task_for(name)
        assert all(callable(getattr(task, m)) for m in needed), name
        assert {"train", "evaluate"} <= set(task.run_names) and task.params_key and task.unit
        assert isinstance(task.resolve_params({}), dict)
        registries.add(task.registry)
    assert registries == {"classification", "centromere", "segmentation", "detection"}
    with pytest.raises(ValueError, match="unknown task 'ocr'"):
        task_for("ocr")


def test_merge_params_layers_nesting_and_errors():
    defaults = {"a": 1, "aug": {"x": 0.5}, "prior": {"t": {"21": 0.01}}, "free": {"k": 1}}
    out = merge_params(
        defaults,
        {"a": 2},
        None,
        {"aug": {"x": 0.1}, "prior": {"t": {"8": 0.001}}, "free": {"z": 2}},
        nested=True,
        open_keys=["prior.t"],
        replace=["free"],
    )
    assert out == {"a": 2, "aug": {"x": 0.1}, "prior": {"t": {"21": 0.01, "8": 0.001}},
                   "free": {"z": 2}}  # fmt: skip
    assert defaults["aug"]["x"] == 0.5  # never changed
    with pytest.raises(ValueError, match=r"unknown thing 'aug\.y'"):
        merge_params(defaults, {"aug": {"y": 1}}, what="thing", nested=True)
    with pytest.raises(ValueError, match="option 'aug' must be a mapping"):
        merge_params(defaults, {"aug": 3}, nested=["aug"])
    # without nesting a mapping is replaced whole; with skip_none None keeps the default
    assert merge_params(defaults, {"aug": {"y": 1}})["aug"] == {"y": 1}
    assert merge_params(defaults, {"a": None}, skip_none=True)["a"] == 1


def test_finite_numbers_keep_only_loggable_values():
    assert finite_numbers({"a": 1, "b": float("inf"), "c": None, "d": False}) == {"a": 1.0}
