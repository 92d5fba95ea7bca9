# Shared helpers: config validation, dataset selection and input functions.

import os
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


wildcard_constraints:
    dataset="|".join(re.escape(n) for n in config["datasets"]),
    shard=r"\d+",
    split="|".join(SPLITS),
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
    return outputs
