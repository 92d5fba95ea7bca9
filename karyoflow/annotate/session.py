"""The state of a centromere annotation session: the crops, the clicks, the CSV.

The CSV is the ``chr,tel,x,y`` format read by :mod:`karyoflow.readers.centromeres`:
``chr`` is the crop's path relative to the CSV's folder (absolute when the crop lies
elsewhere), ``x``/``y`` the centromere in pixel-centre coordinates of the crop (pixel
``i`` spans ``[i - 0.5, i + 0.5]``). Rows already in the CSV are kept (in their order)
and count as done, so a session resumes where the last one stopped; every save
rewrites the whole file atomically (a crash leaves the previous file, never half a
file).
"""

from __future__ import annotations

import csv
import io
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from karyoflow.fileutil import atomic_path

__all__ = [
    "CSV_COLUMNS",
    "IMAGE_SUFFIXES",
    "AnnotationSession",
    "list_crops",
    "read_annotations",
]

#: Columns written (and required, except ``tel``) by the ingest reader.
CSV_COLUMNS: tuple[str, ...] = ("chr", "tel", "x", "y")
#: Crop files picked up from a folder.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp")
#: Manifest kinds whose source image is a single chromosome.
_CROP_KINDS = ("crop", "centromere")


def list_crops(target: str | Path) -> list[Path]:
    """The crops to annotate: a folder (recursively), a manifest or a list file.

    Parameters
    ----------
    target : str or Path
        A folder of images (``IMAGE_SUFFIXES``, sorted by path); a manifest
        (``.parquet`` / ``.csv`` with a ``source`` column; rows of kind ``crop`` or
        ``centromere`` when a ``kind`` column exists); or a ``.txt`` file with one image
        path a line (relative to the file's folder).

    Returns
    -------
    list of Path
        Absolute paths, without duplicates, in order.

    Raises
    ------
    FileNotFoundError, ValueError
        ``<target>: <reason>`` (missing, no images, no ``source`` column, a listed
        image that does not exist).
    """
    target = Path(target)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such folder or manifest")
    if target.is_dir():
        found = sorted(
            p.resolve()
            for p in target.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
    elif target.suffix.lower() == ".txt":
        lines = [ln.strip() for ln in target.read_text(encoding="utf-8").splitlines()]
        found = [(target.parent / ln).resolve() for ln in lines if ln and not ln.startswith("#")]
    elif target.suffix.lower() in (".parquet", ".csv"):
        import pandas as pd

        try:
            frame = pd.read_parquet(target) if target.suffix == ".parquet" else pd.read_csv(target)
        except Exception as exc:  # pandas raises many types for a bad file
            raise ValueError(f"{target}: cannot read manifest ({exc})") from None
        if "source" not in frame.columns:
            raise ValueError(
                f"{target}: not a manifest (no 'source' column; got {list(frame.columns)[:6]})"
            )
        if "kind" in frame.columns:
            frame = frame[frame["kind"].isin(_CROP_KINDS)]
        found = [(target.parent / str(s)).resolve() for s in frame["source"]]
    else:
        raise ValueError(f"{target}: expected a folder, a manifest (.parquet/.csv) or a .txt list")
    seen: set[Path] = set()
    out = []
    for path in found:
        if path in seen:
            continue
        if not path.is_file():
            raise FileNotFoundError(f"{target}: crop not found: {path}")
        seen.add(path)
        out.append(path)
    if not out:
        raise ValueError(f"{target}: no crops to annotate")
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_annotations(path: str | Path) -> dict[str, tuple[str, float, float]]:
    """Rows of an existing ``chr,tel,x,y`` CSV: ``{chr: (tel, x, y)}`` in file order.

    A missing file gives ``{}``.

    Raises
    ------
    ValueError
        ``<file>: <reason>``: wrong header, or a row without numeric x, y.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> _ = p.write_text("chr,tel,x,y\\na.png,,3,4.5\\n")
    >>> read_annotations(p)
    {'a.png': ('', 3.0, 4.5)}
    >>> _ = p.write_text("image,px,py\\n")
    >>> read_annotations(p)
    Traceback (most recent call last):
    ...
    ValueError: ...c.csv: wrong columns: expected chr,tel,x,y, got ['image', 'px', 'py']
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return {}
    header = [h.strip().lower() for h in rows[0]]
    if any(col not in header for col in ("chr", "x", "y")):
        raise ValueError(f"{path}: wrong columns: expected chr,tel,x,y, got {header}")
    col = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    out: dict[str, tuple[str, float, float]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cells = {k: (row[i].strip() if i < len(row) else "") for k, i in col.items()}
        x, y = _number(cells["x"]), _number(cells["y"])
        if not cells["chr"] or x is None or y is None:
            raise ValueError(f"{path}: line {lineno}: expected chr and numeric x, y, got {row}")
        out[cells["chr"]] = (cells.get("tel", ""), x, y)
    return out


@dataclass
class AnnotationSession:
    """Crops, their points and the CSV; thread-safe (the web server is threaded).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, cv2
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(d / "a.png"), np.full((20, 10), 200, np.uint8))
    >>> s = AnnotationSession.open(d, d / "cen.csv")
    >>> s.set_point(0, 4.0, 7.25)
    (4.0, 7.25)
    >>> s.save()
    1
    >>> (d / "cen.csv").read_text()
    'chr,tel,x,y\\na.png,,4,7.25\\n'
    """

    crops: list[Path]
    csv_path: Path
    points: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    dirty: bool = False
    _sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, target: str | Path, csv_path: str | Path) -> AnnotationSession:
        """Crops from ``target`` (see :func:`list_crops`); points from ``csv_path``."""
        csv_path = Path(csv_path).resolve()
        points = read_annotations(csv_path)
        return cls(crops=list_crops(target), csv_path=csv_path, points=points)

    def name(self, index: int) -> str:
        """The ``chr`` entry of crop ``index``: relative to the CSV's folder if inside."""
        path = self.crops[self._check(index)]
        base = self.csv_path.parent
        if base in path.parents:
            return path.relative_to(base).as_posix()
        return str(path)

    def _check(self, index: int) -> int:
        if not 0 <= int(index) < len(self.crops):
            raise ValueError(f"no crop {index} (there are {len(self.crops)})")
        return int(index)

    def size(self, index: int) -> tuple[int, int]:
        """``(width, height)`` of crop ``index``."""
        index = self._check(index)
        if index not in self._sizes:
            self.image(index)
        return self._sizes[index]

    def image(self, index: int):
        """Crop ``index`` as a uint8 array (grey or RGB) for display."""
        import numpy as np

        from karyoflow.imageio import read_image

        index = self._check(index)
        img = np.asarray(read_image(self.crops[index]))
        if img.dtype != np.uint8:
            from karyoflow.preprocess.intensity import to_grey

            img = to_grey(img)
        self._sizes[index] = (int(img.shape[1]), int(img.shape[0]))
        return img

    def png(self, index: int) -> bytes:
        """Crop ``index`` encoded as PNG (browsers cannot show TIFF)."""
        import cv2

        img = self.image(index)
        if img.ndim == 3 and img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        elif img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise ValueError(f"{self.crops[index]}: cannot encode as PNG")
        return buf.tobytes()

    def set_point(self, index: int, x: float, y: float) -> tuple[float, float]:
        """Record the centromere of crop ``index`` (not saved yet); the stored point.

        Raises
        ------
        ValueError
            The point is not finite or lies outside the crop.
        """
        w, h = self.size(index)
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{self.crops[index].name}: point ({x}, {y}) is not finite")
        if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5):
            raise ValueError(
                f"{self.crops[index].name}: point ({x:g}, {y:g}) outside the {w}x{h} crop"
            )
        x = round(min(max(x, 0.0), w - 1.0), 2)
        y = round(min(max(y, 0.0), h - 1.0), 2)
        name = self.name(index)
        with self._lock:
            tel = self.points.get(name, ("", 0.0, 0.0))[0]
            self.points[name] = (tel, x, y)
            self.dirty = True
        return x, y

    def clear(self, index: int) -> None:
        """Forget the point of crop ``index``."""
        name = self.name(index)
        with self._lock:
            if self.points.pop(name, None) is not None:
                self.dirty = True

    def point(self, index: int) -> tuple[float, float] | None:
        """The recorded point of crop ``index`` or ``None``."""
        found = self.points.get(self.name(index))
        return None if found is None else (found[1], found[2])

    def first_open(self) -> int:
        """Index of the first crop without a point (0 when all are done)."""
        for i in range(len(self.crops)):
            if self.name(i) not in self.points:
                return i
        return 0

    def state(self) -> dict:
        """JSON-ready state for the page."""
        items = []
        for i, path in enumerate(self.crops):
            pt = self.point(i)
            items.append(
                {
                    "index": i,
                    "name": self.name(i),
                    "file": path.name,
                    "done": pt is not None,
                    "x": None if pt is None else pt[0],
                    "y": None if pt is None else pt[1],
                }
            )
        return {
            "csv": str(self.csv_path),
            "items": items,
            "start": self.first_open(),
            "done": sum(it["done"] for it in items),
            "dirty": self.dirty,
        }

    def save(self) -> int:
        """Write the CSV atomically (all rows, previous ones first); rows written."""
        with self._lock:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for name, (tel, x, y) in self.points.items():
                writer.writerow([name, tel, f"{x:g}", f"{y:g}"])
            with (
                atomic_path(self.csv_path) as tmp,
                open(tmp, "w", encoding="utf-8", newline="") as fh,
            ):
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            self.dirty = False
            return len(self.points)
