"""Crops with a known centromere position, from a ``chr,tel,x,y`` CSV.

``chr`` is the crop image's file name, ``tel`` an optional second-channel image (e.g.
telomere stain), ``x``/``y`` the centromere in pixels of the crop.

Options
-------
csv : str, optional
    The CSV relative to root (or absolute). Default: ``root`` if it is a file, else
    ``centromeres.csv`` in root, else the only ``*.csv`` in root.
images_dir : str, optional
    Folder of the images, relative to the CSV's folder. Default: the CSV's folder,
    then ``crops/`` beside the CSV (tried in that order per image).
label_preset : str, optional
    A name preset (as in :mod:`karyoflow.readers.crops`: ``karyotype_gif`` accepts
    ``<cell>.K.chr<N>.<copy>.png/gif/tif``) applied to the image file name.
pattern : str, optional
    Explicit file-name regex (groups ``label``, ``cell``); overrides the preset's.
cell_regex : str, optional
    As for crops; default the pattern's ``cell`` group, else the file stem.
zero_based : bool, default False (or the preset's)

Without ``label_preset``/``pattern`` the label is ``""``. With one, a file name that
does not match, or an unknown label, is a reject. Rows are numbered by CSV line
(header = line 1).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from karyoflow.labels import UnknownLabelError
from karyoflow.readers._common import check_images, label_of, require_dir, resolve_under
from karyoflow.readers.crops import resolve_name_options
from karyoflow.records import ReadResult, Reject, normalise_record

__all__ = ["read_centromere_csv"]

_REQUIRED = ("chr", "x", "y")


def _locate_csv(root: Path, options: Mapping[str, Any]) -> Path:
    if options.get("csv"):
        path = resolve_under(root if root.is_dir() else root.parent, options["csv"])
        if not path.is_file():
            raise FileNotFoundError(f"centromere CSV not found: {path}")
        return path.resolve()
    if root.is_file():
        return root
    if (root / "centromeres.csv").is_file():
        return root / "centromeres.csv"
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        what = "no" if not found else "several"
        raise FileNotFoundError(f"{what} centromere CSV in {root}; set option 'csv'")
    return found[0]


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_centromere_csv(root: Path, *, dataset: str, options: Mapping[str, Any]) -> ReadResult:
    """Read crops with known centromeres, one ``kind="centromere"`` record per row.

    ``root``: the CSV file or the folder holding it; ``dataset`` and ``options`` as for
    every reader (:mod:`karyoflow.readers`, options: the module docstring).

    Returns
    -------
    ReadResult
        Records with bbox = whole image, ``centromere_x``/``_y`` set, ``aux_source`` =
        the ``tel`` image if given, ``instance_id`` = image path relative to the CSV's
        folder; one reject per bad row (``item`` = CSV line number).

    Raises
    ------
    FileNotFoundError
        ``root`` or the CSV is missing.
    """
    root = require_dir(Path(root))
    path = _locate_csv(root, options)
    base = path.parent
    src = str(path)
    names = resolve_name_options(options, preset_key="label_preset")
    pattern, cell_regex = names["pattern"], names["cell_regex"]
    dirs = (
        [resolve_under(base, options["images_dir"])]
        if options.get("images_dir")
        else [base, base / "crops"]
    )
    result = ReadResult()

    def find(name: str) -> Path | None:
        for d in dirs:
            p = d / name
            if p.is_file():
                return p.resolve()
        return None

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        result.rejects.append(Reject(src, f"cannot read CSV ({exc})"))
        return result
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if not header:
        result.rejects.append(Reject(src, "empty CSV"))
        return result
    if any(col not in header for col in _REQUIRED):
        result.rejects.append(
            Reject(src, f"missing header: expected columns chr,tel,x,y, got {header}", "1")
        )
        return result
    col = {name: header.index(name) for name in ("chr", "tel", "x", "y") if name in header}

    pending: list[tuple[int, Path, Path | None, dict[str, Any]]] = []
    seen: set[Path] = set()
    for lineno, row in enumerate(reader, start=2):
        if not row or not any(c.strip() for c in row):
            continue
        item = str(lineno)
        cells = {k: (row[i].strip() if i < len(row) else "") for k, i in col.items()}
        name = cells["chr"]
        if not name:
            result.rejects.append(Reject(src, "empty chr (image) column", item))
            continue
        x, y = _number(cells["x"]), _number(cells["y"])
        if x is None or y is None:
            result.rejects.append(
                Reject(src, f"non-numeric centromere ({cells['x']!r}, {cells['y']!r})", item)
            )
            continue
        image = find(name)
        if image is None:
            result.rejects.append(Reject(src, f"image not found: {name}", item))
            continue
        if image in seen:
            result.rejects.append(Reject(src, f"duplicate row for image {name}", item))
            continue
        tel: Path | None = None
        if cells.get("tel"):
            tel = find(cells["tel"])
            if tel is None:
                result.rejects.append(Reject(src, f"tel image not found: {cells['tel']}", item))
                continue
        label = ""
        groups: dict[str, Any] = {}
        if pattern is not None:
            m = pattern.fullmatch(Path(name).name)
            if m is None:
                result.rejects.append(
                    Reject(src, f"file name does not match pattern {names['pattern_text']}", item)
                )
                continue
            groups = m.groupdict()
            if groups.get("label") is not None:
                try:
                    label = label_of(groups["label"], zero_based=names["zero_based"])
                except UnknownLabelError as exc:
                    result.rejects.append(Reject(src, str(exc), item))
                    continue
        rel = image.relative_to(base).as_posix() if base in image.parents else str(image)
        if cell_regex is not None:
            m2 = cell_regex.search(rel)
            if m2 is None or not m2.groupdict().get("cell"):
                result.rejects.append(
                    Reject(src, f"path does not match cell_regex {cell_regex.pattern!r}", item)
                )
                continue
            cell = m2.group("cell")
        elif groups.get("cell"):
            cell = str(groups["cell"]).strip()
        else:
            cell = Path(name).stem
        seen.add(image)
        record = {
            "dataset": dataset,
            "instance_id": rel,
            "kind": "centromere",
            "source": str(image),
            "cell_id": cell,
            "label": label,
            "centromere_x": x,
            "centromere_y": y,
            "aux_source": str(tel) if tel is not None else "",
        }
        pending.append((lineno, image, tel, record))

    done: list[tuple[str, int, dict[str, Any]]] = []
    to_check = sorted({p for _, img, tel, _ in pending for p in (img, tel) if p is not None})
    status = dict(zip(to_check, check_images(to_check, options.get("workers")), strict=True))
    for lineno, image, tel, record in pending:
        item = str(lineno)
        size = status[image]
        if isinstance(size, str):
            result.rejects.append(Reject(src, f"{image.name}: {size}", item))
            continue
        w, h = size
        if tel is not None:
            tel_size = status[tel]
            if isinstance(tel_size, str):
                result.rejects.append(Reject(src, f"{tel.name}: {tel_size}", item))
                continue
            if tel_size != size:
                result.rejects.append(
                    Reject(src, f"tel image {tel_size[0]}x{tel_size[1]} differs from {w}x{h}", item)
                )
                continue
        x, y = record["centromere_x"], record["centromere_y"]
        if not (0 <= x <= w and 0 <= y <= h):
            result.rejects.append(
                Reject(src, f"centromere ({x:g}, {y:g}) outside image {w}x{h}", item)
            )
            continue
        record.update(x0=0, y0=0, x1=w, y1=h, image_width=w, image_height=h)
        done.append((str(image), lineno, normalise_record(record)))
    result.records = [r for _, _, r in sorted(done, key=lambda t: (t[0], t[1]))]
    return result
