# Shared helpers: config validation, dataset selection and input functions.

import os
import sys

sys.path.insert(0, workflow.basedir)  # karyoflow from this checkout

from karyoflow.config import validate_config

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


wildcard_constraints:
    dataset=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    name=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",


def datasets():
    """Names of the enabled datasets, in config order."""
    return [n for n, e in config["datasets"].items() if e.get("enabled", True)]


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
    return outputs
