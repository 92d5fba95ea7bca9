"""Pascal VOC metaphase spreads: one image + one XML of boxes per cell.

Options
-------
images_dir : str, default ``JPEGImages`` if present, else ``images``
annotations_dir : str, default ``Annotations`` if present, else ``annotations``
extensions : list of str, default jpg, jpeg, png, tif, tiff, gif, bmp
box_tolerance : int, default 2
    A box may stick out of the image by this many pixels; it is clipped. Further out
    (or entirely outside after clipping) is a reject.
trust_image_size : bool, default False
    If false, an image whose decoded size differs from the XML ``<size>`` is rejected;
    if true the decoded size is used and the XML size ignored.
ids : str, optional
    File (relative to root) listing the ids to read, one per line; other images are
    skipped (not rejected); listed ids without image or XML are rejected.
split_files : mapping split -> file, optional
    Default: whichever of ``train.txt``, ``val.txt``, ``test.txt`` exist under root.
    Sets ``preset_split``. An id listed in two splits is rejected; a listed id that is
    not in the dataset is rejected (source = the split file).
truth_csv : str or list of str, optional
    Per-cell karyotype truth CSVs relative to root; see :func:`read_truth_csv`.
masks_dir : str, optional
    Sidecar outlines ``<id>.json``; default ``masks`` if that folder exists.
max_xml_bytes : int, default 10_000_000
workers : int, default min(4, cpus)
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from karyoflow.imageio import IMAGE_EXTENSIONS
from karyoflow.labels import UnknownLabelError, canonical_label
from karyoflow.readers._common import (
    check_images,
    extensions_of,
    label_of,
    require_dir,
    resolve_under,
    scan_files,
)
from karyoflow.records import ReadResult, Reject, normalise_record

__all__ = ["numerical_truth", "read_truth_csv", "read_voc", "read_voc_boxes", "truth_from_counts"]

_INT = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------- truth


def truth_from_counts(count: int, description: str, *, structural: bool = False) -> str:
    """ISCN-like karyotype string from a Taichung ``count, description`` row.

    The Taichung tables give the chromosome count and the affected chromosome pair,
    never the sex, so the strings carry no sex part unless the description implies it.

    Mapping (``description`` is stripped and upper-cased):

    * empty, ``unknow``/``unknown``           -> ``"<count>"`` (``"46"``, ``"47"``)
    * one chromosome ``c`` and count 46 + k (k > 0) -> ``"<count>,+c"`` repeated k times
      (``47,21`` -> ``"47,+21"``; ``47,X`` -> ``"47,+X"``)
    * ``X`` and count 45                    -> ``"45,X"`` (monosomy X)
    * one chromosome ``c`` and count 46 - k (k > 0) -> ``"<count>,-c"`` repeated k times
      (``45,Y`` -> ``"45,-Y"``; ``45,21`` -> ``"45,-21"``)
    * anything else (count 46 with a chromosome, several chromosomes, mosaics such as
      ``44,XX/XY``) and every ``structural`` row -> ``"<count>,<description>"``
      (``"46,21"``, ``"44,XX/XY"``, ``"46,3,15"``).

    Parameters
    ----------
    count : int
        Chromosome count of the cell.
    description : str
        The table's description column (affected chromosome pair).
    structural : bool, optional
        The row comes from the structural-abnormality table.

    Returns
    -------
    str

    Examples
    --------
    >>> truth_from_counts(47, "21"), truth_from_counts(45, "X"), truth_from_counts(46, "")
    ('47,+21', '45,X', '46')
    """
    count = int(count)
    desc = (description or "").strip()
    if not desc or desc.lower() in ("unknow", "unknown", "?"):
        return str(count)
    if structural:
        return f"{count},{desc}"
    try:
        chrom = canonical_label(desc)
    except UnknownLabelError:
        return f"{count},{desc.upper()}"
    diff = count - 46
    if diff > 0:
        return str(count) + f",+{chrom}" * diff
    if diff < 0:
        if chrom == "X" and diff == -1:
            return "45,X"
        return str(count) + f",-{chrom}" * (-diff)
    return f"{count},{chrom}"


def numerical_truth(truth: str, table: str = "") -> str:
    """The numerical karyotype a truth string states (manifest column ``cell_karyotype``).

    Rows of a table of normal cells (``table`` names a file with ``normal`` in it, as
    the Taichung ``normal.csv``) are :data:`karyoflow.iscn.NORMAL` whatever count they
    give: that count is what the image shows (44-50 in normal Taichung cells: a
    chromosome outside the field or overlapped, an extra object). Elsewhere a string
    stating numerical changes or a sex (``"47,+21"``, ``"45,X"``, ``"46,XY"``) is kept;
    count-only, structural and mosaic strings state no numerical karyotype: ``""``.

    Examples
    --------
    >>> numerical_truth("45", "normal.csv"), numerical_truth("47,+21", "number.csv")
    ('normal', '47,+21')
    >>> numerical_truth("47", "number.csv"), numerical_truth("46,3,15", "structural.csv")
    ('', '')
    >>> numerical_truth("46,X", "number.csv"), numerical_truth("45,-Y", "number.csv")
    ('', '45,-Y')
    """
    from karyoflow.iscn import NORMAL, parse_karyotype

    name = Path(table).name.lower()
    if "normal" in name and "abnormal" not in name:
        return NORMAL
    parsed = parse_karyotype(truth)
    if parsed is None or (parsed.sex is None and parsed.changes is None):
        return ""
    if parsed.sex is not None:  # "46,X" (a count that does not fit): states nothing usable
        auto = [t for t in parsed.changes or () if t[1:] not in ("X", "Y")]
        fits = 44 + len(parsed.sex) + sum(1 if t[0] == "+" else -1 for t in auto)
        if fits != parsed.count:
            return ""
    return truth


def read_truth_csv(path: Path) -> tuple[dict[str, str], list[Reject]]:
    """Per-image karyotype truth from one CSV, keyed by image id (file stem).

    Two formats, told apart by the header:

    * Taichung ``filename,chromosome numbers,description`` -> :func:`truth_from_counts`
      (``structural=True`` when the file name contains ``structural``).
    * ``filename,karyotype`` -> the karyotype string as given.

    Returns
    -------
    (truth, rejects)
        Bad rows (non-numeric count, empty file name, duplicate id with different
        truth) become rejects with ``item`` = line number.
    """
    truth: dict[str, str] = {}
    rejects: list[Reject] = []
    src = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return truth, [Reject(src, f"cannot read truth CSV ({exc})")]
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return truth, [Reject(src, "empty truth CSV")]
    header = [h.strip().lower() for h in rows[0]]
    if len(header) < 2 or header[0] not in ("filename", "file", "image", "id"):
        return truth, [Reject(src, f"unrecognised truth CSV header {rows[0]!r}", "1")]
    iscn = header[1] == "karyotype"
    structural = "structural" in path.name.lower()
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        name = row[0].strip()
        if not name:
            rejects.append(Reject(src, "empty file name", str(lineno)))
            continue
        key = Path(name).stem
        if iscn:
            value = row[1].strip() if len(row) > 1 else ""
            if not value:
                rejects.append(Reject(src, "empty karyotype", str(lineno)))
                continue
        else:
            raw = row[1].strip() if len(row) > 1 else ""
            if not raw.isdigit():
                rejects.append(Reject(src, f"non-numeric chromosome count {raw!r}", str(lineno)))
                continue
            desc = ",".join(row[2:]).strip() if len(row) > 2 else ""
            value = truth_from_counts(int(raw), desc, structural=structural)
        if key in truth and truth[key] != value:
            rejects.append(
                Reject(
                    src, f"conflicting truth for {key!r}: {truth[key]!r} vs {value!r}", str(lineno)
                )
            )
            continue
        truth[key] = value
    return truth, rejects


# --------------------------------------------------------------------------- XML


def _parse_xml(path: Path, max_bytes: int) -> Element | str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read XML ({exc.strerror or exc})"
    if size > max_bytes:
        return f"XML file too large ({size} bytes > {max_bytes})"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read XML ({exc.strerror or exc})"
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        return f"unsafe XML: {type(exc).__name__} {exc}"
    except ParseError as exc:
        return f"malformed XML: {exc}"
    except (ValueError, UnicodeError) as exc:
        return f"malformed XML: {exc}"
    if root.tag != "annotation":
        return f"malformed XML: root element <{root.tag}>, expected <annotation>"
    return root


def _text(el: Element | None, tag: str) -> str | None:
    if el is None:
        return None
    child = el.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _int(text: str | None) -> int | None:
    if text is None or not _INT.match(text):
        return None
    return int(float(text))


def _box(obj: Element, w: int, h: int, tol: int) -> tuple[int, int, int, int] | str:
    bnd = obj.find("bndbox")
    if bnd is None:
        return "missing <bndbox>"
    raw = [_text(bnd, k) for k in ("xmin", "ymin", "xmax", "ymax")]
    if any(v is None for v in raw):
        return "missing box coordinate"
    vals = [_int(v) for v in raw]
    if any(v is None for v in vals):
        return f"non-integer box coordinate ({','.join(str(v) for v in raw)})"
    x0, y0, x1, y1 = (int(v) for v in vals)  # type: ignore[arg-type]
    desc = f"({x0},{y0},{x1},{y1})"
    if x1 <= x0 or y1 <= y0:
        return f"empty or inverted box {desc}"
    if x0 < -tol or y0 < -tol or x1 > w + tol or y1 > h + tol:
        return f"box {desc} outside image {w}x{h}"
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return f"box {desc} outside image {w}x{h}"
    return cx0, cy0, cx1, cy1


# --------------------------------------------------------------------------- masks


def _load_sidecar(path: Path, names: Sequence[str]) -> dict[int, dict[str, Any]] | str:
    """Parse a sidecar; map object index -> {"polygon": str, "centromere": (x, y)}."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"malformed sidecar JSON: {exc}"
    objs = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objs, list):
        return "sidecar has no 'objects' list"
    if len(objs) != len(names):
        return f"sidecar disagrees with XML: {len(objs)} objects vs {len(names)} in XML"
    out: dict[int, dict[str, Any]] = {}
    for pos, obj in enumerate(objs):
        if not isinstance(obj, dict):
            return f"sidecar object {pos} is not a mapping"
        idx = obj.get("index", pos)
        if not isinstance(idx, int) or not 0 <= idx < len(names) or idx in out:
            return f"sidecar object {pos} has bad index {idx!r}"
        if "name" in obj and not _same_label(str(obj["name"]), names[idx]):
            return (
                f"sidecar disagrees with XML: object {idx} is {obj['name']!r} in sidecar, "
                f"{names[idx]!r} in XML"
            )
        entry: dict[str, Any] = {}
        poly = obj.get("polygon")
        if poly is not None:
            try:
                pts = [[round(float(x), 2), round(float(y), 2)] for x, y in poly]
            except (TypeError, ValueError):
                return f"sidecar object {idx}: polygon is not a list of [x, y] numbers"
            if len(pts) < 3 or not all(math.isfinite(v) for p in pts for v in p):
                return f"sidecar object {idx}: polygon needs >= 3 finite points"
            entry["polygon"] = json.dumps(pts, separators=(",", ":"))
        cen = obj.get("centromere")
        if cen is not None:
            try:
                cx, cy = (float(v) for v in cen)
            except (TypeError, ValueError):
                return f"sidecar object {idx}: centromere is not [x, y]"
            if not (math.isfinite(cx) and math.isfinite(cy)):
                return f"sidecar object {idx}: centromere is not finite"
            entry["centromere"] = (cx, cy)
        out[idx] = entry
    return out


def _same_label(a: str, b: str) -> bool:
    try:
        return canonical_label(a) == canonical_label(b)
    except UnknownLabelError:
        return a.strip() == b.strip()


# --------------------------------------------------------------------------- reader


def _pick_dir(root: Path, options: Mapping[str, Any], key: str, defaults: Sequence[str]) -> Path:
    if options.get(key):
        return require_dir(resolve_under(root, options[key]), key)
    for name in defaults:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"no {'/'.join(defaults)} folder in {root}")


def _by_stem(files: list[Path], result: ReadResult) -> dict[str, Path]:
    """id -> file; later files with an id already seen are rejected as duplicates."""
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            result.rejects.append(
                Reject(str(p), f"duplicate id {p.stem!r} (also {out[p.stem].name})")
            )
        else:
            out[p.stem] = p
    return out


def _read_id_list(path: Path) -> list[str]:
    ids = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.append(
                Path(line).stem
                if Path(line).suffix.lower().lstrip(".") in IMAGE_EXTENSIONS
                else line
            )
    return ids


def read_voc(root: Path, *, dataset: str, options: Mapping[str, Any]) -> ReadResult:
    """Read a Pascal VOC metaphase set.

    ``root``: dataset folder holding the image and annotation folders; ``dataset`` and
    ``options`` as for every reader (:mod:`karyoflow.readers`, options: the module
    docstring).

    Returns
    -------
    ReadResult
        One ``kind="metaphase"`` record per box (``instance_id`` ``"<id>/<index>"``,
        ``cell_id`` = image id), sorted by source then object index; rejects for every
        bad file/object; ``cell_truth`` from ``truth_csv``.

    Raises
    ------
    FileNotFoundError
        ``root``, the image folder or the annotation folder is missing.
    ValueError
        Neither images nor annotations found.
    """
    root = require_dir(Path(root))
    img_dir = _pick_dir(root, options, "images_dir", ("JPEGImages", "images"))
    ann_dir = _pick_dir(root, options, "annotations_dir", ("Annotations", "annotations"))
    exts = {"." + e for e in extensions_of(options)}
    tol = int(options.get("box_tolerance", 2))
    trust_size = bool(options.get("trust_image_size", False))
    max_xml = int(options.get("max_xml_bytes", 10_000_000))
    result = ReadResult()

    images, skipped = scan_files(img_dir, exts, recursive=False, what="image")
    xmls, skipped_xml = scan_files(ann_dir, {".xml"}, recursive=False, what="VOC XML")
    if not images and not xmls:
        raise ValueError(f"no images or annotations found in {img_dir} / {ann_dir}")
    result.rejects.extend(skipped)
    if ann_dir != img_dir:
        result.rejects.extend(skipped_xml)
    else:  # one folder for both: a file is skipped only when it is neither
        read = {*images, *xmls}
        result.rejects[:] = [r for r in result.rejects if Path(r.source) not in read]
    # Prefer the conventional lower-case ".xml" when a.xml and a.XML both exist.
    xmls.sort(key=lambda p: (p.stem, p.suffix != ".xml", p.name))
    img_by_id = _by_stem(images, result)
    xml_by_id = _by_stem(xmls, result)

    wanted: set[str] | None = None
    if options.get("ids"):
        ids_path = resolve_under(root, options["ids"])
        if not ids_path.is_file():
            raise FileNotFoundError(f"ids file not found: {ids_path}")
        listed = _read_id_list(ids_path)
        wanted = set(listed)
        for i in listed:
            if i not in img_by_id or i not in xml_by_id:
                missing = "image" if i not in img_by_id else "annotation"
                result.rejects.append(Reject(str(ids_path), f"listed id {i!r} has no {missing}", i))

    splits = _read_splits(root, options, img_by_id, xml_by_id, wanted, result)

    truth: dict[str, str] = {}
    karyotype: dict[str, str] = {}
    csvs = options.get("truth_csv") or []
    for name in [csvs] if isinstance(csvs, str) else list(csvs):
        path = resolve_under(root, name)
        t, rej = read_truth_csv(path)
        result.rejects.extend(rej)
        for k, v in t.items():
            truth.setdefault(k, v)
            karyotype.setdefault(k, numerical_truth(v, path.name))

    masks_dir: Path | None = None
    if options.get("masks_dir"):
        masks_dir = require_dir(resolve_under(root, options["masks_dir"]), "masks_dir")
    elif (root / "masks").is_dir():
        masks_dir = root / "masks"

    used = {img_dir, ann_dir, *([masks_dir] if masks_dir is not None else [])}
    used |= {resolve_under(root, n) for n in ([csvs] if isinstance(csvs, str) else list(csvs))}
    if options.get("ids"):
        used.add(resolve_under(root, options["ids"]))
    if options.get("split_files"):
        used |= {resolve_under(root, n) for n in dict(options["split_files"]).values()}
    else:
        used |= {root / f"{split}.txt" for split in _SPLITS}
    result.rejects.extend(_unread_entries(root, used))

    ids = sorted(set(img_by_id) | set(xml_by_id))
    if wanted is not None:
        ids = [i for i in ids if i in wanted]
    if masks_dir is not None:
        known = set(ids)
        for side in sorted(masks_dir.glob("*.json")):
            if side.stem not in known and (wanted is None or side.stem in wanted):
                result.rejects.append(Reject(str(side), "sidecar has no image or annotation"))
    todo: list[str] = []
    for i in ids:
        if i not in xml_by_id:
            result.rejects.append(Reject(str(img_by_id[i]), "image has no annotation XML"))
        elif i not in img_by_id:
            result.rejects.append(Reject(str(xml_by_id[i]), "annotation has no image"))
        elif splits.get(i) == "":
            continue  # ambiguous split, already rejected
        else:
            todo.append(i)

    sizes = check_images([img_by_id[i] for i in todo], options.get("workers"))
    for image_id, size in zip(todo, sizes, strict=True):
        img = img_by_id[image_id]
        if isinstance(size, str):
            result.rejects.append(Reject(str(img), size))
            continue
        _read_one(
            image_id, img, xml_by_id[image_id], size, dataset, tol, trust_size, max_xml,
            splits.get(image_id, ""), truth.get(image_id, ""), masks_dir, result,
        )  # fmt: skip
    for image_id in todo:
        if image_id in truth:
            result.cell_truth[image_id] = truth[image_id]
        if karyotype.get(image_id):
            result.cell_karyotype[image_id] = karyotype[image_id]
    result.records.sort(key=lambda r: (r["source"], int(r["instance_id"].rsplit("/", 1)[1])))
    return result


def _unread_entries(root: Path, used: set[Path]) -> list[Reject]:
    """A reject for each file or folder directly in ``root`` that the reader does not
    use (the image, annotation and masks folders, the files named by the options)."""
    used = {p.resolve() for p in used}
    out = []
    for entry in sorted(root.iterdir()):
        if entry.resolve() in used:
            continue
        hidden = "hidden " if entry.name.startswith(".") else ""
        if entry.is_dir():
            out.append(Reject(str(entry), f"{hidden}folder not read (not part of the VOC layout)"))
        else:
            out.append(
                Reject(str(entry), f"{hidden}file not read (not named by the dataset's options)")
            )
    return out


def _read_splits(
    root: Path,
    options: Mapping[str, Any],
    img_by_id: Mapping[str, Path],
    xml_by_id: Mapping[str, Path],
    wanted: set[str] | None,
    result: ReadResult,
) -> dict[str, str]:
    """id -> split name; ``""`` marks an id listed in two splits (rejected here)."""
    files: dict[str, Path] = {}
    if options.get("split_files"):
        for split, name in dict(options["split_files"]).items():
            path = resolve_under(root, name)
            if not path.is_file():
                raise FileNotFoundError(f"split file not found: {path}")
            files[str(split)] = path
    else:
        for split in _SPLITS:
            if (root / f"{split}.txt").is_file():
                files[split] = root / f"{split}.txt"
    out: dict[str, str] = {}
    where: dict[str, list[str]] = {}
    for split, path in files.items():
        for i in _read_id_list(path):
            if wanted is not None and i not in wanted:
                continue
            where.setdefault(i, []).append(split)
            if i not in img_by_id and i not in xml_by_id:
                result.rejects.append(Reject(str(path), f"id {i!r} in {split} split not found", i))
    for i, names in where.items():
        unique = sorted(set(names))
        if len(unique) > 1:
            src = img_by_id.get(i) or xml_by_id.get(i)
            if src is not None:
                result.rejects.append(
                    Reject(
                        str(src), f"id {i!r} listed in more than one split ({', '.join(unique)})"
                    )
                )
            out[i] = ""
        else:
            out[i] = unique[0]
    return out


def _read_one(
    image_id: str,
    img: Path,
    xml: Path,
    size: tuple[int, int],
    dataset: str,
    tol: int,
    trust_size: bool,
    max_xml: int,
    split: str,
    truth: str,
    masks_dir: Path | None,
    result: ReadResult,
) -> None:
    parsed = _parse_xml(xml, max_xml)
    if isinstance(parsed, str):
        result.rejects.append(Reject(str(xml), parsed))
        return
    w, h = size
    xw, xh = _int(_text(parsed.find("size"), "width")), _int(_text(parsed.find("size"), "height"))
    if not trust_size and (xw, xh) != (w, h) and not (xw is None and xh is None):
        result.rejects.append(
            Reject(str(xml), f"size in XML ({xw}x{xh}) differs from image ({w}x{h})")
        )
        return
    objects = parsed.findall("object")
    if not objects:
        result.rejects.append(Reject(str(xml), "annotation has no objects"))
        return
    names = [_text(o, "name") or "" for o in objects]
    sidecar: dict[int, dict[str, Any]] = {}
    if masks_dir is not None:
        side_path = masks_dir / f"{image_id}.json"
        if side_path.is_file():
            loaded = _load_sidecar(side_path, names)
            if isinstance(loaded, str):
                result.rejects.append(Reject(str(side_path), loaded))
            else:
                sidecar = loaded
    for index, obj in enumerate(objects):
        item = str(index)
        try:
            label = label_of(names[index]) if names[index] else None
        except UnknownLabelError as exc:
            result.rejects.append(Reject(str(xml), str(exc), item))
            continue
        if label is None:
            result.rejects.append(Reject(str(xml), "object has no <name>", item))
            continue
        box = _box(obj, w, h, tol)
        if isinstance(box, str):
            result.rejects.append(Reject(str(xml), box, item))
            continue
        x0, y0, x1, y1 = box
        record: dict[str, Any] = {
            "dataset": dataset,
            "instance_id": f"{image_id}/{index}",
            "kind": "metaphase",
            "source": str(img),
            "cell_id": image_id,
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "image_width": w,
            "image_height": h,
            "label": label,
            "cell_truth": truth,
            "preset_split": split,
        }
        extra = sidecar.get(index, {})
        if "polygon" in extra:
            record["polygon"] = extra["polygon"]
        if "centromere" in extra:
            record["centromere_x"], record["centromere_y"] = extra["centromere"]
        result.records.append(normalise_record(record))


def read_voc_boxes(
    path: str | Path,
    image_size: tuple[int, int] | None = None,
    *,
    box_tolerance: int = 2,
    max_bytes: int = 10_000_000,
) -> np.ndarray:
    """Boxes ``(N, 4)`` ``x0, y0, x1, y1`` of one Pascal VOC file, strictly.

    The same safe parsing and box checks as :func:`read_voc`, for a single file given
    with an image (``karyoflow predict``). ``image_size`` ``(width, height)`` replaces
    the file's ``<size>`` when given.

    Raises
    ------
    ValueError
        ``"<file>: <reason>"`` for malformed or hostile XML, a missing size or a box
        outside the image.
    """
    path = Path(path)
    root = _parse_xml(path, int(max_bytes))
    if isinstance(root, str):
        raise ValueError(f"{path}: {root}")
    if image_size is not None:
        w, h = (int(v) for v in image_size)
    else:
        size = root.find("size")
        w, h = _int(_text(size, "width")), _int(_text(size, "height"))  # type: ignore[assignment]
        if not w or not h:
            raise ValueError(f"{path}: missing or bad <size> (give the image)")
    boxes = []
    for i, obj in enumerate(root.findall("object")):
        box = _box(obj, w, h, int(box_tolerance))
        if isinstance(box, str):
            raise ValueError(f"{path}: object {i}: {box}")
        boxes.append(box)
    return np.asarray(boxes, np.int64).reshape(-1, 4)
