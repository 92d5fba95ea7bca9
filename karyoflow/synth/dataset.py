"""Write a complete synthetic dataset (metaphases, overlapping pairs, centromere crops).

Layout of ``out_dir`` (all files are byte-identical for the same params and seed)::

    voc/JPEGImages/<cell_id>.png|jpg   grey metaphase spreads
    voc/Annotations/<cell_id>.xml      Pascal VOC boxes, Taichung layout, canonical names
    voc/masks/<cell_id>.json           polygon + centromere of every <object>
    voc/karyotypes.csv                 filename,karyotype (ISCN truth table)
    overlaps/overlaps.h5               dataset "pairs" (N, size, size, 2) uint8
    centromeres/crops/<cell_id>.K.chr<label>.<copy>.png
    centromeres/centromeres.csv        chr,tel,x,y
    preview.png                        one metaphase beside ideal rendered chromosomes
    summary.json                       counts, karyotypes, seed and resolved params
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from karyoflow.labels import LABELS
from karyoflow.synth.ideogram import RESOLUTIONS, load_ideogram
from karyoflow.synth.metaphase import Metaphase, compose_metaphase, karyotype_labels
from karyoflow.synth.overlaps import make_overlap_pair
from karyoflow.synth.render import bend, od_to_grey, render_chromosome, render_straight

__all__ = ["DEFAULT_PARAMS", "GENERATOR", "resolve_params", "synthesize"]

#: Value of ``summary.json["generator"]``; marks a directory as replaceable synth output.
GENERATOR = "karyoflow.synth"

#: Default generation parameters (see :func:`resolve_params` for types and ranges).
DEFAULT_PARAMS: dict[str, Any] = {
    "cells": 24,
    "resolution": 400,
    "canvas": [900, 900],
    "sex_ratio": 0.5,
    "abnormal_fraction": 0.15,
    "abnormalities": ["+21", "+18", "+13", "45,X", "+X"],
    "width_px": [14.0, 21.0],
    "chr1_length_px": [80.0, 120.0],
    "max_bend_deg": 70.0,
    "touch_prob": 0.08,
    "overlap_prob": 0.04,
    "debris": [3, 15],
    "nucleus_prob": 0.3,
    "blur_sigma": [0.7, 1.4],
    "noise_sigma": 2.5,
    "illumination": 0.06,
    "spread_density": [0.06, 0.14],
    "image_format": "png",
    "pairs": 300,
    "pair_size": 94,
    "centromere_crops": 4,
}

# name: (kind, low, high); kind "int", "float", "range" (float pair), "irange" (int pair)
_SCHEMA: dict[str, tuple[str, float, float]] = {
    "cells": ("int", 1, 10000),
    "sex_ratio": ("float", 0.0, 1.0),
    "abnormal_fraction": ("float", 0.0, 1.0),
    "width_px": ("range", 4.0, 60.0),
    "chr1_length_px": ("range", 20.0, 400.0),
    "max_bend_deg": ("float", 0.0, 180.0),
    "touch_prob": ("float", 0.0, 1.0),
    "overlap_prob": ("float", 0.0, 1.0),
    "debris": ("irange", 0, 1000),
    "nucleus_prob": ("float", 0.0, 1.0),
    "blur_sigma": ("range", 0.0, 5.0),
    "noise_sigma": ("float", 0.0, 50.0),
    "illumination": ("float", 0.0, 0.5),
    "spread_density": ("range", 0.01, 0.6),
    "pairs": ("int", 0, 100000),
    "pair_size": ("int", 32, 512),
    "centromere_crops": ("int", 0, 10000),
}


def _number(name: str, value: Any, kind: str, lo: float, hi: float) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"synth param {name!r} must be a number, got {value!r}")
    if kind == "int" and int(value) != value:
        raise ValueError(f"synth param {name!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"synth param {name!r} must lie in [{lo}, {hi}], got {value!r}")
    return int(value) if kind in ("int", "irange") else float(value)


def resolve_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``params`` over :data:`DEFAULT_PARAMS` and validate them.

    Ranges (``width_px``, ``chr1_length_px``, ``debris``, ``blur_sigma``,
    ``spread_density``) accept a scalar
    or ``[low, high]`` and come back as ``[low, high]``.

    Raises
    ------
    ValueError
        For an unknown key or a value of the wrong type or out of range.

    Examples
    --------
    >>> p = resolve_params({"cells": 2, "width_px": 15})
    >>> p["cells"], p["width_px"], p["canvas"]
    (2, [15.0, 15.0], [900, 900])
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(f"unknown synth params {unknown}; known: {sorted(DEFAULT_PARAMS)}")
    out = {**DEFAULT_PARAMS, **params}
    for name, (kind, lo, hi) in _SCHEMA.items():
        value = out[name]
        if kind in ("range", "irange"):
            pair = list(value) if isinstance(value, (list, tuple)) else [value, value]
            if len(pair) != 2:
                raise ValueError(f"synth param {name!r} must be a number or [low, high]")
            pair = [_number(name, v, kind, lo, hi) for v in pair]
            if pair[0] > pair[1]:
                raise ValueError(f"synth param {name!r}: low {pair[0]} > high {pair[1]}")
            out[name] = pair
        else:
            out[name] = _number(name, value, kind, lo, hi)
    if out["resolution"] not in RESOLUTIONS:
        raise ValueError(f"synth param 'resolution' must be one of {RESOLUTIONS}")
    canvas = out["canvas"]
    if not isinstance(canvas, (list, tuple)) or len(canvas) != 2:
        raise ValueError("synth param 'canvas' must be [height, width]")
    out["canvas"] = [int(_number("canvas", v, "int", 256, 4096)) for v in canvas]
    if out["chr1_length_px"][1] > 0.6 * min(out["canvas"]):
        raise ValueError("synth param 'chr1_length_px' is too large for 'canvas'")
    if out["touch_prob"] + out["overlap_prob"] > 1.0:
        raise ValueError("synth params 'touch_prob' + 'overlap_prob' must not exceed 1")
    fmt = str(out["image_format"]).lower().lstrip(".")
    fmt = "jpg" if fmt == "jpeg" else fmt
    if fmt not in ("png", "jpg"):
        raise ValueError("synth param 'image_format' must be 'png' or 'jpg'")
    out["image_format"] = fmt
    abn = out["abnormalities"]
    if isinstance(abn, str) or not all(isinstance(a, str) for a in abn):
        raise ValueError("synth param 'abnormalities' must be a list of strings")
    for a in abn:
        for sex in ("XX", "XY"):
            karyotype_labels(sex, a)  # raises ValueError with the reason
    out["abnormalities"] = list(abn)
    if out["abnormal_fraction"] > 0 and not abn:
        raise ValueError("synth param 'abnormal_fraction' > 0 needs 'abnormalities'")
    return out


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, index])


def _encode(image: np.ndarray, fmt: str) -> bytes:
    if fmt == "jpg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    else:
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError(f"could not encode a {fmt} image")
    return buf.tobytes()


def _voc_xml(filename: str, image: np.ndarray, objects: list[dict[str, Any]]) -> str:
    """Pascal VOC XML in the Taichung layout (3-space indent, no declaration).

    ``xmin``/``ymin``/``xmax``/``ymax`` are the object's ``bbox`` ``(x0, y0, x1, y1)``:
    pixel coordinates with ``x1``/``y1`` exclusive (one past the last mask pixel), as in
    the Taichung set.
    """
    h, w = image.shape[:2]
    depth = 1 if image.ndim == 2 else image.shape[2]
    lines = [
        "<annotation>",
        "   <folder>JPEGImages</folder>",
        f"   <filename>{filename}</filename>",
        "   <source>",
        "      <database>karyoflow-synth</database>",
        "   </source>",
        "   <size>",
        f"      <width>{w}</width>",
        f"      <height>{h}</height>",
        f"      <depth>{depth}</depth>",
        "   </size>",
        "   <segmented>0</segmented>",
    ]
    for obj in objects:
        x0, y0, x1, y1 = obj["bbox"]
        lines += [
            "   <object>",
            f"      <name>{obj['label']}</name>",
            "      <pose>Unspecified</pose>",
            "      <truncated>0</truncated>",
            "      <difficult>0</difficult>",
            "      <bndbox>",
            f"         <xmin>{x0}</xmin>",
            f"         <ymin>{y0}</ymin>",
            f"         <xmax>{x1}</xmax>",
            f"         <ymax>{y1}</ymax>",
            "      </bndbox>",
            "   </object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _mask_json(filename: str, objects: list[dict[str, Any]]) -> str:
    payload = {
        "image": filename,
        "objects": [
            {
                "index": i,
                "name": obj["label"],
                "polygon": obj["polygon"],
                "centromere": list(obj["centromere"]),
            }
            for i, obj in enumerate(objects)
        ],
    }
    return json.dumps(payload, separators=(",", ":")) + "\n"


def _cell(params: dict[str, Any], seed: int, index: int) -> Metaphase:
    rng = _rng(seed, 0, index)
    sex = "XY" if rng.uniform() < params["sex_ratio"] else "XX"
    abnormality = None
    if params["abnormalities"] and rng.uniform() < params["abnormal_fraction"]:
        abnormality = params["abnormalities"][int(rng.integers(len(params["abnormalities"])))]
    return compose_metaphase(
        karyotype_labels(sex, abnormality),
        rng,
        canvas=tuple(params["canvas"]),
        ideogram=params["resolution"],
        width_px=tuple(params["width_px"]),
        chr1_length_px=tuple(params["chr1_length_px"]),
        max_bend_deg=params["max_bend_deg"],
        touch_prob=params["touch_prob"],
        overlap_prob=params["overlap_prob"],
        debris=tuple(params["debris"]),
        nucleus_prob=params["nucleus_prob"],
        blur_sigma=tuple(params["blur_sigma"]),
        noise_sigma=params["noise_sigma"],
        illumination=params["illumination"],
        spread_density=tuple(params["spread_density"]),
    )


def _crops(
    meta: Metaphase, params: dict[str, Any], seed: int, index: int
) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """Upright single-chromosome crops (karyogram style) of one cell's chromosomes."""
    rng = _rng(seed, 2, index)
    ideo = load_ideogram(params["resolution"])
    px_per_unit = meta.cell["chr1_length_px"] / ideo["1"].length
    copies: Counter[str] = Counter()
    out = []
    for label in meta.labels:
        copies[label] += 1
        length = ideo[label].length * px_per_unit * float(rng.uniform(0.93, 1.07))
        chrom = render_straight(
            ideo[label],
            length_px=length,
            width_px=meta.cell["width_px"] * float(rng.uniform(0.93, 1.07)),
            rng=rng,
            contrast=meta.cell["stain"],
            band_blur=meta.cell["band_blur"],
        )
        theta = float(rng.uniform(-1, 1)) * min(0.5, length / (2.0 * meta.cell["width_px"]))
        if abs(theta) > 0.05:
            chrom = bend(chrom, theta, rng=rng)
        grey = od_to_grey(chrom.image, float(rng.uniform(235.0, 250.0)))
        grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=0.7)
        grey += rng.normal(0.0, 1.5, grey.shape).astype(np.float32)
        ys, xs = np.nonzero(chrom.mask)
        pad = 4
        y0, x0 = max(int(ys.min()) - pad, 0), max(int(xs.min()) - pad, 0)
        y1 = min(int(ys.max()) + pad + 1, grey.shape[0])
        x1 = min(int(xs.max()) + pad + 1, grey.shape[1])
        crop = np.clip(np.rint(grey[y0:y1, x0:x1]), 0, 255).astype(np.uint8)
        name = f"{cell_id_for(index)}.K.chr{label}.{copies[label]}.png"
        out.append((name, crop, (chrom.centromere[0] - x0, chrom.centromere[1] - y0)))
    return out


def cell_id_for(index: int) -> str:
    """Cell id of the ``index``-th synthetic cell.

    Examples
    --------
    >>> cell_id_for(3)
    'cell_0003'
    """
    return f"cell_{index:04d}"


def _pairs(params: dict[str, Any], seed: int) -> np.ndarray:
    size = params["pair_size"]
    arr = np.zeros((params["pairs"], size, size, 2), np.uint8)
    ideo = load_ideogram(params["resolution"])
    for i in range(params["pairs"]):
        rng = _rng(seed, 1, i)
        chr1 = float(rng.uniform(0.45, 0.75)) * size
        width = chr1 / float(rng.uniform(5.5, 7.5))
        la, lb = (str(v) for v in rng.choice(LABELS, size=2))
        a, b = (
            render_chromosome(
                lab,
                rng,
                ideogram=ideo,
                px_per_unit=chr1 / ideo["1"].length,
                width_px=width,
                max_bend=np.deg2rad(params["max_bend_deg"]),
            )
            for lab in (la, lb)
        )
        grey, labels = make_overlap_pair(a, b, rng, size=size)
        arr[i, ..., 0], arr[i, ..., 1] = grey, labels
    return arr


def _write_h5(path: Path, pairs: np.ndarray, seed: int, params: dict[str, Any]) -> None:
    with h5py.File(path, "w", libver="earliest", track_order=False) as f:
        kwargs: dict[str, Any] = {"track_times": False}
        if len(pairs):
            kwargs.update(
                chunks=(min(len(pairs), 64), *pairs.shape[1:]),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
        ds = f.create_dataset("pairs", data=pairs, **kwargs)
        for obj in (f, ds):
            obj.attrs["seed"] = int(seed)
            obj.attrs["params"] = json.dumps(params, sort_keys=True)
            obj.attrs["layout"] = "channel 0 grey, channel 1 labels 0 bg, 1 first, 2 second, 3 both"


def _preview(meta: Metaphase, params: dict[str, Any], seed: int) -> np.ndarray:
    """Contact sheet: the metaphase beside ideal straight renders of all 24 chromosomes."""
    rng = _rng(seed, 3)
    ideo = load_ideogram(params["resolution"])
    img = meta.image if meta.image.ndim == 2 else cv2.cvtColor(meta.image, cv2.COLOR_BGR2GRAY)
    h = img.shape[0]
    chr1 = 0.36 * h
    width = chr1 / 6.0
    row_h = int(chr1 + 40)
    tiles = []
    for label in LABELS:
        c = render_straight(
            ideo[label],
            length_px=ideo[label].length * chr1 / ideo["1"].length,
            width_px=width,
            rng=rng,
        )
        g = cv2.GaussianBlur(od_to_grey(c.image, 238.0), (0, 0), sigmaX=0.8)
        tile = np.full((row_h, c.image.shape[1] + 8), 238.0, np.float32)
        tile[: g.shape[0], 4 : 4 + g.shape[1]] = g[:row_h]
        cv2.putText(tile, label, (4, row_h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0.0, 1)
        tiles.append(tile)
    rows = [np.concatenate(tiles[:12], axis=1), np.concatenate(tiles[12:], axis=1)]
    panel_w = max(r.shape[1] for r in rows)
    panel = np.full((h, panel_w + 20), 238.0, np.float32)
    for k, r in enumerate(rows):
        y = 20 + k * (row_h + 20)
        panel[y : y + r.shape[0], 10 : 10 + r.shape[1]] = r[: max(0, h - y)]
    sheet = np.concatenate([img.astype(np.float32), np.full((h, 6), 255.0), panel], axis=1)
    return np.clip(np.rint(sheet), 0, 255).astype(np.uint8)


def _is_synth_output(path: Path) -> bool:
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("generator") == GENERATOR


def _check_target(out: Path) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not _is_synth_output(out):
            raise FileExistsError(
                f"{out} is a non-empty directory that is not a previous synth output; "
                "refusing to replace it"
            )


def _swap_in(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``, replacing an empty or previous synth output directory."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def synthesize(
    out_dir: str | Path,
    params: Mapping[str, Any] | None,
    seed: int,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Generate the synthetic dataset into ``out_dir`` (see the module docstring).

    Everything is a deterministic function of ``params`` and ``seed``. Files are written
    into a temporary sibling directory that is renamed to ``out_dir`` at the end, so a
    failure leaves nothing half-written. An existing ``out_dir`` is replaced only if it
    is empty or a previous synth output (its ``summary.json`` names
    :data:`GENERATOR`).

    VOC boxes: ``xmin``/``ymin``/``xmax``/``ymax`` are the pixel bounding box
    ``(x0, y0, x1, y1)`` of each chromosome mask with ``xmax``/``ymax`` exclusive (one
    past the last pixel), the Taichung convention. Images are single-channel grey
    (``<depth>1</depth>``).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Output directory.
    params : Mapping, optional
        Overrides of :data:`DEFAULT_PARAMS` (validated by :func:`resolve_params`).
    seed : int
        Random seed.
    progress : callable, optional
        Called with a short message after each step.

    Returns
    -------
    dict
        The content of ``summary.json``.

    Raises
    ------
    ValueError
        For invalid params.
    FileExistsError
        If ``out_dir`` is a non-empty directory that is not a previous synth output.
    """
    resolved = resolve_params(params)
    seed = int(seed)
    out = Path(out_dir)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        summary = _generate(tmp, resolved, seed, say)
        os.chmod(tmp, 0o755)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"wrote {out}")
    return summary


def _generate(
    root: Path, params: dict[str, Any], seed: int, say: Callable[[str], None]
) -> dict[str, Any]:
    voc = root / "voc"
    for sub in ("JPEGImages", "Annotations", "masks"):
        (voc / sub).mkdir(parents=True)
    crops_dir = root / "centromeres" / "crops"
    crops_dir.mkdir(parents=True)
    (root / "overlaps").mkdir()

    karyotypes: dict[str, str] = {}
    per_label: Counter[str] = Counter()
    table = io.StringIO()
    rows = csv.writer(table, lineterminator="\n")
    rows.writerow(["filename", "karyotype"])
    cen_table = io.StringIO()
    cen_rows = csv.writer(cen_table, lineterminator="\n")
    cen_rows.writerow(["chr", "tel", "x", "y"])
    n_objects = n_crops = 0
    preview = None
    for i in range(params["cells"]):
        cell_id = cell_id_for(i)
        meta = _cell(params, seed, i)
        filename = f"{cell_id}.{params['image_format']}"
        (voc / "JPEGImages" / filename).write_bytes(_encode(meta.image, params["image_format"]))
        (voc / "Annotations" / f"{cell_id}.xml").write_text(
            _voc_xml(filename, meta.image, meta.objects), encoding="utf-8"
        )
        (voc / "masks" / f"{cell_id}.json").write_text(
            _mask_json(filename, meta.objects), encoding="utf-8"
        )
        rows.writerow([filename, meta.karyotype])
        karyotypes[cell_id] = meta.karyotype
        per_label.update(obj["label"] for obj in meta.objects)
        n_objects += len(meta.objects)
        if i < params["centromere_crops"]:
            for name, crop, (x, y) in _crops(meta, params, seed, i):
                (crops_dir / name).write_bytes(_encode(crop, "png"))
                cen_rows.writerow([name, "", f"{x:.2f}", f"{y:.2f}"])
                n_crops += 1
        if i == 0:
            preview = _preview(meta, params, seed)
        say(f"cell {i + 1}/{params['cells']}: {meta.karyotype}")
    (voc / "karyotypes.csv").write_text(table.getvalue(), encoding="utf-8")
    (root / "centromeres" / "centromeres.csv").write_text(cen_table.getvalue(), encoding="utf-8")
    if preview is not None:
        (root / "preview.png").write_bytes(_encode(preview, "png"))

    pairs = _pairs(params, seed)
    _write_h5(root / "overlaps" / "overlaps.h5", pairs, seed, params)
    say(f"overlapping pairs: {len(pairs)}")

    summary = {
        "generator": GENERATOR,
        "seed": seed,
        "cells": params["cells"],
        "objects": n_objects,
        "objects_per_label": {lab: per_label[lab] for lab in LABELS},
        "karyotypes": karyotypes,
        "pairs": len(pairs),
        "centromere_crops": n_crops,
        "params": params,
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
