"""Single-chromosome crop sets (one image per chromosome).

Two layouts:

``class_folders``
    The label is the name of the folder holding the image (``1``..``24``,
    ``clase1``..``clase24``, ``chr7``, ``X``, ``Y``; 23 = X, 24 = Y), possibly nested
    under a per-cell folder (``<cell>/<class>/<file>``).
``filename``
    The label (and usually the cell) is parsed from the file name by a regex with
    named groups ``label``, ``cell`` and optionally ``copy``.

Options
-------
layout : {"class_folders", "filename"}, default "class_folders"
preset : str, optional
    A name from :data:`karyoflow.readers._common.NAME_PRESETS` (``karyotype_gif``,
    ``zero_based``, ``pampaj7``, ``karyograms``, ``karyonet``); supplies ``pattern``,
    ``zero_based`` and possibly ``cell_regex``.
pattern : str, optional
    File-name regex (``re.fullmatch`` on the name). Required for ``filename`` layout
    unless ``preset`` is given. With ``class_folders`` it is optional: names must then
    match it, a ``label`` group must agree with the folder, a ``cell`` group gives the
    cell id.
cell_regex : str, optional
    Regex (or a name from ``CELL_REGEX_PRESETS``: ``first_folder``, ``parent_folder``,
    ``grandparent_folder``, ``stem``) searched on the POSIX path relative to ``root``;
    its ``cell`` group is the cell id. Default: the pattern's ``cell`` group, else the
    folder above the class folder (class_folders) / the image's folder (filename) when
    it lies below the scanned folder, else the file's relative path without extension.
zero_based : bool, default False (or the preset's)
subdir : str, optional
    Scan only ``root / subdir``; ids stay relative to ``root``.
extensions : list of str, default jpg, jpeg, png, tif, tiff, gif, bmp
workers : int, default min(4, cpus)
    Threads used to decode images.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from karyoflow.labels import UnknownLabelError
from karyoflow.readers._common import (
    CELL_REGEX_PRESETS,
    NAME_PRESETS,
    check_images,
    compile_pattern,
    extensions_of,
    label_of,
    list_images,
    require_dir,
)
from karyoflow.records import ReadResult, Reject, normalise_record

__all__ = ["read_crops", "resolve_name_options"]

log = logging.getLogger(__name__)


def resolve_name_options(
    options: Mapping[str, Any], *, preset_key: str = "preset"
) -> dict[str, Any]:
    """Merge a name preset with explicit ``pattern``/``cell_regex``/``zero_based``.

    Returns
    -------
    dict
        ``pattern`` (compiled or None), ``pattern_text`` (for messages),
        ``cell_regex`` (compiled or None), ``zero_based`` (bool).

    Raises
    ------
    ValueError
        Unknown preset name or invalid regex.
    """
    preset_name = options.get(preset_key)
    pattern_text = options.get("pattern")
    zero_based = options.get("zero_based")
    cell_regex = options.get("cell_regex")
    shown = pattern_text
    if preset_name:
        if preset_name not in NAME_PRESETS:
            raise ValueError(
                f"unknown {preset_key} {preset_name!r}; choose from {sorted(NAME_PRESETS)}"
            )
        preset = NAME_PRESETS[preset_name]
        if pattern_text is None:
            pattern_text = preset.pattern
            shown = f"preset {preset_name!r} ({preset.description})"
        if zero_based is None:
            zero_based = preset.zero_based
        if cell_regex is None:
            cell_regex = preset.cell_regex
    if cell_regex in CELL_REGEX_PRESETS:
        cell_regex = CELL_REGEX_PRESETS[cell_regex]
    return {
        "pattern": compile_pattern(pattern_text) if pattern_text else None,
        "pattern_text": shown,
        "cell_regex": compile_pattern(cell_regex) if cell_regex else None,
        "zero_based": bool(zero_based),
    }


def read_crops(root: Path, *, dataset: str, options: Mapping[str, Any]) -> ReadResult:
    """Read a single-chromosome crop set.

    ``root``: dataset folder; ``dataset`` and ``options`` as for every reader
    (:mod:`karyoflow.readers`, options: the module docstring).

    Returns
    -------
    ReadResult
        One ``kind="crop"`` record per decodable, labelled image (bbox = whole image,
        ``instance_id`` = path relative to ``root``), sorted by source; one reject per
        bad file.

    Raises
    ------
    FileNotFoundError
        ``root`` (or ``root/subdir``) does not exist.
    ValueError
        No images at all, unknown layout/preset, or an invalid regex.
    """
    root = require_dir(Path(root))
    base = require_dir(root / options["subdir"], "crop folder") if options.get("subdir") else root
    layout = options.get("layout", "class_folders")
    if layout not in ("class_folders", "filename"):
        raise ValueError(f"unknown crops layout {layout!r} (class_folders or filename)")
    names = resolve_name_options(options)
    pattern = names["pattern"]
    if layout == "filename" and pattern is None:
        raise ValueError("crops layout 'filename' needs option 'pattern' or 'preset'")
    if layout == "filename" and "label" not in pattern.groupindex:
        raise ValueError(f"pattern {names['pattern_text']} has no named group 'label'")

    files, skipped = list_images(base, extensions_of(options))
    if not files:
        raise ValueError(f"no images found under {base}")

    result = ReadResult(rejects=list(skipped))
    pending: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        src = str(path)
        match = pattern.fullmatch(path.name) if pattern is not None else None
        if pattern is not None and match is None:
            result.rejects.append(
                Reject(src, f"file name does not match pattern {names['pattern_text']}")
            )
            continue
        groups = match.groupdict() if match else {}
        try:
            if layout == "class_folders":
                if path.parent == base:
                    result.rejects.append(Reject(src, "image is not inside a class folder"))
                    continue
                label = label_of(path.parent.name, zero_based=names["zero_based"])
                if groups.get("label") is not None:
                    name_label = label_of(groups["label"], zero_based=names["zero_based"])
                    if name_label != label:
                        result.rejects.append(
                            Reject(
                                src,
                                f"label in file name ({name_label}) differs from "
                                f"class folder {path.parent.name!r} ({label})",
                            )
                        )
                        continue
                container = path.parent.parent
            else:
                label = label_of(groups["label"], zero_based=names["zero_based"])
                container = path.parent
        except UnknownLabelError as exc:
            result.rejects.append(Reject(src, str(exc)))
            continue
        cell = _cell_id(rel, groups, names["cell_regex"], container, base, root, path)
        if cell is None:
            result.rejects.append(
                Reject(src, f"path does not match cell_regex {names['cell_regex'].pattern!r}")
            )
            continue
        record = {
            "dataset": dataset,
            "instance_id": rel,
            "kind": "crop",
            "source": src,
            "cell_id": cell,
            "label": label,
        }
        pending.append((path, record))

    sizes = check_images([p for p, _ in pending], options.get("workers"))
    for (path, record), size in zip(pending, sizes, strict=True):
        if isinstance(size, str):
            result.rejects.append(Reject(str(path), size))
            continue
        w, h = size
        record.update(x0=0, y0=0, x1=w, y1=h, image_width=w, image_height=h)
        result.records.append(normalise_record(record))
    result.records.sort(key=lambda r: r["source"])
    return result


def _cell_id(
    rel: str,
    groups: Mapping[str, str | None],
    cell_regex: Any,
    container: Path,
    base: Path,
    root: Path,
    path: Path,
) -> str | None:
    if cell_regex is not None:
        m = cell_regex.search(rel)
        if m is None or not m.groupdict().get("cell"):
            return None
        return m.group("cell").strip()
    if groups.get("cell"):
        return str(groups["cell"]).strip()
    if container != base and base in container.parents:
        return container.relative_to(root).as_posix()
    return path.relative_to(root).with_suffix("").as_posix()
