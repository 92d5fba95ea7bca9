# Shared helpers: config validation, dataset selection and input functions.

import os
from pathlib import Path
import re
import sys

sys.path.insert(0, workflow.basedir)  # karyoflow from this checkout

from karyoflow.config import apply_limits, validate_config
from karyoflow.models.table import models_for
from karyoflow.engine.tracking import CONFIG_HASH_ENV, config_hash
from karyoflow.split import SPLITS

# Jobs import the karyoflow package from this checkout, whatever their environment
# (.venv, or a conda env from envs/ under --sdm conda).
# (Set, not read, so this is no envvars requirement for users.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH", "")) if p
    )
)

# karyoflow's validation first: a one-line error naming the key, the words true and false from
# --config read as booleans, defaults filled inside $ref'd sections, and the checks a
# schema cannot make (fractions sum to 1, split_with targets); then Snakemake's own.
validate_config(config, source="config")
validate(config, "../schemas/config.schema.yaml")

RESULTS = "results"
ENV = "../../envs/karyoflow.yaml"
ENV_GPU = "../../envs/karyoflow-gpu.yaml"
SEED = config["seed"]
MANIFEST_EXT = config["manifest_format"]
SYNTH_DIR = f"{RESULTS}/synthetic/{config['synthetic']['name']}"
PREPROCESS = config["preprocess"]
N_SHARDS = PREPROCESS["shards"]
PREPROCESS_KINDS = ("voc", "crops", "centromere_csv")


def preprocess_sizes():
    from karyoflow.preprocess.chain import resolve_params

    return list(resolve_params(PREPROCESS["params"])["sizes"])


SIZES = preprocess_sizes()

TRAIN = config["train"]
GPU = TRAIN["gpu"]
# Training rules ask for GPUs only when the config does; profiles cap `gpu` at what the
# machine has (0 on a CPU machine), and a job that gets one pins itself to it.
GPU_RESOURCES = {}
if GPU["enabled"]:
    GPU_RESOURCES = {"gpu": GPU["per_job"], "gpu_manufacturer": "nvidia"}
    if GPU["model"]:
        GPU_RESOURCES["gpu_model"] = GPU["model"]
TRAIN_THREADS = 2
# One resources block for every training rule (cluster profiles need no per-rule lists).
TRAIN_RESOURCES = {
    **GPU_RESOURCES,
    **{k: v for k, v in TRAIN["resources"].items() if v is not None},
}
TRACKING = {
    "tracking_uri": config["mlflow"]["tracking_uri"],
    "experiment": config["mlflow"]["experiment"],
    "log_models": config["mlflow"]["log_models"],
    "results": RESULTS,
}
# Jobs tag their MLflow runs with the hash of the whole (validated) config.
os.environ.update({CONFIG_HASH_ENV: config_hash(config)})
# Every job applies the image limits of the config (its environment carries them).
apply_limits(config)


wildcard_constraints:
    dataset="|".join(
        re.escape(n)
        for n in [
            *config["datasets"],
            *config["train"]["unions"],
            *config["train"]["subsets"],
        ]
    ),
    external="|".join(re.escape(n) for n in config["datasets"]),
    shard=r"\d+",
    split="|".join(SPLITS),
    model="|".join(config["train"]["models"]) or "none",
    cmodel="|".join(models_for("centromere")),
    seg_model="|".join(models_for("segmentation")),
    point=r"[a-z]+-lr[0-9.e+-]+",
    name=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",


def datasets():
    """Names of the enabled datasets, in config order."""
    return [n for n, e in config["datasets"].items() if e.get("enabled", True)]


def preprocess_datasets():
    """Datasets to preprocess: the configured list, else every single-chromosome kind."""
    if not PREPROCESS["enabled"]:
        return []
    chosen = PREPROCESS["datasets"]
    if chosen is None:
        chosen = [
            n for n in datasets() if config["datasets"][n]["kind"] in PREPROCESS_KINDS
        ]
    return [n for n in chosen if n in datasets()]


def dataset_entry(wildcards):
    return config["datasets"][wildcards.dataset]


def manifest_path(name):
    return f"{RESULTS}/manifest/{name}.{MANIFEST_EXT}"


def ingest_inputs(wildcards):
    """The synthetic data when the dataset lives in it; the split_with manifest."""
    entry = config["datasets"][wildcards.dataset]
    inputs = {}
    synth = os.path.normpath(SYNTH_DIR)
    if os.path.normpath(entry["path"]).startswith(synth + os.sep):
        if not config["synthetic"]["enabled"]:
            raise ValueError(
                f"config: datasets/{wildcards.dataset}: {entry['path']} is synthetic "
                "output but synthetic/enabled is false"
            )
        inputs["synthetic"] = SYNTH_DIR
    if entry.get("split_with"):
        inputs["split_with"] = manifest_path(entry["split_with"])
    return inputs


UNIONS = TRAIN["unions"]


SUBSETS = TRAIN["subsets"]


def members(name):
    """The datasets a training entry trains on: a union's members, a subset's dataset,
    or the dataset."""
    if name in SUBSETS:
        return [SUBSETS[name]["dataset"]]
    return list(UNIONS.get(name) or [name])


def curve_datasets():
    """Datasets with learning-curve subsets among the training entries."""
    return sorted({SUBSETS[n]["dataset"] for n in train_datasets() if n in SUBSETS})


def curve_metrics(wildcards):
    """Test metrics of every model of the dataset's subsets (and of the dataset)."""
    entries = [n for n in train_datasets() if members(n) == [wildcards.dataset]]
    return [
        f"{RESULTS}/evaluate/{n}/{m}/metrics.json"
        for n in entries
        for m in TRAIN["models"]
    ]


def curve_entries(wildcards):
    """Entry -> its training cells (null: all) and start, for the curve summary."""
    out = {}
    for n in train_datasets():
        if members(n) != [wildcards.dataset]:
            continue
        sub = SUBSETS.get(n) or {}
        start = sub.get("weights") or model_setting(TRAIN["models"][0], "weights")
        out[n] = {"train_cells": sub.get("train_cells"), "start": start or "scratch"}
    return out


def train_datasets():
    """Training entries (datasets or unions) whose every dataset is preprocessed."""
    if not (TRAIN["enabled"] and PREPROCESS["enabled"]):
        return []
    ready = preprocess_datasets()
    return [n for n in TRAIN["datasets"] if all(m in ready for m in members(n))]


def train_manifests(wildcards):
    """The manifests of a training entry's datasets (one per union member)."""
    return [manifest_path(m) for m in members(wildcards.dataset)]


EXTERNAL = config["evaluate"]["external"]


def external_datasets(name):
    """Preprocessed datasets a training entry's models are also tested on (its own
    datasets left out): each one's test split (all of it under split_as: test)."""
    if not EXTERNAL:
        return []
    ready = preprocess_datasets()
    return [e for e in EXTERNAL if e in ready and e not in members(name)]


def external_outputs(name):
    return [
        f"{RESULTS}/evaluate/{name}/{m}/external/{e}/metrics.json"
        for m in TRAIN["models"]
        for e in external_datasets(name)
    ]


def model_setting(model, key, default=None):
    return (TRAIN["model_settings"].get(model) or {}).get(key) or default


def model_size(model):
    return model_setting(model, "size", SIZES[0])


def grid():
    from karyoflow.tasks.classification.grid import grid_points

    return grid_points(TRAIN["grid"])


def train_file(split):
    """The split's file of every dataset of the training entry (one for a dataset)."""

    def inner(wildcards):
        size = model_size(wildcards.model)
        return [
            f"{RESULTS}/preprocess/{m}/{size}/{split}.h5"
            for m in members(wildcards.dataset)
        ]

    return inner


def external_file(wildcards):
    size = model_size(wildcards.model)
    return f"{RESULTS}/preprocess/{wildcards.external}/{size}/test.h5"


def job_spec(task, *, dataset, model, params, **fields):
    """params.job of a rule of the engine (karyoflow.engine.Job.from_snakemake adds
    the rule, inputs and wildcards)."""
    return {
        "task": task,
        "dataset": dataset,
        "model": model,
        "params": params,
        "seed": SEED,
        "use_gpu": GPU["enabled"],
        "mixed_precision": GPU["mixed_precision"],
        "tracking": TRACKING,
        **fields,
    }


def train_weights(wildcards):
    """The file a training job starts from, as an input (a workflow output is built
    first); none for fresh weights or an MLflow model URI / champion."""
    weights = (SUBSETS.get(wildcards.dataset) or {}).get("weights") or model_setting(
        wildcards.model, "weights"
    )
    return (
        [weights] if weights and weights != "champion" and ":/" not in weights else []
    )


def train_job(wildcards):
    from karyoflow.tasks.classification.task import resolve_train_params

    point = grid()[wildcards.point]
    return job_spec(
        "classification",
        dataset=wildcards.dataset,
        model=wildcards.model,
        params=resolve_train_params(
            TRAIN["params"], model_setting(wildcards.model, "params", {}), point
        ),
        size=model_size(wildcards.model),
        options=model_setting(wildcards.model, "options", {}),
        weights=(SUBSETS.get(wildcards.dataset) or {}).get("weights")
        or model_setting(wildcards.model, "weights"),
        settings={
            "train_cells": (SUBSETS.get(wildcards.dataset) or {}).get("train_cells")
        },
    )


def evaluate_job(wildcards, register=True):
    """Job of the evaluate rules; register=False: an external test set (the model is
    registered by its own test split only)."""
    return job_spec(
        "classification",
        dataset=wildcards.dataset,
        model=wildcards.model,
        params={},
        size=model_size(wildcards.model),
        settings={
            "select_by": TRAIN["select_by"],
            "decode": config["evaluate"],
            "tta": config["evaluate"]["tta"],
            "register": register,
        },
    )


def external_job(wildcards):
    return evaluate_job(wildcards, register=False)


def grid_metrics(wildcards):
    return [
        f"{RESULTS}/train/{wildcards.dataset}/{m}/{p}/metrics.json"
        for m in TRAIN["models"]
        for p in grid()
    ]


def model_files(wildcards, name="model.keras"):
    return [
        f"{RESULTS}/train/{wildcards.dataset}/{wildcards.model}/{p}/{name}"
        for p in grid()
    ]


def calibration_files(wildcards):
    return model_files(wildcards, "calibration.json")


CENTROMERE = config["centromere"]


def centromere_datasets():
    """Preprocessed datasets whose known centromeres train the centromere models."""
    if not (CENTROMERE["enabled"] and PREPROCESS["enabled"]):
        return []
    return [n for n in CENTROMERE["datasets"] if n in preprocess_datasets()]


def centromere_models():
    return list(CENTROMERE["models"]) if centromere_datasets() else []


def centromere_size():
    return CENTROMERE["size"] or SIZES[0]


def centromere_files(split):
    return [
        f"{RESULTS}/preprocess/{n}/{centromere_size()}/{split}.h5"
        for n in centromere_datasets()
    ]


def centromere_job(wildcards):
    from karyoflow.tasks.centromere.task import resolve_centromere_params

    settings = CENTROMERE["model_settings"].get(wildcards.cmodel) or {}
    return job_spec(
        "centromere",
        dataset="+".join(centromere_datasets()),
        model=wildcards.cmodel,
        params=resolve_centromere_params(
            CENTROMERE["params"], settings.get("params") or {}
        ),
        size=centromere_size(),
        options=settings.get("options") or {},
        settings={"figure_count": CENTROMERE["figure_count"]},
    )


def _detect_choice():
    """detect.datasets (datasets, or unions of train.unions), else every enabled voc
    dataset."""
    chosen = config["detect"]["datasets"]
    if chosen is None:
        chosen = [n for n in datasets() if config["datasets"][n]["kind"] == "voc"]
    return [n for n in chosen if all(m in datasets() for m in members(n))]


def detect_datasets():
    """Datasets for detect_evaluate (the classical detector)."""
    return _detect_choice() if config["detect"]["evaluate"] else []


def learned_detect_datasets():
    """Datasets whose learned detector is trained and evaluated (detect.learned)."""
    return _detect_choice() if config["detect"]["learned"]["enabled"] else []


def detector_weights(wildcards):
    """The detector to fine-tune from, as an input of train_detector (none: fresh)."""
    weights = config["detect"]["learned"]["weights"]
    return [weights] if weights else []


def detector_job(wildcards):
    from karyoflow.tasks.detection.task import resolve_detector_params

    return job_spec(
        "detection",
        dataset=wildcards.dataset,
        model="centernet",
        params=resolve_detector_params(config["detect"]["learned"]["params"]),
        weights=config["detect"]["learned"]["weights"],
    )


def detector_evaluate_job(wildcards):
    return job_spec(
        "detection",
        dataset=wildcards.dataset,
        model="centernet",
        params=config["detect"]["params"],
        settings={"overlay_cells": config["detect"]["overlay_cells"]},
    )


OVERLAPS = config["overlaps"]


def overlap_datasets():
    """Enabled datasets to make pairs from (single-chromosome kinds or overlaps_h5)."""
    if not OVERLAPS["enabled"]:
        return []
    return [n for n in OVERLAPS["datasets"] if n in datasets()]


def overlap_models():
    return list(OVERLAPS["models"]) if overlap_datasets() else []


def overlaps_outputs():
    outputs = []
    for name in overlap_datasets():
        outputs.append(f"{RESULTS}/overlaps/{name}/pairs/summary.json")
        outputs += expand(
            f"{RESULTS}/overlaps/{name}/{{seg_model}}/test/metrics.json",
            seg_model=OVERLAPS["models"],
        )
    return outputs


def pairs_file(split):
    return f"{RESULTS}/overlaps/{{dataset}}/pairs/{split}.h5"


def segmentation_job(wildcards, views=True):
    """Job of a segmentation rule; views=False: one test-time view (training: tta only
    changes the evaluation, so changing it does not retrain the model)."""
    from karyoflow.tasks.segmentation.task import resolve_seg_params

    settings = OVERLAPS["model_settings"].get(wildcards.seg_model) or {}
    params = resolve_seg_params(OVERLAPS["params"], settings.get("params"))
    if not views:
        params["tta"] = 1
    return job_spec(
        "segmentation",
        dataset=wildcards.dataset,
        model=wildcards.seg_model,
        params=params,
        options=settings.get("options") or {},
        settings={"samples": OVERLAPS["figure_samples"]},
    )


def segmentation_train_job(wildcards):
    return segmentation_job(wildcards, views=False)


PREDICT = config["predict"]


def is_voc(name):
    """A VOC dataset (a union is none: its cells are predicted by their own datasets)."""
    return name in config["datasets"] and config["datasets"][name]["kind"] == "voc"


def predict_datasets():
    """Trained VOC datasets whose cells get karyograms (predict.datasets or all)."""
    if not (PREDICT["enabled"] and TRAIN["enabled"]):
        return []
    voc = [d for d in train_datasets() if is_voc(d)]
    chosen = PREDICT["datasets"]
    return voc if chosen is None else [d for d in voc if d in chosen]


def predict_detector(wildcards):
    """The learned detector's model when predict.boxes is 'learned' (else nothing)."""
    if PREDICT["boxes"] != "learned":
        return []
    return [f"{RESULTS}/detect/{wildcards.dataset}/learned/model.keras"]


CALLS = config["calls"]


def calls_datasets():
    """Trained VOC datasets whose calls are evaluated end to end (calls.datasets or all)."""
    if not (CALLS["enabled"] and TRAIN["enabled"]):
        return []
    voc = [d for d in train_datasets() if is_voc(d)]
    chosen = CALLS["datasets"]
    return voc if chosen is None else [d for d in voc if d in chosen]


def calls_detector(wildcards):
    """The learned detector for evaluate_calls' image-only pass (none: the classical)."""
    choice = CALLS["detector"]
    if choice == "auto":
        learned = wildcards.dataset in learned_detect_datasets()
        choice = "learned" if learned else "classical"
    if choice != "learned":
        return []
    return [f"{RESULTS}/detect/{wildcards.dataset}/learned/model.keras"]


def calls_detector_metrics(wildcards):
    """The detector's val figures (its miss and false-box rates) for the image-only pass."""
    if calls_detector(wildcards):
        return [f"{RESULTS}/detect/{wildcards.dataset}/learned/train_metrics.json"]
    if wildcards.dataset in detect_datasets():
        return [f"{RESULTS}/detect/{wildcards.dataset}/metrics.json"]
    return []


def all_model_files(wildcards, names=("model.keras", "calibration.json")):
    return [
        f"{RESULTS}/train/{wildcards.dataset}/{m}/{p}/{name}"
        for m in TRAIN["models"]
        for p in grid()
        for name in names
    ]


def all_outputs():
    outputs = [
        f"{RESULTS}/manifest/all.{MANIFEST_EXT}",
        "results/manifest/summary.json",
    ]
    if config["synthetic"]["enabled"]:
        outputs.append(f"{SYNTH_DIR}")
    for name in preprocess_datasets():
        outputs += expand(
            f"{RESULTS}/preprocess/{name}/{{size}}/{{split}}.h5",
            size=SIZES,
            split=SPLITS,
        )
        outputs += [
            f"{RESULTS}/preprocess/{name}/summary.json",
            f"{RESULTS}/preprocess/{name}/qc.png",
        ]
    for name in train_datasets():
        outputs += [
            f"{RESULTS}/train/{name}/grid.csv",
            f"{RESULTS}/train/{name}/grid.png",
        ]
        outputs += expand(
            f"{RESULTS}/evaluate/{name}/{{model}}/metrics.json", model=TRAIN["models"]
        )
        if external_datasets(name):
            outputs.append(f"{RESULTS}/evaluate/{name}/external.csv")
    outputs += [f"{RESULTS}/curves/{d}.csv" for d in curve_datasets()]
    outputs += expand(
        "results/centromere/{cmodel}/test/metrics.json", cmodel=centromere_models()
    )
    for name in detect_datasets():
        outputs.append(f"{RESULTS}/detect/{name}/metrics.json")
    for name in learned_detect_datasets():
        outputs.append(f"{RESULTS}/detect/{name}/learned/metrics.json")
    outputs += overlaps_outputs()
    for name in predict_datasets():
        outputs.append(f"{RESULTS}/predict/{name}/summary.csv")
    for name in calls_datasets():
        outputs.append(f"{RESULTS}/calls/{name}/metrics.json")
    return outputs


def mlflow_start():
    """Initialise the MLflow store once, before any job, and open the parent run."""
    if not (
        train_datasets()
        or centromere_models()
        or overlap_models()
        or learned_detect_datasets()
    ):
        return
    import json
    from datetime import datetime, timezone

    from karyoflow.engine import tracking

    uri = tracking.resolve_tracking_uri(TRACKING["tracking_uri"], RESULTS)
    tracking.init_store(uri, TRACKING["experiment"], RESULTS)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_id = tracking.start_parent_run(
        uri,
        TRACKING["experiment"],
        name=f"workflow {stamp}",
        tags={"git_commit": tracking.git_commit(workflow.basedir), "seed": str(SEED)},
    )
    os.environ[tracking.PARENT_ENV] = run_id
    marker = Path(RESULTS) / "mlflow" / "parent_run.json"
    marker.parent.mkdir(parents=True, exist_ok=True)  # not made by an HTTP store
    marker.write_text(json.dumps({"run_id": run_id, "tracking_uri": uri}) + "\n")
    print(f"MLflow: {uri} experiment {TRACKING['experiment']!r}, parent run {run_id}")


def parent_run_tables():
    """The tables the parent run keeps: every JSON / CSV file in the folder of a final
    JSON / CSV output (all_outputs), so the list follows the outputs."""
    folders = sorted(
        {Path(p).parent for p in all_outputs() if Path(p).suffix in (".json", ".csv")}
    )
    return [
        str(f)
        for folder in folders
        for f in sorted(folder.glob("*"))
        if f.suffix in (".json", ".csv") and f.is_file()
    ]


def mlflow_end(status):
    from karyoflow.engine import tracking

    run_id = os.environ.get(tracking.PARENT_ENV)
    if not run_id:
        return
    uri = tracking.resolve_tracking_uri(TRACKING["tracking_uri"], RESULTS)
    results = parent_run_tables()
    # artifacts keep their folder under results/ (several metrics.json must not collide)
    tracking.end_parent_run(
        uri,
        run_id,
        status,
        [p for p in results if Path(p).exists()],
        results=RESULTS,
        metrics=tracking.evaluation_summary(results),
    )
