"""HDF5 shards and the merged, model-ready datasets.

Every file is written through a temporary name and renamed (nothing half-written is
left behind) and is byte-deterministic: same data, same bytes. Object times are off for
every dataset *and group, the root included* (``track_times=False`` / an FCPL and GCPL
with ``set_obj_track_times(False)``; h5py's ``create_group`` and ``File`` would store
the current second), the library format is pinned (:data:`LIBVER`) and chunk shapes,
compression and write order are fixed.

Merged layout (``<out_dir>/<size>/<split>.h5``), ``N`` images, ``H x W`` pixels:

================================  =========================  ==========================
dataset                           dtype, shape               meaning
================================  =========================  ==========================
``images``                        uint8 (N, H, W)            chunk (1, H, W), gzip 4
``labels``                        int16 (N,)                 label index 0-23 (-1 none)
``rows``                          int64 (N,)                 row in the dataset manifest
``instance_ids``                  UTF-8 str (N,)             manifest ``instance_id``
``cell_ids``                      UTF-8 str (N,)             manifest ``cell_id``
``datasets``                      UTF-8 str (N,)             manifest ``dataset``
``centromere``                    float32 (N, 2)             (x, y) in image px, NaN
``augmented``                     uint8 (N,)                 0 original, k copy index
``straightened``, ``flipped``     uint8 (N,)                 0/1
``estimated_centromere_y``        float32 (N,)               from the mask, 0 = top
``length_px``, ``area_px``        float32 (N,)               size in source px (resize
                                                             removes it)
================================  =========================  ==========================

Attributes: ``params`` (JSON of every step's parameters), ``seed``, ``size`` (name),
``height``, ``width``, ``split``, ``label_names`` (JSON list of the 24 labels),
``n_images``, ``n_instances`` (originals), ``n_augmented``, ``class_counts`` (JSON,
originals per label index), ``format`` and any extra ``attrs`` given to
:func:`merge_shards`. Images are ordered by ``(dataset, row, augmented)``, so the result
does not depend on how the manifest was sharded.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from karyoflow.fileutil import atomic_path
from karyoflow.labels import LABELS
from karyoflow.preprocess.chain import ShardData

__all__ = ["FORMAT", "LIBVER", "merge_shards", "read_rows", "read_shard", "write_shard"]

#: Format tag stored in every file's ``format`` attribute.
FORMAT = "karyoflow-preprocess/2"
#: HDF5 library format bounds (pinned for byte-identical files).
LIBVER = ("v110", "v110")
#: gzip level of the image datasets.
GZIP_LEVEL = 4
#: Images :func:`merge_shards` copies at a time (its memory bound).
MERGE_BLOCK = 1024

_STR = h5py.string_dtype("utf-8")
_MERGED_NAMES = {
    "label_index": "labels",
    "row": "rows",
    "instance_id": "instance_ids",
    "cell_id": "cell_ids",
    "dataset": "datasets",
}


def _open_new(path: Path) -> h5py.File:
    """A new file whose root group stores no creation/modification times."""
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(*(getattr(h5py.h5f, f"LIBVER_{v.upper()}") for v in LIBVER))
    fid = h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fapl=fapl, fcpl=fcpl)
    return h5py.File(fid)


def _group(parent: h5py.Group, name: str) -> h5py.Group:
    """``parent.create_group(name)`` without creation/modification times."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_char_encoding(h5py.h5t.CSET_UTF8)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), lcpl=lcpl, gcpl=gcpl))


def _attr_value(value: Any) -> Any:
    if isinstance(value, str | int | float | bool | np.integer | np.floating):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _put(group: h5py.Group, name: str, data: np.ndarray, **kw: Any) -> None:
    if data.dtype == object:
        group.create_dataset(name, data=[str(v) for v in data], dtype=_STR, track_times=False)
    else:
        group.create_dataset(name, data=data, track_times=False, **kw)


def _put_images(group: h5py.Group, name: str, images: np.ndarray) -> None:
    ds = _new_images(group, name, *images.shape)
    if len(images):
        ds[...] = images


def _strings(ds: h5py.Dataset) -> np.ndarray:
    return np.array(ds.asstr()[()], dtype=object).reshape(ds.shape)


def _set_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    for key in sorted(attrs):
        obj.attrs[key] = _attr_value(attrs[key])


def write_shard(path: str | Path, shard: ShardData, attrs: Mapping[str, Any] | None = None) -> None:
    """Write one :class:`~karyoflow.preprocess.chain.ShardData` (all sizes and splits).

    Layout: ``sizes/<name>/images`` and ``sizes/<name>/centromere``, the metadata arrays
    at the root under their :attr:`ShardData.META` names, ``rejects/{instance_id,source,
    reason}`` and ``qc/<i>/<stage>`` with the sample's label, instance and dataset as
    attributes.
    """
    with atomic_path(path) as tmp, _open_new(tmp) as h5:
        _set_attrs(h5, {"format": FORMAT, **(attrs or {})})
        sizes = _group(h5, "sizes")
        for name in sorted(shard.images):
            g = _group(sizes, name)
            _put_images(g, "images", shard.images[name])
            _put(g, "centromere", shard.centromere[name].astype(np.float32))
        for key in ShardData.META:
            _put(h5, key, getattr(shard, key))
        rej = _group(h5, "rejects")
        cols = list(zip(*shard.rejects, strict=True)) if shard.rejects else [(), (), ()]
        for key, values in zip(("instance_id", "source", "reason"), cols, strict=True):
            _put(rej, key, np.array(list(values), dtype=object))
        qc = _group(h5, "qc")
        for i, sample in enumerate(shard.qc):
            g = _group(qc, f"{i:05d}")
            _set_attrs(g, {k: sample[k] for k in ("label_index", "instance_id", "dataset")})
            for stage in sorted(sample["stages"]):
                _put(g, stage, np.asarray(sample["stages"][stage]))


def read_shard(path: str | Path) -> ShardData:
    """Read a file written by :func:`write_shard`."""
    with h5py.File(path, "r") as h5:
        images = {n: g["images"][()] for n, g in h5["sizes"].items()}
        cents = {n: g["centromere"][()] for n, g in h5["sizes"].items()}
        meta = {}
        for key in ShardData.META:
            ds = h5[key]
            meta[key] = _strings(ds) if h5py.check_string_dtype(ds.dtype) else ds[()]
        rej = h5["rejects"]
        rejects = list(
            zip(
                *(_strings(rej[k]).tolist() for k in ("instance_id", "source", "reason")),
                strict=True,
            )
        )
        qc = []
        for name in sorted(h5["qc"]):
            g = h5["qc"][name]
            qc.append(
                {
                    "label_index": int(g.attrs["label_index"]),
                    "instance_id": str(g.attrs["instance_id"]),
                    "dataset": str(g.attrs["dataset"]),
                    "stages": {k: g[k][()] for k in g},
                }
            )
    return ShardData(images=images, centromere=cents, rejects=rejects, qc=qc, **meta)


def merge_shards(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    split_names: Sequence[str] = ("train", "val", "test"),
    sizes: Mapping[str, Sequence[int]] | Sequence[str],
    attrs: Mapping[str, Any] | None = None,
    block: int = MERGE_BLOCK,
) -> dict[tuple[str, str], Path]:
    """Concatenate shards into ``out_dir/<size>/<split>.h5``, one file per pair.

    Images are copied ``block`` rows at a time from the open shards, so the memory
    held is one block of images plus the per-row metadata, whatever the dataset's size.

    Parameters
    ----------
    paths : iterable of path
        Shard files (:func:`write_shard`), in any order.
    out_dir : path
        Output root.
    split_names : sequence of str
        Splits to write; a split without images still gets a valid 0-row file.
    sizes : mapping or sequence of str
        Size name -> ``(height, width)``, or just the names (shapes are then taken from
        the shards; every shard, even an empty one, records them).
    attrs : mapping, optional
        Extra file attributes, e.g. ``{"params": ..., "seed": ...}`` (non-scalars are
        stored as JSON).
    block : int
        Images read and written at a time (the bytes do not depend on it).

    Returns
    -------
    dict
        ``(size, split) -> path``.
    """
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(h5py.File(p, "r")) for p in sorted(Path(p) for p in paths)]
        meta = _shard_meta(files)
        order = (
            np.lexsort((meta["augmented"], meta["row"], meta["dataset"].astype(str)))
            if len(meta["row"])
            else np.zeros(0, np.int64)
        )
        split_col = meta["split"].astype(str)
        if not isinstance(sizes, Mapping):
            if not files:
                raise ValueError(
                    "merge_shards: give sizes as name -> (height, width) without shards"
                )
            sizes = {n: files[0]["sizes"][n]["images"].shape[1:] for n in sizes}
        out: dict[tuple[str, str], Path] = {}
        for size, (height, width) in sizes.items():
            images = []
            for f in files:
                ds = f["sizes"][size]["images"]
                if ds.shape[1:] != (height, width):
                    raise ValueError(
                        f"{f.filename}: size {size}: the shard holds {ds.shape[1:]}, "
                        f"expected {(height, width)}"
                    )
                images.append(ds)
            cents = [f["sizes"][size]["centromere"][()] for f in files]
            all_cents = np.concatenate(cents) if cents else np.zeros((0, 2), np.float32)
            for split in split_names:
                idx = order[split_col[order] == split]
                path = Path(out_dir) / size / f"{split}.h5"
                labels = meta["label_index"][idx].astype(np.int16)
                aug = meta["augmented"][idx].astype(np.uint8)
                originals = labels[aug == 0].astype(np.int64)
                counts = np.bincount(originals[originals >= 0], minlength=len(LABELS))
                file_attrs = {
                    **(attrs or {}),
                    "format": FORMAT,
                    "size": size,
                    "height": int(height),
                    "width": int(width),
                    "split": split,
                    "label_names": list(LABELS),
                    "n_images": len(idx),
                    "n_instances": int((aug == 0).sum()),
                    "n_augmented": int((aug > 0).sum()),
                    "class_counts": counts.tolist(),
                }
                with atomic_path(path) as tmp, _open_new(tmp) as h5:
                    _set_attrs(h5, file_attrs)
                    target = _new_images(h5, "images", len(idx), height, width)
                    for start in range(0, len(idx), block):
                        rows = idx[start : start + block]
                        target[start : start + len(rows)] = read_rows(
                            images, meta["shard"][rows], meta["local"][rows], height, width
                        )
                    _put(h5, "labels", labels)
                    for key in ("row", "instance_id", "cell_id", "dataset"):
                        col = meta[key][idx]
                        col = col.astype(object) if key != "row" else col.astype(np.int64)
                        _put(h5, _MERGED_NAMES[key], col)
                    _put(h5, "centromere", all_cents[idx].astype(np.float32).reshape(-1, 2))
                    for key in ("augmented", "straightened", "flipped"):
                        _put(h5, key, meta[key][idx].astype(np.uint8))
                    for key in ("estimated_centromere_y", "length_px", "area_px"):
                        _put(h5, key, meta[key][idx].astype(np.float32))
                out[(size, split)] = path
    return out


def _shard_meta(files: Sequence[h5py.File]) -> dict[str, np.ndarray]:
    """The :attr:`ShardData.META` columns of open shards, concatenated, with each row's
    ``shard`` (index into ``files``) and ``local`` (row within that shard)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*ShardData.META, "shard", "local")}
    for i, f in enumerate(files):
        n = 0
        for key in ShardData.META:
            ds = f[key]
            col = _strings(ds) if h5py.check_string_dtype(ds.dtype) else ds[()]
            parts[key].append(col)
            n = len(col)
        parts["shard"].append(np.full(n, i, np.int64))
        parts["local"].append(np.arange(n, dtype=np.int64))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def read_rows(
    images: Sequence[h5py.Dataset], file: np.ndarray, local: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Images gathered from several HDF5 image datasets, in the order asked.

    Parameters
    ----------
    images : sequence of h5py.Dataset
        ``(N_i, H, W)`` uint8 datasets (the ``images`` of merged files or of shards).
    file, local : (n,) int arrays
        For each image to read, the index of its dataset in ``images`` and its row there.
    height, width : int
        Image size (the shape of an empty result).

    Returns
    -------
    (n, H, W) uint8 array
        Row ``k`` is ``images[file[k]][local[k]]``; each dataset is read once, in
        increasing row order (as HDF5 reads fastest).
    """
    out = np.empty((len(local), height, width), np.uint8)
    for i in np.unique(file):
        at = np.flatnonzero(file == i)
        ds = images[int(i)]
        if _one_gzip_chunk_per_image(ds):
            # a chunk is one image: inflate it directly (h5py's point selections cost
            # ~0.15 ms an image, 25 times more)
            for k, row in zip(at, local[at], strict=True):
                mask, raw = ds.id.read_direct_chunk((int(row), 0, 0))
                out[k] = np.frombuffer(
                    zlib.decompress(raw) if mask == 0 else raw, np.uint8
                ).reshape(height, width)
            continue
        # h5py reads strictly increasing rows: each distinct row once, then spread
        rows, back = np.unique(local[at], return_inverse=True)
        out[at] = ds[rows][back]
    return out


def _one_gzip_chunk_per_image(ds: h5py.Dataset) -> bool:
    """The layout :func:`_new_images` writes: chunks of one image, gzip the only filter."""
    return (
        ds.chunks == (1, *ds.shape[1:])
        and ds.compression == "gzip"
        and not ds.shuffle
        and not ds.fletcher32
        and ds.scaleoffset is None
        and ds.dtype == np.uint8
    )


def _new_images(group: h5py.Group, name: str, n: int, height: int, width: int) -> h5py.Dataset:
    """An empty image dataset of :func:`_put_images`'s layout, filled block by block."""
    return group.create_dataset(
        name,
        shape=(n, height, width),
        dtype=np.uint8,
        chunks=(1, height, width),
        maxshape=(None, height, width),
        compression="gzip",
        compression_opts=GZIP_LEVEL,
        track_times=False,
    )
