"""The configuration reference (``docs/configuration.md``), generated from the JSON
schema and from the option tables the code validates open sections against.

``karyoflow config-reference > docs/configuration.md`` writes it; a test checks that
the file is what the schema and code give today.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from karyoflow.config import SCHEMA_PATH

__all__ = ["OPEN_SECTIONS", "reference_markdown"]


def _open_sections() -> dict[str, tuple[str, Mapping[str, Any]]]:
    from karyoflow.preprocess.chain import DEFAULT_PARAMS as PREPROCESS
    from karyoflow.tasks.centromere.task import DEFAULT_CENTROMERE_TRAIN
    from karyoflow.tasks.classification.task import DEFAULT_TRAIN
    from karyoflow.tasks.detection.pipeline import DEFAULT_PARAMS as DETECT
    from karyoflow.tasks.detection.task import DEFAULT_DETECTOR_TRAIN
    from karyoflow.tasks.segmentation.task import DEFAULT_SEG_TRAIN

    return {
        "preprocess.params": ("karyoflow.preprocess.chain.DEFAULT_PARAMS", PREPROCESS),
        "train.params": ("karyoflow.tasks.classification.task.DEFAULT_TRAIN", DEFAULT_TRAIN),
        "detect.params": ("karyoflow.tasks.detection.pipeline.DEFAULT_PARAMS", DETECT),
        "detect.learned.params": (
            "karyoflow.tasks.detection.task.DEFAULT_DETECTOR_TRAIN",
            DEFAULT_DETECTOR_TRAIN,
        ),
        "centromere.params": (
            "karyoflow.tasks.centromere.task.DEFAULT_CENTROMERE_TRAIN",
            DEFAULT_CENTROMERE_TRAIN,
        ),
        "overlaps.params": (
            "karyoflow.tasks.segmentation.task.DEFAULT_SEG_TRAIN",
            DEFAULT_SEG_TRAIN,
        ),
    }


#: Config sections the schema leaves open: their keys are checked by the code, against
#: these tables of defaults (section -> (table name, table)).
OPEN_SECTIONS = _open_sections


def _type(node: Mapping[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_type(n) for n in node["oneOf"])
    t = node.get("type", "")
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array" and isinstance(node.get("items"), Mapping) and node["items"].get("type"):
        return f"list of {_type(node['items'])}"
    return t or "any"


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def _rows(node: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Iterator[str]:
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    for key, sub in (node.get("properties") or {}).items():
        full = f"{path}{key}"
        target = root["$defs"][sub["$ref"].rsplit("/", 1)[-1]] if "$ref" in sub else sub
        default = _value(target["default"]) if "default" in target else ""
        about = " ".join(str(target.get("description", "")).split())
        yield f"| `{full}` | {_type(target)} | {default} | {about} |"
        if target.get("properties"):
            yield from _rows(target, root, f"{full}.")


def reference_markdown() -> str:
    """The whole reference as Markdown."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    head = [
        "# Configuration reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` and the option tables of the",
        "code by `karyoflow config-reference > docs/configuration.md` (a test keeps it",
        "current). `config/config.yaml` holds the defaults with comments; examples are in",
        "`config/examples/`. Every key is validated: an unknown key or a wrong type stops",
        "the run with one line naming it.",
        "",
    ]
    out = list(head)
    for key, node in schema["properties"].items():
        out += [f"## `{key}`", ""]
        rows = list(_rows({"properties": {key: node}}, schema, ""))
        out += ["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""]
    out += ["## Datasets", "", "`datasets.<name>` entries, one per dataset:", ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    out += [
        r.replace("| `", "| `datasets.<name>.", 1)
        for r in _rows(schema["$defs"]["dataset"], schema, "")
    ]
    out.append("")
    for kind in ("voc", "crops", "centromere_csv", "overlaps_h5", "frames"):
        out += [
            f"Reader options of `kind: {kind}` (`datasets.<name>.options`; docs/datasets.md):",
            "",
        ]
        out += ["| key | type |", "|---|---|"]
        for key, sub in schema["$defs"][f"{kind}_options"]["properties"].items():
            target = schema["$defs"][sub["$ref"].rsplit("/", 1)[-1]] if "$ref" in sub else sub
            out.append(f"| `{key}` | {_type(target)} |")
        out.append("")
    out += ["## Open sections", "",
            "The schema leaves these sections open; the code checks their keys against",
            "these tables (an unknown key is an error naming it). Defaults:", ""]  # fmt: skip
    for section, (name, table) in OPEN_SECTIONS().items():
        out += [f"### `{section}` (`{name}`)", "", "| key | default |", "|---|---|"]
        out += [f"| `{k}` | {_value(v)} |" for k, v in table.items()]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
