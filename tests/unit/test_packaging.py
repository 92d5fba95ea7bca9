"""The conda env files stay in step with the pins in pyproject.toml."""

import re
import tomllib

import yaml


def _pins(specs):
    out = {}
    for spec in specs:
        name, _, version = spec.partition("==")
        out[re.sub(r"\[.*\]", "", name).lower()] = version
    return out


def test_envs_match_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    pins = _pins(project["dependencies"])
    assert all(pins.values()), "every dependency in pyproject.toml is pinned with =="
    gpu = _pins(project["optional-dependencies"]["gpu"])
    for env_file, expected in [
        ("karyoflow.yaml", pins),
        ("karyoflow-gpu.yaml", {**{k: v for k, v in pins.items() if k != "tensorflow-cpu"}, **gpu}),
    ]:
        env = yaml.safe_load((repo / "envs" / env_file).read_text())
        assert "python=3.11" in env["dependencies"]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert _pins(pip) == expected, env_file
