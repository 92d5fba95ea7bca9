"""The preprocessing chain: manifest rows -> model-ready chromosome images.

Per instance (:func:`preprocess_instance`)::

    crop (box + margin) -> polarity (dark on light) -> NLM denoise -> CLAHE
      -> mask -> straighten -> orient -> tight crop -> pad_resize (every size)

and, for training rows, ``augment.copies`` augmented copies of every size
(:func:`preprocess_rows`). The annotated centromere (if any) is carried through every
geometric step. Whole metaphases are only decoded and converted to grey; everything else
runs on the crop. Parameters: :data:`DEFAULT_PARAMS`, merged and checked by
:func:`resolve_params`.
"""

from __future__ import annotations

import copy
import gc
import inspect
import math
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from karyoflow.engine.params import merge_params
from karyoflow.imageio import ImageReadError, read_image
from karyoflow.preprocess import mask as _mask
from karyoflow.preprocess.augment import DEFAULT_AUGMENT, augment
from karyoflow.preprocess.intensity import (
    background_level,
    clahe,
    crop_box,
    denoise_nlm,
    normalise_polarity,
    to_grey,
)
from karyoflow.preprocess.resize import map_points, pad_resize
from karyoflow.split import stable_seed

__all__ = [
    "DEFAULT_PARAMS",
    "STRAIGHTEN_METHODS",
    "InstanceResult",
    "ShardData",
    "load_source",
    "preprocess_grey",
    "preprocess_instance",
    "preprocess_rows",
    "resolve_params",
]

#: Straightening methods (``straighten.method``).
STRAIGHTEN_METHODS: tuple[str, ...] = ("medial_axis", "projection", "none")
#: Manifest kinds whose source image *is* the chromosome (the box is the whole image).
WHOLE_IMAGE_KINDS: tuple[str, ...] = ("crop", "centromere")


def _keyword_defaults(func: Callable[..., Any], exclude: tuple[str, ...]) -> dict[str, Any]:
    """Keyword parameters of ``func`` that have defaults (its tunable knobs)."""
    out = {}
    for name, par in inspect.signature(func).parameters.items():
        if name in exclude or par.default is inspect.Parameter.empty:
            continue
        if par.kind in (par.KEYWORD_ONLY, par.POSITIONAL_OR_KEYWORD):
            out[name] = par.default
    return out


#: Default parameters of every step. ``mask`` holds the keyword arguments of
#: :func:`karyoflow.preprocess.mask.chromosome_mask` (taken from its signature) plus
#: ``enabled`` and ``background`` (fill outside the mask; ``None``: median outside).
#: ``straighten.options`` / ``orient.options`` are passed on as keyword arguments.
#: ``resize.pad``: pixels kept around the mask's bounding box before resizing.
#: ``sizes``: name -> ``[height, width]``; given sizes replace the default set.
DEFAULT_PARAMS: dict[str, Any] = {
    "crop": {"margin": 8},
    "polarity": {"mode": "auto"},
    "denoise": {"enabled": True, "h": 7.0, "template": 5, "search": 7},
    "clahe": {"enabled": True, "clip_limit": 2.0, "tile_grid": 4},
    "mask": {
        "enabled": True,
        "background": None,
        **_keyword_defaults(_mask.chromosome_mask, ("grey", "box")),
    },
    "straighten": {"method": "medial_axis", "options": {}},
    "orient": {"enabled": True, "options": {}},
    "resize": {"pad": 2},
    "sizes": {"96x48": [96, 48]},
    "augment": {"copies": 2, **copy.deepcopy(DEFAULT_AUGMENT)},
}

#: Option tables a config replaces whole (free-form keyword options, the size table).
_FREE_FORM = ("straighten.options", "orient.options", "sizes")


def resolve_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Deep-merge ``params`` over :data:`DEFAULT_PARAMS` and check them.

    Raises
    ------
    ValueError
        Naming the first unknown key (dotted, e.g. ``'denoise.strength'``) or bad value.

    Examples
    --------
    >>> p = resolve_params({"denoise": {"enabled": False}, "sizes": {"64": [64, 64]}})
    >>> p["denoise"], p["sizes"]
    ({'enabled': False, 'h': 7.0, 'template': 5, 'search': 7}, {'64': [64, 64]})
    >>> resolve_params({"clahe": {"clip": 3}})
    Traceback (most recent call last):
    ...
    ValueError: unknown preprocessing parameter 'clahe.clip'
    """
    out = merge_params(
        DEFAULT_PARAMS, params, what="preprocessing parameter", nested=True, replace=_FREE_FORM
    )
    for step in ("denoise", "clahe", "mask", "orient"):
        if not isinstance(out[step]["enabled"], bool):
            raise ValueError(f"{step}.enabled must be true or false")
    if out["polarity"]["mode"] not in ("auto", "dark_on_light", "light_on_dark"):
        raise ValueError(f"polarity.mode: unknown mode {out['polarity']['mode']!r}")
    if out["straighten"]["method"] not in STRAIGHTEN_METHODS:
        raise ValueError(f"straighten.method must be one of {list(STRAIGHTEN_METHODS)}")
    dn = out["denoise"]
    if int(dn["template"]) % 2 == 0 or int(dn["search"]) % 2 == 0:
        raise ValueError("denoise.template and denoise.search must be odd")
    if int(out["crop"]["margin"]) < 0 or int(out["resize"]["pad"]) < 0:
        raise ValueError("crop.margin and resize.pad must be >= 0")
    if not out["sizes"]:
        raise ValueError("sizes: at least one output size is needed")
    for name, hw in out["sizes"].items():
        if len(hw) != 2 or min(int(v) for v in hw) < 1:
            raise ValueError(f"sizes.{name}: expected [height, width], got {hw!r}")
        out["sizes"][name] = [int(v) for v in hw]
    if int(out["augment"]["copies"]) < 0:
        raise ValueError("augment.copies must be >= 0")
    return out


# --------------------------------------------------------------------------- one instance


@dataclass
class InstanceResult:
    """What :func:`preprocess_instance` made of one manifest row."""

    #: size name -> uint8 (H, W) image (empty when rejected)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    #: size name -> (x, y) of the annotated centromere in that image, or (nan, nan)
    centromere: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: "raw", "enhanced", "masked", "straightened" (the final image before resizing)
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    #: "ok" or the reject reason
    status: str = "ok"
    straightened: bool = False
    flipped: bool = False
    #: centromere row estimated from the mask, as a fraction of the length (0 = top)
    estimated_centromere_y: float = math.nan
    #: background grey level of the final images (fill for padding and augmentation)
    background: int = 255
    #: chromosome length (rows of the final, vertical mask) and area in source pixels,
    #: before resizing: the size information that fitting every crop to one output
    #: size removes (see :func:`karyoflow.tasks.classification.features.relative_size_features`)
    length_px: float = math.nan
    area_px: float = math.nan


def _row_box(row: Mapping[str, Any], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if str(row.get("kind", "")) in WHOLE_IMAGE_KINDS:
        return 0, 0, int(shape[1]), int(shape[0])
    return int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"])


def _affine(matrix: np.ndarray, pt: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    return pt @ m[:, :2].T + m[:, 2]


def _estimated_fraction(mask: np.ndarray, y: float) -> float:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0 or not np.isfinite(y):
        return math.nan
    top, bottom = float(rows[0]), float(rows[-1])
    return float(np.clip((y - top) / max(bottom - top, 1.0), 0.0, 1.0))


def preprocess_instance(
    source_image: np.ndarray, row: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> InstanceResult:
    """Run the chain on one manifest row.

    Parameters
    ----------
    source_image : numpy.ndarray
        The row's decoded ``source`` (any depth/channels; converted by
        :func:`~karyoflow.preprocess.intensity.to_grey`, a no-op for 8-bit grey).
    row : mapping
        Manifest row: ``kind``, ``x0``..``y1``, ``centromere_x``/``_y`` are used. Rows of
        kind ``crop``/``centromere`` use the whole image.
    params : mapping, optional
        Step parameters (merged over :data:`DEFAULT_PARAMS`).

    Returns
    -------
    InstanceResult
        ``status`` is ``"ok"`` or a reject reason (``"empty mask"``, ...); geometry
        step failures are reported, not raised.

    Examples
    --------
    >>> img = np.full((60, 60), 230, np.uint8); img[15:45, 25:33] = 60
    >>> row = {"kind": "metaphase", "x0": 25, "y0": 15, "x1": 33, "y1": 45,
    ...        "centromere_x": 29.0, "centromere_y": 25.0}
    >>> p = {"straighten": {"method": "none"}, "orient": {"enabled": False},
    ...      "sizes": {"s": [32, 16]}}
    >>> res = preprocess_instance(img, row, p)
    >>> res.status, res.images["s"].shape, res.images["s"].dtype.name
    ('ok', (32, 16), 'uint8')
    """
    return preprocess_grey(to_grey(source_image), row, resolve_params(params))


def preprocess_grey(grey: np.ndarray, row: Mapping[str, Any], p: dict[str, Any]) -> InstanceResult:
    """:func:`preprocess_instance` on an 8-bit grey ``(H, W)`` image with resolved
    parameters ``p`` (:func:`resolve_params`): no conversion, no merge (for callers
    that run many rows of one image)."""
    res = InstanceResult()
    box = _row_box(row, grey.shape)
    margin = int(p["crop"]["margin"])
    try:
        crop, inner = crop_box(grey, box, margin)
    except ValueError as exc:
        res.status = f"bad box: {exc}"
        return res
    cx, cy = float(row.get("centromere_x", math.nan)), float(row.get("centromere_y", math.nan))
    pt = np.array([[cx - box[0] + margin, cy - box[1] + margin]], dtype=np.float64)
    res.stages["raw"] = crop
    img, _ = normalise_polarity(crop, mode=p["polarity"]["mode"])
    dn = p["denoise"]
    if dn["enabled"]:
        img = denoise_nlm(img, h=dn["h"], template=int(dn["template"]), search=int(dn["search"]))
    cl = p["clahe"]
    if cl["enabled"]:
        img = clahe(img, clip_limit=cl["clip_limit"], tile_grid=int(cl["tile_grid"]))
    res.stages["enhanced"] = img

    if p["mask"]["enabled"]:
        mk = {k: v for k, v in p["mask"].items() if k not in ("enabled", "background")}
        m = _mask.chromosome_mask(img, box=inner, **mk)
        if not m.any():
            res.status = "empty mask"
            return res
        bg_fill = p["mask"]["background"]
        img = _mask.apply_mask(img, m, background=bg_fill)
        res.stages["masked"] = img
        method = p["straighten"]["method"]
        if method != "none":
            from karyoflow.preprocess.straighten import straighten

            sr = straighten(img, m, method=method, **p["straighten"]["options"])
            if sr.applied:
                pt = np.asarray(sr.map_points(pt), dtype=np.float64).reshape(-1, 2)
                img, m = sr.image, np.asarray(sr.mask, bool)
                res.straightened = True
        if p["orient"]["enabled"]:
            from karyoflow.preprocess.orient import orient

            # medial-axis output is vertical by construction: no second resampling
            vertical = res.straightened and method == "medial_axis"
            orr = orient(img, m, **{"rotate": not vertical, **p["orient"]["options"]})
            pt = _affine(orr.matrix, pt)
            img, m = orr.image, np.asarray(orr.mask, bool)
            res.flipped = bool(orr.flipped)
            est_y = float(orr.centromere[1])
        else:
            from karyoflow.preprocess.orient import estimate_centromere

            est_y = float(estimate_centromere(m))
        if not m.any():
            res.status = "empty mask after straightening"
            return res
        res.estimated_centromere_y = _estimated_fraction(m, est_y)
        res.length_px = float(np.count_nonzero(m.any(axis=1)))
        res.area_px = float(np.count_nonzero(m))
        bg = int(bg_fill) if bg_fill is not None else _mask.background_level(img, m)
        # Tight crop around the chromosome, so it fills the output.
        ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        tight = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
        pad = int(p["resize"]["pad"])
        img, _ = crop_box(img, tight, pad, fill=bg)
        pt = pt - np.array([tight[0] - pad, tight[1] - pad], dtype=np.float64)
    else:
        bg = int(background_level(img))
        res.length_px = float(max(box[3] - box[1], box[2] - box[0]))
        res.area_px = float((box[3] - box[1]) * (box[2] - box[0]))
    res.stages["straightened"] = img
    res.background = bg
    for name, (height, width) in p["sizes"].items():
        out, scale, offset = pad_resize(img, (height, width), background=bg)
        res.images[name] = out
        x, y = map_points(pt, scale, offset)[0].tolist()
        res.centromere[name] = (x, y)
    return res


# --------------------------------------------------------------------------- many rows


@dataclass
class ShardData:
    """Preprocessed images of many rows plus aligned metadata (one entry per image).

    All 1-D arrays have one entry per output image (originals and augmented copies);
    ``images[size]`` is ``(N, H, W)`` uint8 and ``centromere[size]`` ``(N, 2)`` float32
    ``(x, y)`` in that size's pixels (NaN where unknown).
    """

    images: dict[str, np.ndarray]
    centromere: dict[str, np.ndarray]
    row: np.ndarray  # int64, position in the full manifest
    instance_id: np.ndarray  # object (str)
    cell_id: np.ndarray  # object (str)
    dataset: np.ndarray  # object (str)
    label_index: np.ndarray  # int16
    split: np.ndarray  # object (str)
    augmented: np.ndarray  # uint8: 0 original, k >= 1 copy index
    straightened: np.ndarray  # uint8 0/1
    flipped: np.ndarray  # uint8 0/1
    estimated_centromere_y: np.ndarray  # float32, fraction of length (NaN unknown)
    length_px: np.ndarray  # float32, chromosome length in source pixels
    area_px: np.ndarray  # float32, mask area in source pixels
    #: (instance_id, source, reason)
    rejects: list[tuple[str, str, str]] = field(default_factory=list)
    #: QC samples: {"label_index", "instance_id", "dataset", "stages": {name: array}}
    qc: list[dict[str, Any]] = field(default_factory=list)

    META: ClassVar[tuple[str, ...]] = (
        "row",
        "instance_id",
        "cell_id",
        "dataset",
        "label_index",
        "split",
        "augmented",
        "straightened",
        "flipped",
        "estimated_centromere_y",
        "length_px",
        "area_px",
    )

    def __len__(self) -> int:
        return int(self.row.shape[0])

    @classmethod
    def empty(cls, sizes: Mapping[str, tuple[int, int]]) -> ShardData:
        """A shard with no images for ``sizes`` (name -> (height, width))."""
        return cls.from_lists({n: (int(h), int(w)) for n, (h, w) in sizes.items()}, [], [])

    @classmethod
    def from_lists(
        cls,
        sizes: Mapping[str, tuple[int, int]],
        entries: list[dict[str, Any]],
        rejects: list[tuple[str, str, str]],
        qc: list[dict[str, Any]] | None = None,
    ) -> ShardData:
        """Build from per-image dicts (keys: :attr:`META`, ``images``, ``centromere``)."""
        images, cents = {}, {}
        for name, (h, w) in sizes.items():
            if entries:
                images[name] = np.stack([e["images"][name] for e in entries]).astype(np.uint8)
                cents[name] = np.array([e["centromere"][name] for e in entries], np.float32)
            else:
                images[name] = np.zeros((0, h, w), np.uint8)
                cents[name] = np.zeros((0, 2), np.float32)

        def col(key: str, dtype: Any) -> np.ndarray:
            return np.array([e[key] for e in entries], dtype=dtype).reshape(len(entries))

        return cls(
            images=images,
            centromere=cents,
            row=col("row", np.int64),
            instance_id=col("instance_id", object),
            cell_id=col("cell_id", object),
            dataset=col("dataset", object),
            label_index=col("label_index", np.int16),
            split=col("split", object),
            augmented=col("augmented", np.uint8),
            straightened=col("straightened", np.uint8),
            flipped=col("flipped", np.uint8),
            estimated_centromere_y=col("estimated_centromere_y", np.float32),
            length_px=col("length_px", np.float32),
            area_px=col("area_px", np.float32),
            rejects=list(rejects),
            qc=list(qc or []),
        )


def load_source(source: str, frame: int = -1) -> np.ndarray:
    """Decode a manifest ``source`` to 8-bit grey (single images only, ``frame == -1``).

    Raises
    ------
    ImageReadError
        If the file is damaged, or ``frame`` points into a multi-image file.
    """
    if int(frame) >= 0:
        raise ImageReadError(source, f"unsupported source (frame {frame} of a multi-image file)")
    return to_grey(read_image(source))


def preprocess_rows(
    rows: pd.DataFrame,
    params: Mapping[str, Any] | None,
    seed: int,
    *,
    log: Callable[[str], None] = print,
    image_cache: MutableMapping[tuple[str, int], np.ndarray] | None = None,
    loader: Callable[[str, int], np.ndarray] = load_source,
    log_every: int = 1000,
    qc_per_class: int = 3,
) -> ShardData:
    """Preprocess many manifest rows (one shard).

    Rows are processed sorted by ``(source, row)``; each source is decoded and converted
    to grey once (kept while its rows are processed, or stored in ``image_cache`` when
    one is given). Training rows (``split == "train"``) also get ``augment.copies``
    augmented copies of every size, each drawn from
    ``np.random.default_rng(stable_seed(seed, "augment", dataset, instance_id, k))``.
    Unreadable sources and rejected instances are collected in ``rejects``; nothing
    is raised for bad data.

    Parameters
    ----------
    rows : pandas.DataFrame
        Manifest rows; a ``row`` column (position in the full manifest) is used when
        present, else the frame's positional index.
    params : mapping or None
        Step parameters (see :data:`DEFAULT_PARAMS`).
    seed : int
        Augmentation seed.
    log : callable
        Progress messages (every ``log_every`` rows, with rows/s).
    image_cache : mutable mapping, optional
        ``(source, frame) -> grey image``; shared between calls when given.
    loader : callable
        ``(source, frame) -> grey uint8 image``; default :func:`load_source`.
    qc_per_class : int
        Instances per label whose stages are kept in ``qc``.

    Returns
    -------
    ShardData
    """
    p = resolve_params(params)
    sizes = {n: (h, w) for n, (h, w) in p["sizes"].items()}
    copies = int(p["augment"]["copies"])
    aug_params = {k: v for k, v in p["augment"].items() if k != "copies"}
    df = rows.copy()
    if "row" not in df.columns:
        df["row"] = np.arange(len(df), dtype=np.int64)
    df = df.sort_values(["source", "row"], kind="stable")

    # The loop allocates many small containers that all live to the end: the cyclic
    # garbage collector would re-scan them over and over (about 5 % of the run time on
    # 20,000 crops) and has nothing to free. It is switched off for the loop only.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _preprocess_rows(
            df,
            p,
            sizes,
            copies,
            aug_params,
            seed,
            log,
            image_cache,
            loader,
            log_every,
            qc_per_class,
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def _preprocess_rows(
    df: pd.DataFrame,
    p: dict[str, Any],
    sizes: dict[str, tuple[int, int]],
    copies: int,
    aug_params: dict[str, Any],
    seed: int,
    log: Callable[[str], None],
    image_cache: MutableMapping[tuple[str, int], np.ndarray] | None,
    loader: Callable[[str, int], np.ndarray],
    log_every: int,
    qc_per_class: int,
) -> ShardData:
    entries: list[dict[str, Any]] = []
    rejects: list[tuple[str, str, str]] = []
    qc: list[dict[str, Any]] = []
    qc_count: dict[int, int] = {}
    current_key: tuple[str, int] | None = None
    current: np.ndarray | ImageReadError | OSError | None = None
    start = time.perf_counter()
    n_ok = 0
    for i, rec in enumerate(df.to_dict("records"), start=1):
        source, frame = str(rec["source"]), int(rec.get("frame", -1))
        instance_id = str(rec["instance_id"])
        key = (source, frame)
        if key != current_key:
            current_key = key
            if image_cache is not None and key in image_cache:
                current = image_cache[key]
            else:
                try:
                    current = loader(source, frame)
                except (ImageReadError, OSError, ValueError) as exc:
                    current = exc
                if image_cache is not None and isinstance(current, np.ndarray):
                    image_cache[key] = current
        if not isinstance(current, np.ndarray):
            reason = getattr(current, "reason", None) or str(current)
            rejects.append((instance_id, source, f"unreadable source: {reason}"))
            continue
        try:
            res = preprocess_grey(current, rec, p)
        except Exception as exc:  # a bug in one step must not lose the whole shard
            res = InstanceResult(status=f"error: {type(exc).__name__}: {exc}")
            log(f"{instance_id} ({source}): {res.status}")
        if res.status != "ok":
            rejects.append((instance_id, source, res.status))
            continue
        n_ok += 1
        base = {
            "row": int(rec["row"]),
            "instance_id": instance_id,
            "cell_id": str(rec.get("cell_id", "")),
            "dataset": str(rec.get("dataset", "")),
            "label_index": int(rec.get("label_index", -1)),
            "split": str(rec.get("split", "")),
            "straightened": int(res.straightened),
            "flipped": int(res.flipped),
            "estimated_centromere_y": res.estimated_centromere_y,
            "length_px": res.length_px,
            "area_px": res.area_px,
        }
        entries.append({**base, "augmented": 0, "images": res.images, "centromere": res.centromere})
        label = base["label_index"]
        if qc_count.get(label, 0) < qc_per_class:
            qc_count[label] = qc_count.get(label, 0) + 1
            qc.append(
                {
                    "label_index": label,
                    "instance_id": instance_id,
                    "dataset": base["dataset"],
                    "stages": dict(res.stages),
                }
            )
        if base["split"] == "train":
            for k in range(1, copies + 1):
                seed_k = stable_seed(seed, "augment", base["dataset"], instance_id, k)
                imgs, cents = {}, {}
                for name in sizes:
                    rng = np.random.default_rng(seed_k)
                    imgs[name], cents[name] = augment(
                        res.images[name],
                        rng,
                        aug_params,
                        background=res.background,
                        point=res.centromere[name],
                    )
                entries.append({**base, "augmented": k, "images": imgs, "centromere": cents})
        if log_every and i % log_every == 0:
            rate = i / max(time.perf_counter() - start, 1e-9)
            log(f"preprocess: {i}/{len(df)} rows, {n_ok} ok, {rate:.0f} rows/s")
    elapsed = time.perf_counter() - start
    log(
        f"preprocess: {len(df)} rows in {elapsed:.1f} s ({len(df) / max(elapsed, 1e-9):.0f} "
        f"rows/s), {n_ok} ok, {len(rejects)} rejected, {len(entries)} images"
    )
    return ShardData.from_lists(sizes, entries, rejects, qc)
