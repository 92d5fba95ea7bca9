import copy
import subprocess
import sys

import pytest
import yaml

from karyoflow.config import ConfigError, load_config, validate_config


@pytest.fixture
def default_config(repo):
    with open(repo / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def test_default_config_valid_and_filled(repo):
    config = load_config(repo / "config" / "config.yaml")
    assert config["seed"] == 42
    assert config["split"]["honour_preset"] is True
    assert config["datasets"]["synthetic_pairs"]["options"] == {}


def test_examples_valid(repo):
    examples = sorted((repo / "config" / "examples").glob("*.yaml"))
    assert examples, "config/examples is empty"
    for path in examples:
        load_config(path)


@pytest.mark.parametrize(
    ("base_name", "hu_name"),
    [
        ("karyograms_612.yaml", "karyograms_612_hu2019.yaml"),
        ("taichung_voc.yaml", "taichung_voc_hu2019.yaml"),
    ],
)
def test_hu2019_baseline_uses_the_karyonet_split(repo, base_name, hu_name):
    """A baseline example must see the same cells, split, crops and views as its base."""
    ex = repo / "config" / "examples"
    base, hu = load_config(ex / base_name), load_config(ex / hu_name)
    for key in ("seed", "datasets", "split", "preprocess", "evaluate"):
        assert hu[key] == base[key], key
    assert hu["train"]["models"] == ["hu2019"] and base["train"]["models"] == ["karyonet_fast"]


def test_long_detector_example_uses_the_taichung_split(repo):
    """The detection-only example trains on the same metaphases and split as taichung_voc."""
    ex = repo / "config" / "examples"
    base, long = (
        load_config(ex / "taichung_voc.yaml"),
        load_config(ex / "taichung_detect_long.yaml"),
    )
    for key in ("seed", "datasets", "split"):
        assert long[key] == base[key], key
    assert long["detect"]["learned"]["enabled"] and not long["train"]["enabled"]
    assert (
        long["detect"]["learned"]["params"]["epochs"]
        > base["detect"]["learned"]["params"]["epochs"]
    )


def test_finetune_example_continues_the_long_detector(repo):
    """The fine-tuning example is the long one with starting weights, a larger scale,
    fewer epochs and a lower rate; the network (so the weights' shapes) is the same."""
    ex = repo / "config" / "examples"
    long = load_config(ex / "taichung_detect_long.yaml")
    tuned = load_config(ex / "taichung_detect_finetune.yaml")
    for key in ("seed", "datasets", "split", "preprocess", "train"):
        assert tuned[key] == long[key], key
    learned, before = tuned["detect"]["learned"], long["detect"]["learned"]
    assert learned["weights"] == "models/taichung_detector_long.keras" and not before["weights"]
    changed = {k for k in learned["params"] if learned["params"][k] != before["params"].get(k)}
    assert changed == {"scale", "epochs", "learning_rate"}
    assert learned["params"]["scale"] > 0.5 and learned["params"]["learning_rate"] < 0.002


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(seed=-1), "seed"),
        (lambda c: c.update(seed="abc"), "seed"),
        (lambda c: c.update(sead=1), "sead"),
        (
            lambda c: c["datasets"]["synthetic_voc"].update(kind="jpeg"),
            "datasets/synthetic_voc/kind",
        ),
        (lambda c: c["datasets"]["synthetic_voc"].pop("path"), "datasets/synthetic_voc"),
        (lambda c: c.update(datasets={}), "datasets"),
        (lambda c: c["split"]["fractions"].update(train=0.9), "must sum to 1"),
        (lambda c: c["datasets"]["synthetic_centromeres"].update(split_with="nope"), "split_with"),
        (lambda c: c["detect"]["learned"].update(weights=3), "detect/learned/weights"),
        (lambda c: c.update(strict="maybe"), "strict: 'maybe' is not of type 'boolean'"),
        (  # reader options are checked per kind: a typo is an error, not ignored
            lambda c: c["datasets"]["synthetic_voc"].update(options={"idss": "ids.txt"}),
            "datasets/synthetic_voc/options: Additional properties are not allowed ('idss'",
        ),
        (
            lambda c: c["datasets"]["synthetic_voc"].update(options={"box_tolerance": "two"}),
            "datasets/synthetic_voc/options/box_tolerance: 'two' is not of type 'integer'",
        ),
        (lambda c: c.update(limits={"max_image_pixels": 0}), "limits/max_image_pixels"),
    ],
)
def test_bad_config_one_line_error(default_config, mutate, message):
    config = copy.deepcopy(default_config)
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config, source="my.yaml")
    text = str(info.value)
    assert text.startswith("my.yaml: ") and message in text and "\n" not in text


def test_words_for_booleans_from_the_command_line(default_config):
    """``snakemake --config strict=true`` gives the string "true"."""
    config = copy.deepcopy(default_config)
    config["strict"] = "true"
    config["mlflow"]["log_models"] = "False"
    validate_config(config, source="cli")
    assert config["strict"] is True and config["mlflow"]["log_models"] is False


def test_unreadable_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")


def test_cli_check_config(repo, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: {}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "karyoflow.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"karyoflow: {bad}: datasets")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_configuration_reference_is_current(repo):
    """docs/configuration.md is what `karyoflow config-reference` prints today: every
    schema key and every option table of the code is in it."""
    from karyoflow.config_reference import OPEN_SECTIONS, reference_markdown

    text = reference_markdown()
    assert (repo / "docs" / "configuration.md").read_text() == text, (
        "docs/configuration.md is stale: karyoflow config-reference > docs/configuration.md"
    )
    for needle in ("`limits.max_image_pixels`", "`train.resources.mem_mb`",
                   "`datasets.<name>.split_as`", "| `box_tolerance` | integer |"):  # fmt: skip
        assert needle in text
    for section, (_name, table) in OPEN_SECTIONS().items():
        assert f"### `{section}`" in text and all(f"| `{k}` |" in text for k in table)
