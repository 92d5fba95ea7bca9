# Shared helpers: config validation, dataset selection and input functions.

import os
from pathlib import Path
import re
import sys

sys.path.insert(0, workflow.basedir)  # karyoflow from this checkout

from karyoflow.config import validate_config
from karyoflow.split import SPLITS

# Jobs import the karyoflow package from this checkout, whatever their environment
# (.venv, or a conda env from envs/ under --sdm conda).
# (Set, not read, so this is no envvars requirement for users.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH", "")) if p
    )
)

validate(config, "../schemas/config.schema.yaml")
# Same schema again through karyoflow: fills defaults inside $ref'd sections and checks
# what a schema cannot (fractions sum to 1, split_with targets).
validate_config(config, source="config")

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
TRACKING = {
    "tracking_uri": config["mlflow"]["tracking_uri"],
    "experiment": config["mlflow"]["experiment"],
    "log_models": config["mlflow"]["log_models"],
    "results": RESULTS,
}


wildcard_constraints:
    dataset="|".join(re.escape(n) for n in config["datasets"]),
    shard=r"\d+",
    split="|".join(SPLITS),
    model="|".join(config["train"]["models"]) or "none",
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


def train_datasets():
    if not (TRAIN["enabled"] and PREPROCESS["enabled"]):
        return []
    return [n for n in TRAIN["datasets"] if n in preprocess_datasets()]


def model_setting(model, key, default=None):
    return (TRAIN["model_settings"].get(model) or {}).get(key) or default


def model_size(model):
    return model_setting(model, "size", SIZES[0])


def grid():
    from karyoflow.train.job import grid_points

    return grid_points(TRAIN["grid"])


def train_file(split):
    def inner(wildcards):
        size = model_size(wildcards.model)
        return f"{RESULTS}/preprocess/{wildcards.dataset}/{size}/{split}.h5"

    return inner


def train_job(wildcards, input):
    from karyoflow.train.trainer import resolve_train_params

    point = grid()[wildcards.point]
    params = resolve_train_params(
        TRAIN["params"], model_setting(wildcards.model, "params", {}), point
    )
    return {
        "dataset": wildcards.dataset,
        "model": wildcards.model,
        "point": wildcards.point,
        "size": model_size(wildcards.model),
        "model_options": model_setting(wildcards.model, "options", {}),
        "weights": model_setting(wildcards.model, "weights"),
        "params": params,
        "seed": SEED,
        "train_files": [input.train],
        "val_files": [input.val],
        "manifest": input.manifest,
        "use_gpu": GPU["enabled"],
        "mixed_precision": GPU["mixed_precision"],
        **TRACKING,
    }


def grid_metrics(wildcards):
    return [
        f"{RESULTS}/train/{wildcards.dataset}/{m}/{p}/metrics.json"
        for m in TRAIN["models"]
        for p in grid()
    ]


def model_files(wildcards):
    return [
        f"{RESULTS}/train/{wildcards.dataset}/{wildcards.model}/{p}/model.keras"
        for p in grid()
    ]


def all_outputs():
    outputs = [
        f"{RESULTS}/manifest/all.{MANIFEST_EXT}",
        f"{RESULTS}/manifest/summary.json",
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
    return outputs


def mlflow_start():
    """Initialise the MLflow store once, before any job, and open the parent run."""
    if not train_datasets():
        return
    import json
    from datetime import datetime, timezone

    from karyoflow.train import tracking

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
    marker.write_text(json.dumps({"run_id": run_id, "tracking_uri": uri}) + "\n")
    print(f"MLflow: {uri} experiment {TRACKING['experiment']!r}, parent run {run_id}")


def mlflow_end(status):
    from karyoflow.train import tracking

    run_id = os.environ.get(tracking.PARENT_ENV)
    if not run_id:
        return
    uri = tracking.resolve_tracking_uri(TRACKING["tracking_uri"], RESULTS)
    results = [f"{RESULTS}/manifest/summary.json"]
    for name in train_datasets():
        results += [
            f"{RESULTS}/train/{name}/grid.csv",
            f"{RESULTS}/train/{name}/best.json",
        ]
        results += [
            f"{RESULTS}/evaluate/{name}/{m}/metrics.json" for m in TRAIN["models"]
        ]
    tracking.end_parent_run(
        uri, run_id, status, [p for p in results if Path(p).exists()]
    )
