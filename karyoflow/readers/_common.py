"""Helpers shared by the readers: file discovery, image checks, name presets."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from karyoflow.imageio import IMAGE_EXTENSIONS, ImageReadError, read_image
from karyoflow.labels import UnknownLabelError, canonical_label

__all__ = [
    "CELL_REGEX_PRESETS",
    "NAME_PRESETS",
    "NamePreset",
    "check_images",
    "compile_pattern",
    "extensions_of",
    "is_hidden",
    "label_of",
    "list_images",
    "require_dir",
    "resolve_under",
    "scan_files",
]


@dataclass(frozen=True)
class NamePreset:
    """A file-name convention: regex with ``label`` (and ``cell``/``copy``) groups."""

    pattern: str
    zero_based: bool = False
    cell_regex: str | None = None
    description: str = ""


_IMG_SUFFIX = r"(?:\s*\.\s*(?:gif|png|tiff?|jpe?g|bmp)\s*)+"

#: File-name presets usable as ``preset`` (crops) or ``label_preset`` (centromeres).
NAME_PRESETS: dict[str, NamePreset] = {
    "karyotype_gif": NamePreset(
        pattern=(
            r"(?i)^\s*(?P<cell>.+?)\s*\.\s*k\s*\.\s*chr\s*(?P<label>\d{1,2}|[xy])\s*"
            r"\.\s*(?P<copy>\d+)(?P<variant>[a-z_][\w-]*)?" + _IMG_SUFFIX + r"$"
        ),
        description="<sample>.K.chr<N>.<copy>[<variant>].gif (also png/tif; N 1-22, "
        "23|X, 24|Y; a variant after the copy number, as in the public crops of Hu et al. "
        "2019: 161923.054.K.chr1.1invert_pad.gif; tolerates stray spaces, any case and "
        "repeated suffixes)",
    ),
    "zero_based": NamePreset(
        pattern=r"(?i)^(?P<cell>.+)\.(?P<label>\d{1,2})\.tiff?$",
        zero_based=True,
        description="<id>.<label 0-23>.tiff (zero-based labels, 22 = X, 23 = Y)",
    ),
    "pampaj7": NamePreset(
        pattern=r"(?i)^(?P<label>\d{1,2})_(?P<copy>\d+)_(?P<a>\d+)_(?P<b>\d+)_(?P<cell>\d+)\.tiff?$",
        description="<class>_<copy>_<A>_<B>_<cell>.tiff under class folders 1..24",
    ),
    "karyograms": NamePreset(
        pattern=r"(?i)^clase(?P<label>\d{1,2})_(?P<copy>\d+)_(?P<karyogram>.+)\.tiff?$",
        cell_regex="first_folder",
        description="<karyogram>.tiff/clase<N>/clase<N>_<copy>_<karyogram>.tiff; "
        "cell = karyogram folder",
    ),
    "karyonet": NamePreset(
        pattern=r"(?i)^(?P<cell>.+)_(?P<label>\d{1,2}|[xy])_(?P<copy>\d+)\.(?:jpe?g|png|tiff?)$",
        description="<cell>_<label>_<n>.jpg",
    ),
}

#: Named ``cell_regex`` values (searched on the POSIX path relative to the root).
CELL_REGEX_PRESETS: dict[str, str] = {
    "first_folder": r"^(?P<cell>[^/]+)/",
    "parent_folder": r"(?P<cell>[^/]+)/[^/]+$",
    "grandparent_folder": r"(?P<cell>[^/]+)/[^/]+/[^/]+$",
    "stem": r"(?P<cell>[^/]+?)(?:\.[^./]*)?$",
}


def require_dir(root: Path, what: str = "dataset root") -> Path:
    """Return ``root`` resolved, or raise ``FileNotFoundError`` naming it."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{what} not found: {root}")
    return root.resolve()


def resolve_under(root: Path, name: str | os.PathLike[str]) -> Path:
    """``name`` if absolute, else ``root / name``."""
    p = Path(name).expanduser()
    return p if p.is_absolute() else root / p


def extensions_of(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Lower-case extensions (no dot) from option ``extensions``."""
    exts = options.get("extensions") or IMAGE_EXTENSIONS
    if isinstance(exts, str):
        exts = [exts]
    return tuple(str(e).lower().lstrip(".") for e in exts)


def is_hidden(rel: Path) -> bool:
    """True if any component of a relative path starts with a dot."""
    return any(part.startswith(".") for part in rel.parts)


def scan_files(
    base: Path, suffixes: Iterable[str], *, recursive: bool = True, what: str = "image"
) -> tuple[list[Path], list[Any]]:
    """Every file under ``base``: those with one of ``suffixes`` (lower case, with the
    dot), sorted, and a :class:`~karyoflow.records.Reject` for each other one, so that
    no file is skipped without a word.

    Rejected: hidden files, and hidden folders as one row each (their contents are
    not listed); files with another suffix; with ``recursive=False``, files in
    subfolders (``what`` names what the folder holds, for the reason).
    """
    from karyoflow.records import Reject

    found: list[Path] = []
    skipped: list[Reject] = []
    wanted = {s.lower() for s in suffixes}
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        for name in sorted(d for d in dirnames if d.startswith(".")):
            skipped.append(Reject(str(here / name), "hidden folder: not read"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = here / name
            if name.startswith("."):
                skipped.append(Reject(str(p), "hidden file: not read"))
            elif not recursive and here != base:
                skipped.append(
                    Reject(str(p), f"in a subfolder of {base.name}/: not read ({what} files "
                           "lie directly in it)")
                )  # fmt: skip
            elif p.suffix.lower() not in wanted:
                kind = p.suffix.lower() or "none"
                article = "an" if what[:1].lower() in "aeiou" else "a"
                skipped.append(
                    Reject(str(p), f"not {article} {what} file (suffix {kind}): not read")
                )
            else:
                found.append(p)
    found.sort()
    return found, skipped


def list_images(base: Path, exts: Sequence[str]) -> tuple[list[Path], list[Any]]:
    """All image files under ``base`` (recursive, sorted) and a reject for every other
    file (:func:`scan_files`)."""
    return scan_files(base, {"." + e for e in exts}, what="image")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a user regex; ``ValueError`` with the pattern on a syntax error."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None


def label_of(name: str, *, zero_based: bool = False) -> str:
    """Canonical label, or ``UnknownLabelError`` with the short reason used in rejects."""
    try:
        return canonical_label(name, zero_based=zero_based)
    except UnknownLabelError:
        raise UnknownLabelError(f"unknown label {str(name).strip()!r}") from None


def _probe(path: Path) -> tuple[int, int] | str:
    try:
        arr = read_image(path)
    except ImageReadError as exc:
        return exc.reason
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    return int(arr.shape[1]), int(arr.shape[0])


def check_images(paths: Iterable[Path], workers: int | None = None) -> list[tuple[int, int] | str]:
    """Decode every image; ``(width, height)`` or the failure reason, in input order.

    Decoding runs on a small thread pool (OpenCV, zlib and libjpeg release the GIL).
    """
    paths = list(paths)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if workers <= 1 or len(paths) < 64:
        return [_probe(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_probe, paths, chunksize=64))
