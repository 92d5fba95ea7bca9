"""Load and validate the workflow configuration.

The same JSON schema (``workflow/schemas/config.schema.yaml``) is used by the Snakefile
(``snakemake.utils.validate``) and by the ``karyoflow`` command, so a bad config fails
the same way everywhere: one line naming the file and the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PROJECT_ROOT",
    "SCHEMA_PATH",
    "ConfigError",
    "apply_limits",
    "check_semantics",
    "load_config",
    "validate_config",
]

#: Repository root (the package is installed in editable mode from it).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is unreadable or does not match the schema."""


def validate_config(
    config: dict[str, Any], *, source: str = "config", schema: str | Path = SCHEMA_PATH
) -> dict[str, Any]:
    """Validate ``config`` in place against the schema and fill defaults.

    Raises
    ------
    ConfigError
        ``"<source>: <key path>: <problem>"``.
    """
    import jsonschema

    with open(schema, encoding="utf-8") as fh:
        schema_doc = yaml.safe_load(fh)
    _coerce_booleans(config, schema_doc, schema_doc)
    validator_cls = jsonschema.validators.validator_for(schema_doc)
    errors = sorted(validator_cls(schema_doc).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise ConfigError(f"{source}: {where}: {err.message}")
    _fill_defaults(config, schema_doc, schema_doc)
    check_semantics(config, source)
    return config


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        for part in ref[2:].split("/"):
            root = root[part]
        return root
    return node


def _fill_defaults(value: Any, node: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    node = _resolve(node, root)
    if not isinstance(value, dict):
        return
    for key, sub in (node.get("properties") or {}).items():
        sub = _resolve(sub, root)
        if key not in value and "default" in sub:
            default = sub["default"]
            value[key] = yaml.safe_load(yaml.safe_dump(default))  # deep copy
        if key in value:
            _fill_defaults(value[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, item in value.items():
            if key not in (node.get("properties") or {}):
                _fill_defaults(item, extra, root)


def check_semantics(config: Mapping[str, Any], source: str = "config") -> None:
    """Checks a schema cannot express: fractions, synth/preprocess params, references."""
    fractions = config["split"]["fractions"]
    total = sum(float(v) for v in fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"{source}: split/fractions: must sum to 1, got {total:g}")
    synthetic = config.get("synthetic", {})
    if synthetic.get("enabled", True):
        from karyoflow.synth.dataset import resolve_params

        try:
            resolve_params(synthetic.get("params") or {})
        except ValueError as exc:
            raise ConfigError(f"{source}: synthetic/params: {exc}") from None
    datasets = config["datasets"]
    for name in (config.get("evaluate") or {}).get("external") or []:
        if name not in datasets:
            raise ConfigError(f"{source}: evaluate/external: no dataset {name!r}")
    pre = config.get("preprocess", {})
    if pre.get("enabled", True):
        for name in pre.get("datasets") or []:
            if name not in datasets:
                raise ConfigError(f"{source}: preprocess/datasets: no dataset {name!r}")
        from karyoflow.preprocess.chain import resolve_params as resolve_pre

        try:
            resolve_pre(pre.get("params") or {})
        except ValueError as exc:
            raise ConfigError(f"{source}: preprocess/params: {exc}") from None
    _check_train(config, source)
    _check_centromere(config, source)
    _check_overlaps(config, source)
    detect = config.get("detect") or {}
    try:
        from karyoflow.tasks.detection.pipeline import resolve_params as resolve_detect

        resolve_detect(detect.get("params") or {})
    except ValueError as exc:
        raise ConfigError(f"{source}: detect/params: {exc}") from None
    try:
        from karyoflow.tasks.detection.task import resolve_detector_params

        resolve_detector_params((detect.get("learned") or {}).get("params") or {})
    except ValueError as exc:
        raise ConfigError(f"{source}: detect/learned/params: {exc}") from None
    predict = config.get("predict") or {}
    if predict.get("boxes") == "learned" and not (detect.get("learned") or {}).get("enabled"):
        raise ConfigError(f"{source}: predict/boxes: 'learned' needs detect/learned/enabled: true")
    for name, entry in datasets.items():
        other = entry.get("split_with")
        if other is None:
            continue
        if other not in datasets or other == name:
            raise ConfigError(f"{source}: datasets/{name}/split_with: no other dataset {other!r}")
        if datasets[other].get("split_with"):
            raise ConfigError(
                f"{source}: datasets/{name}/split_with: {other!r} must not itself use split_with"
            )


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, apply top-level ``overrides``, validate, fill defaults.

    Raises
    ------
    ConfigError
        The file is missing, not YAML, not a mapping, or fails the schema.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML: {first}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    config.update(overrides or {})
    return validate_config(config, source=str(path))


def _coerce_booleans(config: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """``"true"`` / ``"false"`` (any case) where the schema wants a boolean, in place:
    ``snakemake --config strict=true`` passes the word as a string."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if not isinstance(config, dict):
        return
    for key, sub in (schema.get("properties") or {}).items():
        value = config.get(key)
        if sub.get("type") == "boolean" and isinstance(value, str):
            if value.strip().lower() in ("true", "false"):
                config[key] = value.strip().lower() == "true"
        elif isinstance(value, dict):
            _coerce_booleans(value, sub, root)


def apply_limits(config: Mapping[str, Any]) -> None:
    """Make config ``limits`` the image limits of this process and of the processes it
    starts (:func:`karyoflow.imageio.set_image_limits`)."""
    from karyoflow.imageio import ImageLimits, set_image_limits

    limits = config.get("limits") or {}
    defaults = ImageLimits()
    set_image_limits(
        ImageLimits(
            max_pixels=int(limits.get("max_image_pixels", defaults.max_pixels)),
            max_bytes=int(limits.get("max_image_bytes", defaults.max_bytes)),
        )
    )


def _check_train(config: Mapping[str, Any], source: str) -> None:
    train = config.get("train") or {}
    if not train.get("enabled", True) or not train.get("datasets"):
        return
    pre = config.get("preprocess") or {}
    if not pre.get("enabled", True):
        raise ConfigError(f"{source}: train: needs preprocess/enabled: true")
    from karyoflow.preprocess.chain import resolve_params as resolve_pre
    from karyoflow.tasks.classification.task import resolve_train_params

    sizes = resolve_pre(pre.get("params") or {})["sizes"]
    unions = train.get("unions") or {}
    for name, members in unions.items():
        if name in config["datasets"]:
            raise ConfigError(f"{source}: train/unions/{name}: also the name of a dataset")
        for member in members:
            if member not in config["datasets"]:
                raise ConfigError(f"{source}: train/unions/{name}: no dataset {member!r}")
    subsets = train.get("subsets") or {}
    for name, sub in subsets.items():
        if name in config["datasets"] or name in unions:
            raise ConfigError(f"{source}: train/subsets/{name}: also the name of a dataset")
        if sub["dataset"] not in config["datasets"]:
            raise ConfigError(f"{source}: train/subsets/{name}: no dataset {sub['dataset']!r}")
    parts = {**unions, **{n: [s["dataset"]] for n, s in subsets.items()}}
    members = [m for n in train["datasets"] for m in parts.get(n, [n])]
    for name in members:
        if name not in config["datasets"]:
            raise ConfigError(f"{source}: train/datasets: no dataset {name!r}")
        kind = config["datasets"][name]["kind"]
        if kind not in ("voc", "crops", "centromere_csv"):
            raise ConfigError(
                f"{source}: train/datasets: {name!r} ({kind}) has no chromosome crops"
            )
        chosen = pre.get("datasets")
        if chosen is not None and name not in chosen:
            raise ConfigError(f"{source}: train/datasets: {name!r} is not in preprocess/datasets")
    try:
        resolve_train_params(train.get("params"))
    except ValueError as exc:
        raise ConfigError(f"{source}: train/params: {exc}") from None
    settings = train.get("model_settings") or {}
    for model in train.get("models", []):
        size = (settings.get(model) or {}).get("size") or next(iter(sizes))
        if size not in sizes:
            raise ConfigError(
                f"{source}: train/model_settings/{model}/size: {size!r} is not a preprocess "
                f"size ({sorted(sizes)})"
            )
        try:
            resolve_train_params(train.get("params"), (settings.get(model) or {}).get("params"))
        except ValueError as exc:
            raise ConfigError(f"{source}: train/model_settings/{model}/params: {exc}") from None


def _check_centromere(config: Mapping[str, Any], source: str) -> None:
    cen = config.get("centromere") or {}
    if not cen.get("enabled", True) or not cen.get("datasets"):
        return
    for name in cen["datasets"]:
        if name not in config["datasets"]:
            raise ConfigError(f"{source}: centromere/datasets: no dataset {name!r}")
    size = cen.get("size")
    if size is not None:
        from karyoflow.preprocess.chain import resolve_params as resolve_pre

        sizes = resolve_pre((config.get("preprocess") or {}).get("params") or {})["sizes"]
        if size not in sizes:
            raise ConfigError(
                f"{source}: centromere/size: {size!r} is not a preprocess size ({sorted(sizes)})"
            )
    from karyoflow.tasks.centromere.task import resolve_centromere_params

    settings = cen.get("model_settings") or {}
    try:
        resolve_centromere_params(cen.get("params"))
        for entry in settings.values():
            resolve_centromere_params(cen.get("params"), (entry or {}).get("params"))
    except ValueError as exc:
        raise ConfigError(f"{source}: centromere/params: {exc}") from None


def _check_overlaps(config: Mapping[str, Any], source: str) -> None:
    from karyoflow.tasks.segmentation.task import check_overlaps_config

    try:
        check_overlaps_config(config.get("overlaps") or {}, config["datasets"])
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
